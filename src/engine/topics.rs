//! Severe complaint topics: a topic of `topics.severe` that treatment observations mention at
//! least `min_mentions` times in a window while control observations of the same metric do
//! not mention it at all. Each topic triggers once per cohort (`severe_topics_seen`).
//!
//! Mentions are facts, not estimates, so a topic's zone is always reliable. Only confident
//! observations count (the window aggregate leaves low-confidence ones out).

use super::contract::{Contract, MetricKind, TopicZone};
use super::evidence::{TopicEvidence, Zone};
use super::reason::metric_label;
use super::window::{CohortWindow, Window};
use crate::ids::CohortName;

/// The zone a topic puts a cohort in.
pub fn zone_of(zone: TopicZone) -> Zone {
    match zone {
        TopicZone::Watch => Zone::Watch,
        TopicZone::Stop => Zone::Stop,
        TopicZone::Kill => Zone::Kill,
    }
}

/// Severe topics new in the treatment this window. `seen` lists topics already acted upon;
/// they are reported with a healthy zone.
pub fn scan(
    contract: &Contract,
    cohort: &CohortName,
    window: Window,
    current: &CohortWindow,
    seen: &[String],
) -> Vec<TopicEvidence> {
    let Some(topics) = &contract.topics else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for spec in contract
        .metrics
        .iter()
        .filter(|m| m.kind == MetricKind::Observations)
    {
        let m = current.metric(&spec.name);
        for severe in &topics.severe {
            let key = severe.to_lowercase();
            let treated = m.treatment.topics.get(&key).copied().unwrap_or(0);
            let control = m.control.topics.get(&key).copied().unwrap_or(0);
            if treated < topics.min_mentions || control > 0 {
                continue;
            }
            let already = seen.iter().any(|s| s == &key);
            let zone = if already {
                Zone::Healthy
            } else {
                zone_of(topics.on_new_severe)
            };
            let times = if treated == 1 { "time" } else { "times" };
            found.push(TopicEvidence {
                topic: key.clone(),
                metric: spec.name.clone(),
                cohort: cohort.clone(),
                window,
                treatment_mentions: treated,
                control_mentions: control,
                zone,
                summary: format!(
                    "{}: treatment mentions the severe topic \"{key}\" {treated} {times}, control never{}",
                    metric_label(&spec.name),
                    if already { " (already acted upon)" } else { "" }
                ),
            });
        }
    }
    found
}
