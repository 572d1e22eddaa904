//! Reason sentences: evidence and verdicts in words a product manager understands.
//!
//! "mobile held at 10%: negative review rate 14.6% vs 8.1% in control (+80%, 98.75% CI
//! +52%..+110%, over 3 windows), stop zone for 2 windows".
//!
//! Pure formatting of values the engine already computed; it never judges anything.

use super::contract::{MetricKind, MetricSpec};
use super::evidence::{MetricEvidence, Zone};
use crate::ids::MetricName;

/// A metric's name as words: `negative_review_rate` → "negative review rate".
pub fn metric_label(name: &MetricName) -> String {
    name.as_str().replace(['_', '-', '.'], " ")
}

/// A value in the metric's unit: rates in percent, means with two or three decimals.
pub fn value(kind: MetricKind, v: f64) -> String {
    match kind {
        MetricKind::Rate => percent(v),
        MetricKind::Mean | MetricKind::Observations => trim(format!("{v:.3}")),
        MetricKind::Latency => trim(format!("{v:.4}")),
    }
}

/// A share in percent with sensible precision: 14.6%, 0.42%, 80%.
pub fn percent(x: f64) -> String {
    let pct = x * 100.0;
    let text = if pct.abs() >= 10.0 {
        format!("{pct:.1}")
    } else if pct.abs() >= 1.0 {
        format!("{pct:.2}")
    } else {
        format!("{pct:.3}")
    };
    format!("{}%", trim(text))
}

/// A signed change in percent: +80%, -4.5%.
pub fn signed_percent(x: f64) -> String {
    let pct = x * 100.0;
    let text = if pct.abs() >= 10.0 {
        format!("{pct:+.0}")
    } else {
        format!("{pct:+.1}")
    };
    format!("{}%", trim(text))
}

/// A signed difference in the metric's unit.
pub fn signed_value(kind: MetricKind, x: f64) -> String {
    match kind {
        MetricKind::Rate => {
            let pts = x * 100.0;
            format!("{} pts", trim(format!("{pts:+.2}")))
        }
        MetricKind::Mean | MetricKind::Observations => trim(format!("{x:+.3}")),
        MetricKind::Latency => trim(format!("{x:+.4}")),
    }
}

/// A confidence level: 0.95 → "95%", 0.9875 → "98.75%".
pub fn level(level: f64) -> String {
    format!("{}%", trim(format!("{:.2}", level * 100.0)))
}

