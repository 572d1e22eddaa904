//! Evidence: what the engine saw for each metric of a window, and the verdict it reached.
//!
//! Evidence is data, stored with every decision and shown to people. It must be enough to
//! answer "why is this gate at 25% and not 50%?" without rerunning anything.

use serde::{Deserialize, Serialize};

use super::window::Window;
use crate::ids::{CohortName, MetricName};

/// Where a metric stands in a window. Ordered from best to worst reliable zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    Healthy,
    Watch,
    Stop,
    Kill,
    /// The evidence cannot be trusted this window (too few samples, stale, low confidence,
    /// sample-ratio mismatch).
    Unreliable,
}

impl Zone {
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Healthy => "healthy",
            Zone::Watch => "watch",
            Zone::Stop => "stop",
            Zone::Kill => "kill",
            Zone::Unreliable => "unreliable",
        }
    }
    /// The zone a label ([`Zone::as_str`]) names.
    pub fn from_label(label: &str) -> Option<Zone> {
        [
            Zone::Healthy,
            Zone::Watch,
            Zone::Stop,
            Zone::Kill,
            Zone::Unreliable,
        ]
        .into_iter()
        .find(|z| z.as_str() == label)
    }
}

/// The evidence for one metric of one cohort in one window: which metric, cohort and window,
/// the [`Figures`] the engine judged on, and the zone and streak the policy gave it.
///
/// Stored with every decision (MessagePack with field names): the figures are flattened, so
/// the stored keys are the same as when they were written out here one by one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricEvidence {
    pub metric: MetricName,
    pub cohort: CohortName,
    pub window: Window,
    #[serde(flatten)]
    pub figures: Figures,
    pub zone: Zone,
    /// Consecutive windows the metric has been in this zone.
    pub streak: u32,
    /// Why the metric is unreliable, when it is.
    pub unreliable_reason: Option<String>,
    /// One line a person understands.
    pub summary: String,
}

/// The figures a metric's judgement rests on, written once: the judge fills them
/// ([`Assessment`](super::judge::Assessment)), decisions keep them ([`MetricEvidence`]), and
/// each edge converts them in one place (`api::convert::figures` and back, `api::view`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Treatment value (rate or mean) over the reported span.
    pub treatment: Option<f64>,
    /// Control value over the same span.
    pub control: Option<f64>,
    /// The value the treatment is judged against.
    pub baseline: Option<f64>,
    /// Where the baseline came from: `control`, `control of the previous 7d`, `fixed`.
    pub baseline_source: String,
    /// treatment − baseline, and its confidence interval.
    pub delta: Option<f64>,
    pub delta_interval: Option<(f64, f64)>,
    /// (treatment − baseline) / baseline, and its confidence interval.
    pub relative: Option<f64>,
    pub relative_interval: Option<(f64, f64)>,
    /// Fixed-horizon p-value, when that test was used.
    pub p_value: Option<f64>,
    /// Always-valid e-value (mixture likelihood ratio), when the sequential test was used.
    pub e_value: Option<f64>,
    pub samples_treatment: u64,
    pub samples_control: u64,
    /// Windows pooled into `treatment`/`control`/`delta`: the reported evidence span (the
    /// sequential test pools from the cohort's latest evidence restart or a change-detection
    /// start, `engine::spans`; the fixed test uses this window alone).
    #[serde(default)]
    pub span_windows: u32,
    /// The test that judged the difference: `msprt`, `two-proportion z`, `welch t`, ...
    #[serde(default)]
    pub test: String,
    /// Significance level for this metric (the contract's alpha split across its metrics).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Treatment and control values of this window alone.
    #[serde(default)]
    pub window_treatment: Option<f64>,
    #[serde(default)]
    pub window_control: Option<f64>,
    #[serde(default)]
    pub window_samples_treatment: u64,
    #[serde(default)]
    pub window_samples_control: u64,
    /// Interval of the treatment's value the ceiling/floor test was decided on.
    #[serde(default)]
    pub treatment_interval: Option<(f64, f64)>,
    /// p-value of "the treatment is on the bad side of its ceiling/floor", when one is set
    /// (fixed test).
    #[serde(default)]
    pub ceiling_p_value: Option<f64>,
    /// e-value of the same (sequential test), the windows it pooled and its level.
    #[serde(default)]
    pub ceiling_e_value: Option<f64>,
    #[serde(default)]
    pub ceiling_span_windows: u32,
    #[serde(default)]
    pub ceiling_alpha: Option<f64>,
    /// Anytime-valid sample-ratio-mismatch p-value of the cohort's units (the same for
    /// every metric of the window).
    #[serde(default)]
    pub srm_p_value: Option<f64>,
    /// Share of this window's observations under the confidence floor.
    #[serde(default)]
    pub low_confidence_share: Option<f64>,
    /// Latency: the quantile judged (treatment, control and delta are that quantile's).
    #[serde(default)]
    pub quantile: Option<f64>,
    /// Latency: the decided interval of (treatment's share of timings above the baseline's
    /// quantile − the baseline's share above it); the comparison's test is on these shares.
    #[serde(default)]
    pub exceedance_interval: Option<(f64, f64)>,
}

/// A severe complaint topic: compared between the arms, or an `any_mention` phrase seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicEvidence {
    pub topic: String,
    /// The observation metric that carried it.
    pub metric: MetricName,
    pub cohort: CohortName,
    pub window: Window,
    pub treatment_mentions: u64,
    pub control_mentions: u64,
    /// The zone it put the cohort in (`on_new_severe`), or healthy.
    pub zone: Zone,
    pub summary: String,
    /// Share of confident observations mentioning the topic, per arm, over the span.
    #[serde(default)]
    pub treatment_share: Option<f64>,
    #[serde(default)]
    pub control_share: Option<f64>,
    /// The comparison's e-value (sequential) or one-sided p-value (fixed).
    #[serde(default)]
    pub e_value: Option<f64>,
    #[serde(default)]
    pub p_value: Option<f64>,
    /// The level the comparison was judged at.
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Windows pooled.
    #[serde(default)]
    pub span_windows: u32,
    /// An `any_mention` phrase (acts on any mention) rather than a compared topic.
    #[serde(default)]
    pub any_mention: bool,
}
