//! The contract language: what a gate's signals must look like for its rollout to go on.
//!
//! A contract is written in YAML (see `examples/checkout-v2.yaml`), parsed with unknown
//! fields refused, then validated as a whole: every problem is reported with the path of the
//! field (`metrics[1].stop.relative`) and the reason. A `Contract` value that exists has passed
//! validation; the rest of the engine relies on that and does not check again.
//!
//! This module owns the data model and its validation. It never evaluates anything.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{CohortName, GateKey, MetricName, Millis};

/// One problem found in a contract: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field, e.g. `metrics[0].kill.above`.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// All the problems of a contract that failed to parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid contract: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ContractError(pub Vec<FieldError>);

/// A duration written like `15m`, `2h`, `7d`; kept in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span(pub Millis);

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let parsed = humantime::parse_duration(text.trim())
            .map_err(|e| format!("{text:?} is not a duration like 15m or 2h: {e}"))?;
        let ms = i64::try_from(parsed.as_millis()).map_err(|_| format!("{text:?} is too long"))?;
        Ok(Span(ms))
    }
}

impl From<Span> for String {
    fn from(span: Span) -> String {
        let ms = u64::try_from(span.0).unwrap_or(0);
        humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
    }
}

/// A share written `15%` or as a fraction `0.15`; kept as a fraction.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "FractionText", into = "f64")]
pub struct Fraction(pub f64);

#[derive(Deserialize)]
#[serde(untagged)]
enum FractionText {
    Number(f64),
    Text(String),
}

impl TryFrom<FractionText> for Fraction {
    type Error = String;
    fn try_from(raw: FractionText) -> Result<Self, String> {
        match raw {
            FractionText::Number(x) => Ok(Fraction(x)),
            FractionText::Text(t) => {
                let trimmed = t.trim();
                let Some(number) = trimmed.strip_suffix('%') else {
                    return Err(format!("{t:?} is not a share like 15% or 0.15"));
                };
                let pct: f64 = number
                    .trim()
                    .parse()
                    .map_err(|_| format!("{t:?} is not a share like 15% or 0.15"))?;
                Ok(Fraction(pct / 100.0))
            }
        }
    }
}

impl From<Fraction> for f64 {
    fn from(f: Fraction) -> f64 {
        f.0
    }
}

/// What the treatment shows and what everyone else gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variants {
    pub treatment: String,
    pub fallback: String,
}

/// Where a metric's baseline comes from. Written `baseline: control`,
/// `baseline: { rolling: 2h }` or `baseline: { fixed: { metric: value, ... } }`.
///
/// Serialised in that same form (a name, or a one-key map), which every format reads back:
/// in MessagePack the bytes are those the derived, externally tagged form wrote. YAML that
/// serde_yaml wrote before with its tags (`!rolling 2h`, `!fixed {...}`) still reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Baseline {
    /// The control arm of the same window.
    #[default]
    Control,
    /// The control arm pooled over the earlier windows within this span.
    Rolling(Span),
    /// A fixed value per metric.
    Fixed(std::collections::BTreeMap<MetricName, f64>),
}

/// Closed windows a node keeps per cohort at least (the sequential test pools at most
/// `judge::MAX_SPAN` of them).
pub const MIN_WINDOWS_KEPT: usize = 100;
/// The most windows a rolling baseline may cover (a week of 5-minute windows).
pub const MAX_ROLLING_WINDOWS: usize = 2016;

const BASELINE_HELP: &str = "use control, { rolling: 2h } or { fixed: {...} }";

impl Serialize for Baseline {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Baseline::Control => serializer.serialize_str("control"),
            Baseline::Rolling(span) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("rolling", span)?;
                map.end()
            }
            Baseline::Fixed(values) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("fixed", values)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Baseline {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BaselineVisitor)
    }
}

/// Reads a name, a one-key map, or a tagged value (YAML's `!rolling 2h`).
struct BaselineVisitor;

