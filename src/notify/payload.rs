//! The body of a webhook delivery: the decision as the JSON API shows it (`api::view`), the
//! event and delivery id, and a one-line `text` so a Slack (or Mattermost, Teams workflow)
//! incoming webhook shows something readable without a translator in between.
//!
//! Pure: no IO.

use serde_json::Value;

use crate::api::{convert, view};
use crate::engine::notify::NotifyOn;
use crate::state::Decision;

/// The JSON body delivered for `decision` as `event`.
pub fn body(decision: &Decision, event: NotifyOn) -> Value {
    let mut out = view::decision(&convert::decision(decision));
    if let Some(map) = out.as_object_mut() {
        map.insert("delivery".into(), decision.delivery_id().into());
        map.insert("event".into(), event.as_str().into());
        map.insert("text".into(), text(decision, event).into());
    }
    out
}

/// One line for people: gate, cohort, event, exposure change, kill switch and reason.
pub fn text(decision: &Decision, event: NotifyOn) -> String {
    let mut line = format!("rampart: {} {}", decision.gate, event.as_str());
    if let Some(cohort) = &decision.cohort {
        line.push_str(&format!(" ({cohort})"));
    }
    let moves: Vec<String> = decision
        .changes
        .iter()
        .filter(|c| c.from_exposure != c.to_exposure)
        .map(|c| format!("{} {}% → {}%", c.cohort, c.from_exposure, c.to_exposure))
        .collect();
    if !moves.is_empty() {
        line.push_str(&format!(": {}", moves.join(", ")));
    }
    if decision.kill_switch != decision.kill_switch_before {
        let state = if decision.kill_switch { "on" } else { "off" };
        line.push_str(&format!("; kill switch {state}"));
    }
    if !decision.reason.is_empty() {
        line.push_str(&format!(" — {}", decision.reason));
    }
    line.push_str(&format!(" [{}]", decision.delivery_id()));
    line
}
