//! How the console writes the domain's values for people: times, ages, exposures, statuses,
//! zones and who decided. Pure.

use maud::{html, Markup};

use crate::api::convert::millis;
use crate::engine::signal::format_time;

/// A timestamp as RFC 3339 UTC, or a dash.
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.map_or_else(|| "—".to_owned(), |t| format_time(millis(t)))
}

/// A timestamp in milliseconds, if there is one.
pub fn ms(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(millis)
}

/// A duration for people: `42 s`, `7 min`, `3 h 5 min`, `2 d 4 h`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// How long before `now` the time `t` was, as `… ago` with the time itself as a tooltip.
pub fn age(t: Option<&prost_types::Timestamp>, now: i64) -> Markup {
    match t {
        None => html! { "—" },
        Some(t) => {
            let at = millis(t);
            let ago = u64::try_from(now - at).unwrap_or(0);
            html! { time datetime=(format_time(at)) title=(format_time(at)) { (duration_ms(ago)) " ago" } }
        }
    }
}

/// An exposure in percent.
pub fn exposure(e: f64) -> String {
    format!("{}%", super::chart::figure(e))
}

/// Whether a cohort's status waits for a person.
pub fn needs_human(status: &str) -> bool {
    matches!(status, "awaiting_approval" | "manual_review")
}

/// A cohort's status as a badge (its text is the status: colour only repeats it).
pub fn status(status: &str) -> Markup {
    html! { span class=(format!("badge status-{status}")) { (status.replace('_', " ")) } }
}

/// A zone as a badge with its marker's shape.
pub fn zone(zone: &str) -> Markup {
    html! {
        span class=(format!("badge zone-{zone}")) {
            svg width="10" height="10" viewBox="-5 -5 10 10" aria-hidden="true" { use href=(format!("#m-{zone}")) {} }
            " " (zone)
        }
    }
}

/// The kill switch as a badge (nothing when it is off).
pub fn kill_switch(on: bool) -> Markup {
    html! { @if on { span.badge.kill { "KILL SWITCH ON" } } }
}

/// Who decided, in words: `leader:<node>@<term>` or `operator:<actor>`.
pub fn decided_by(by: &str) -> String {
    if let Some(rest) = by.strip_prefix("leader:") {
        if let Some((node, term)) = rest.split_once('@') {
            return format!("the engine on leader node {node}, term {term}");
        }
    }
    if let Some(actor) = by.strip_prefix("operator:") {
        return format!("operator {actor}");
    }
    by.to_owned()
}

/// Whether a decision changed anything (exposure, status or kill switch) or was a person's:
/// `state::Decision::changed_something`, asked of its proto.
pub fn changed(d: &crate::proto::v1::Decision) -> bool {
    d.kill_switch != d.kill_switch_before
        || d.decided_by.starts_with("operator:")
        || d.changes.iter().any(|c| {
            (c.from_exposure - c.to_exposure).abs() > f64::EPSILON || c.from_status != c.to_status
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_largest_sensible_unit() {
        assert_eq!(duration_ms(42_000), "42 s");
        assert_eq!(duration_ms(7 * 60_000), "7 min");
        assert_eq!(duration_ms(3 * 3_600_000 + 5 * 60_000), "3 h 5 min");
        assert_eq!(duration_ms(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
    }

    #[test]
    fn who_decided_is_spelled_out() {
        assert_eq!(
            decided_by("leader:2@7"),
            "the engine on leader node 2, term 7"
        );
        assert_eq!(decided_by("operator:alice"), "operator alice");
    }
}