impl<'de> serde::de::Visitor<'de> for BaselineVisitor {
    type Value = Baseline;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a baseline: {BASELINE_HELP}")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Baseline, E> {
        match name {
            "control" => Ok(Baseline::Control),
            other => Err(E::custom(format!(
                "{other:?} is not a baseline: {BASELINE_HELP}"
            ))),
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Baseline, A::Error> {
        use serde::de::Error;
        let Some(key) = map.next_key::<String>()? else {
            return Err(A::Error::custom(format!(
                "an empty map is not a baseline: {BASELINE_HELP}"
            )));
        };
        let baseline = match key.as_str() {
            "rolling" => Baseline::Rolling(map.next_value()?),
            "fixed" => Baseline::Fixed(map.next_value()?),
            other => {
                return Err(A::Error::custom(format!(
                    "{other:?} is not a kind of baseline: {BASELINE_HELP}"
                )))
            }
        };
        if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::custom(format!(
                "a baseline is one of its kinds, not several: {BASELINE_HELP}"
            )));
        }
        Ok(baseline)
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Baseline, A::Error> {
        use serde::de::{Error, VariantAccess};
        let (kind, value) = data.variant::<String>()?;
        match kind.as_str() {
            "control" => value.unit_variant().map(|()| Baseline::Control),
            "rolling" => value.newtype_variant().map(Baseline::Rolling),
            "fixed" => value.newtype_variant().map(Baseline::Fixed),
            other => Err(A::Error::custom(format!(
                "{other:?} is not a kind of baseline: {BASELINE_HELP}"
            ))),
        }
    }
}

/// Which statistical test judges a metric each window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// Always-valid (mixture SPRT) tests: judging every window does not inflate errors.
    #[default]
    Sequential,
    /// A fixed-horizon test on each window on its own.
    Fixed,
}

/// Stages beyond this exposure wait for a human approval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub above: f64,
}

/// What unreliable evidence does to a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreliable {
    #[default]
    ManualReview,
    Hold,
}

/// How a metric is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// events / trials.
    Rate,
    /// A mean from moments (n, sum, sum of squares).
    Mean,
    /// Single scored observations (value, optional classifier confidence and topics),
    /// judged by their mean.
    Observations,
    /// Timings in sketches, judged by the quantile `quantile` names.
    Latency,
}

/// Which direction is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Lower,
    Higher,
}

/// The thresholds of one zone (watch, stop or kill). Any one rule met puts the metric in
/// the zone; `windows` says for how many consecutive windows it must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ZoneRule {
    /// Worse than the baseline by at least this share of the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<Fraction>,
    /// Worse than the baseline by at least this much, in the metric's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute: Option<f64>,
    /// Ceiling whatever the baseline (for `better: lower`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Floor whatever the baseline (for `better: higher`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Consecutive windows the rule must hold before the zone applies.
    #[serde(default = "one")]
    pub windows: u32,
}

fn one() -> u32 {
    1
}

/// One metric of a contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub name: MetricName,
    pub kind: MetricKind,
    pub better: Better,
    /// A guardrail's ceiling is judged on the treatment alone.
    #[serde(default)]
    pub guardrail: bool,
    /// Fewer samples than this in either arm of a window make the metric unreliable.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// The newest signal older than this (at the window's end) makes the metric unreliable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness: Option<Span>,
    /// Latency: the quantile judged (0.99 for p99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// Observations scored with less confidence than this do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    /// A larger share of low-confidence observations than this makes the metric unreliable.
    #[serde(default = "default_max_low_confidence")]
    pub max_low_confidence_share: Fraction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<ZoneRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<ZoneRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<ZoneRule>,
}

impl MetricSpec {
    /// The zone rules in order watch, stop, kill.
    pub fn zone_rules(&self) -> [Option<&ZoneRule>; 3] {
        [self.watch.as_ref(), self.stop.as_ref(), self.kill.as_ref()]
    }