/// Drops trailing zeros after a decimal point.
fn trim(text: String) -> String {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Whether the metric is best told as a relative change (it has a relative rule, or its
/// only rules are not absolute ones).
fn tell_relative(spec: &MetricSpec) -> bool {
    let rules = [&spec.watch, &spec.stop, &spec.kill];
    let relative = rules
        .iter()
        .any(|r| r.as_ref().is_some_and(|r| r.relative.is_some()));
    let absolute = rules
        .iter()
        .any(|r| r.as_ref().is_some_and(|r| r.absolute.is_some()));
    relative || !absolute
}

fn has_bound(spec: &MetricSpec) -> Option<(f64, &'static str)> {
    [&spec.kill, &spec.stop, &spec.watch]
        .into_iter()
        .flatten()
        .find_map(|r| {
            r.above
                .map(|a| (a, "ceiling"))
                .or(r.below.map(|b| (b, "floor")))
        })
}

/// One line for one metric's evidence (without its zone).
pub fn metric_summary(spec: &MetricSpec, e: &MetricEvidence) -> String {
    let f = &e.figures;
    let label = match f.quantile {
        Some(q) => format!(
            "{} p{}",
            metric_label(&spec.name),
            trim(format!("{:.1}", q * 100.0))
        ),
        None => metric_label(&spec.name),
    };
    if let Some(why) = &e.unreliable_reason {
        return format!("{label} unreliable: {why}");
    }
    let kind = spec.kind;
    // Each side of the interval is a one-sided bound at level 1 − α, so the two together
    // cover at 1 − 2α; the harmful side alone decided the zone.
    let level_text = f.alpha.map_or_else(String::new, |a| level(1.0 - 2.0 * a));
    let ci_name = if f.e_value.is_some() {
        format!("always-valid {level_text} CI")
    } else {
        format!("{level_text} CI")
    };
    let bound_only = has_bound(spec).is_some() && f.delta_interval.is_none();
    let judged = f
        .treatment_interval
        .map(|(lo, hi)| (lo + hi) / 2.0)
        .or(f.window_treatment);
    if let (true, Some((bound, what)), Some(t)) = (bound_only, has_bound(spec), judged) {
        let bound_level = f
            .ceiling_alpha
            .map_or_else(String::new, |a| level(1.0 - 2.0 * a));
        let bound_ci = if f.ceiling_e_value.is_some() {
            format!("always-valid {bound_level} CI")
        } else {
            format!("{bound_level} CI")
        };
        let over = if f.ceiling_span_windows > 1 {
            format!(", over {} windows", f.ceiling_span_windows)
        } else {
            String::new()
        };
        let interval = f.treatment_interval.map_or_else(String::new, |(lo, hi)| {
            format!(
                " ({bound_ci} {}..{}{over})",
                value(kind, lo),
                value(kind, hi)
            )
        });
        let comparison = f
            .window_control
            .map_or_else(String::new, |c| format!(", control {}", value(kind, c)));
        return format!(
            "{label} {} in treatment{interval} against a {what} of {}{comparison}",
            value(kind, t),
            value(kind, bound)
        );
    }
    let (Some(t), Some(b)) = (f.treatment, f.baseline) else {
        return format!("{label}: no data to compare");
    };
    let source = if f.baseline_source == "control" {
        "in control".to_owned()
    } else {
        format!("({})", f.baseline_source)
    };
    let change = if tell_relative(spec) {
        match (f.relative, f.relative_interval) {
            (Some(r), Some((lo, hi))) => format!(
                "{}, {ci_name} {}..{}",
                signed_percent(r),
                signed_percent(lo),
                signed_percent(hi)
            ),
            (Some(r), None) => signed_percent(r),
            _ => String::new(),
        }
    } else {
        match (f.delta, f.delta_interval) {
            (Some(d), Some((lo, hi))) => format!(
                "{}, {ci_name} {}..{}",
                signed_value(kind, d),
                signed_value(kind, lo),
                signed_value(kind, hi)
            ),
            (Some(d), None) => signed_value(kind, d),
            _ => String::new(),
        }
    };
    let span = if f.span_windows > 1 {
        format!(", over {} windows", f.span_windows)
    } else {
        String::new()
    };
    // Latency is decided on the share of timings above the baseline's quantile.
    let change = match f.exceedance_interval {
        Some((lo, hi)) => format!(
            "{change}; share of timings above the baseline's p{}: {ci_name} {}..{}",
            trim(format!("{:.1}", f.quantile.unwrap_or(0.5) * 100.0)),
            signed_value(MetricKind::Rate, lo),
            signed_value(MetricKind::Rate, hi)
        ),
        None => change,
    };
    let inner = [change, span.trim_start_matches(", ").to_owned()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let paren = if inner.is_empty() {
        String::new()
    } else {
        format!(" ({inner})")
    };
    format!(
        "{label} {} vs {} {source}{paren}",
        value(kind, t),
        value(kind, b)
    )
}

/// ", stop zone for 2 windows" — empty for healthy or unreliable evidence.
pub fn zone_suffix(zone: Zone, streak: u32) -> String {
    match zone {
        Zone::Healthy | Zone::Unreliable => String::new(),
        _ => {
            let windows = if streak == 1 { "window" } else { "windows" };
            format!(", {} zone for {streak} {windows}", zone.as_str())
        }
    }
}

/// An exposure in percent: 10 → "10%", 0.5 → "0.5%".
pub fn exposure(x: f64) -> String {
    format!("{}%", trim(format!("{x:.2}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(percent(0.146), "14.6%");
        assert_eq!(percent(0.081), "8.1%");
        assert_eq!(percent(0.004), "0.4%");
        assert_eq!(signed_percent(0.8), "+80%");
        assert_eq!(signed_percent(-0.045), "-4.5%");
        assert_eq!(level(0.95), "95%");
        assert_eq!(level(0.9875), "98.75%");
        assert_eq!(exposure(10.0), "10%");
        assert_eq!(signed_value(MetricKind::Mean, -0.35), "-0.35");
        assert_eq!(zone_suffix(Zone::Stop, 2), ", stop zone for 2 windows");
    }
}