    /// The treatment value from which `rule` is met, against `baseline`: the nearest of its
    /// relative and absolute worsenings (not for a guardrail, judged on its ceiling or floor
    /// alone) and its ceiling or floor. What a chart draws as the zone's line; the judgement
    /// itself also asks that the worsening be significant. None when no threshold applies.
    pub fn threshold(&self, rule: &ZoneRule, baseline: Option<f64>) -> Option<f64> {
        let sign = match self.better {
            Better::Lower => 1.0,
            Better::Higher => -1.0,
        };
        let compared = baseline.filter(|b| b.is_finite() && !self.guardrail);
        let relative = compared.and_then(|b| rule.relative.map(|r| b + sign * r.0 * b.abs()));
        let absolute = compared.and_then(|b| rule.absolute.map(|a| b + sign * a));
        let bound = match self.better {
            Better::Lower => rule.above,
            Better::Higher => rule.below,
        };
        // The nearest: the lowest for a metric where lower is better, the highest otherwise.
        [relative, absolute, bound]
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite())
            .reduce(|x, y| if sign * (x - y) <= 0.0 { x } else { y })
    }
}

fn default_min_samples() -> u64 {
    100
}

fn default_max_low_confidence() -> Fraction {
    Fraction(0.5)
}

/// What a zone does to the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneAction {
    /// Stay at the stage longer.
    Slow,
    /// Keep the exposure until an operator resumes.
    Hold,
    /// Exposure to zero for the cohort; the gate's kill switch goes on only when every cohort
    /// is then rolled back.
    Rollback,
    /// Exposure to zero for every cohort of the gate, kill switch on.
    RollbackGate,
    /// Hand the gate to a human.
    ManualReview,
}

/// Actions per zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    #[serde(default = "slow")]
    pub watch: ZoneAction,
    #[serde(default = "hold")]
    pub stop: ZoneAction,
    #[serde(default = "rollback")]
    pub kill: ZoneAction,
}

fn slow() -> ZoneAction {
    ZoneAction::Slow
}
fn hold() -> ZoneAction {
    ZoneAction::Hold
}
fn rollback() -> ZoneAction {
    ZoneAction::Rollback
}

impl Default for Actions {
    fn default() -> Self {
        Self {
            watch: slow(),
            stop: hold(),
            kill: rollback(),
        }
    }
}

/// Severe complaint topics and the zone they put the gate in.
///
/// `severe` topics are judged as a comparison: the share of the treatment's confident
/// observations that mention the topic against the control's, with the same sequential test
/// and error budget as a metric; the zone applies when the treatment's share is significantly
/// higher and at least `min_increase` above the control's. `any_mention` phrases are the few
/// that stop a cohort on `min_mentions` confident treatment mentions in a window, whatever
/// the control says (each once per cohort).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    #[serde(default)]
    pub severe: Vec<String>,
    /// Phrases that act on any confident treatment mention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_mention: Vec<String>,
    /// Zone a severe topic (or an `any_mention` phrase) puts the cohort in.
    #[serde(default = "stop_zone")]
    pub on_new_severe: TopicZone,
    /// How many treatment observations must mention an `any_mention` phrase in a window.
    #[serde(default = "one_u64")]
    pub min_mentions: u64,
    /// Smallest increase of a severe topic's mention share over control's that counts, as a
    /// share of control's (or of the pooled share when control never mentions it).
    #[serde(default = "default_topic_increase")]
    pub min_increase: Fraction,
}

fn default_topic_increase() -> Fraction {
    Fraction(0.5)
}

/// Sample-ratio mismatch: which counts are units assigned to the arms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrmSpec {
    /// The metric whose samples count assigned units (e.g. a conversion rate's trials, one
    /// per user exposed). Its arms' cumulative counts are tested once per cohort.
    pub units: MetricName,
}

fn one_u64() -> u64 {
    1
}

/// The zone a severe topic puts a gate in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicZone {
    Watch,
    Stop,
    Kill,
}

fn stop_zone() -> TopicZone {
    TopicZone::Stop
}

/// A gate's contract as written, and — once `validate`d — as stored and judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub gate: GateKey,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub owner: String,
    pub variants: Variants,
    /// Exposure stages in percent; strictly increasing; ends at 100.
    pub ladder: Vec<f64>,
    pub stage_min_duration: Span,
    pub window: Span,
    #[serde(default = "zero_span")]
    pub grace: Span,
    /// Cohorts evaluated and ramped on their own; none means one cohort, `all`.
    #[serde(default)]
    pub cohorts: Vec<CohortName>,
    /// The evaluation-context attribute that names the cohort when OpenFeature providers
    /// evaluate the gate (flagd, OFREP), e.g. `platform`; default `cohort`.
    #[serde(
        default = "default_cohort_attribute",
        skip_serializing_if = "is_default_cohort_attribute"
    )]
    pub cohort_attribute: String,
    #[serde(default)]
    pub baseline: Baseline,
    #[serde(default)]
    pub test: TestKind,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    #[serde(default)]
    pub on_unreliable: OnUnreliable,
    /// The share of `alpha` spent on the sample-ratio-mismatch check (when `srm` is set).
    #[serde(default = "default_srm_alpha")]
    pub srm_alpha: f64,
    /// Expected share of units in the treatment arm (for sample-ratio mismatch).
    #[serde(default = "half")]
    pub treatment_share: f64,
    /// Sample-ratio mismatch check on assigned units; none: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srm: Option<SrmSpec>,
    /// Change detection: sequential tests are also judged on evidence that starts every
    /// `span` windows (see `engine::spans`), so a regression that begins late is not diluted.
    #[serde(default = "default_span")]
    pub span: u32,
    pub metrics: Vec<MetricSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Topics>,
    #[serde(default)]
    pub actions: Actions,
    /// Webhooks the leader POSTs matching decisions to (see `engine::notify`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<super::notify::Notify>,
}

/// The context attribute naming the cohort when a contract names none.
pub const DEFAULT_COHORT_ATTRIBUTE: &str = "cohort";

fn default_cohort_attribute() -> String {
    DEFAULT_COHORT_ATTRIBUTE.to_owned()
}
fn is_default_cohort_attribute(name: &str) -> bool {
    name == DEFAULT_COHORT_ATTRIBUTE
}
fn zero_span() -> Span {
    Span(0)
}
fn default_alpha() -> f64 {
    0.05
}
fn default_srm_alpha() -> f64 {
    0.001
}
fn half() -> f64 {
    0.5
}
fn default_span() -> u32 {
    4
}

impl Contract {
    /// Parses YAML (unknown fields refused) and validates the result.
    pub fn from_yaml(text: &str) -> Result<Contract, ContractError> {
        let contract: Contract = serde_yaml::from_str(text).map_err(|e| {
            let field = e
                .location()
                .map(|l| format!("line {} column {}", l.line(), l.column()))
                .unwrap_or_else(|| "contract".to_owned());
            ContractError(vec![FieldError {
                field,
                reason: e.to_string(),
            }])
        })?;
        contract.validate()?;
        Ok(contract)
    }

    /// The cohorts judged on their own (`all` when the contract names none).
    pub fn cohort_names(&self) -> Vec<CohortName> {
        if self.cohorts.is_empty() {
            vec![CohortName::default_cohort()]
        } else {
            self.cohorts.clone()
        }
    }

    /// The metric with this name.
    pub fn metric(&self, name: &MetricName) -> Option<&MetricSpec> {
        self.metrics.iter().find(|m| &m.name == name)
    }

    /// Earlier windows a rolling baseline covers (0 without one).
    pub fn rolling_windows(&self) -> usize {
        match &self.baseline {
            Baseline::Rolling(span) if self.window.0 > 0 => {
                usize::try_from(span.0.div_euclid(self.window.0)).unwrap_or(usize::MAX)
            }
            _ => 0,
        }
    }

    /// Closed windows a node keeps per cohort: at least [`MIN_WINDOWS_KEPT`] (more than the
    /// sequential test pools), and every window the rolling baseline covers.
    pub fn windows_kept(&self) -> usize {
        MIN_WINDOWS_KEPT.max(self.rolling_windows().saturating_add(1))
    }

    /// Start of the window holding `at` (windows are aligned to the epoch).
    pub fn window_start(&self, at: Millis) -> Millis {
        at.div_euclid(self.window.0) * self.window.0
    }
}

#[cfg(test)]
#[path = "contract_tests.rs"]
mod tests;
