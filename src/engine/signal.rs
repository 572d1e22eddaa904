//! Signals: one measurement for (gate, metric, cohort, arm, event time).
//!
//! This module owns the signal's shape and the checks that need nothing but the signal
//! itself (finite, non-negative, consistent values; sane sizes). Checks against a contract
//! (known metric, matching kind, open window) belong to the state machine, which has the
//! contract. Nothing here does IO.

use serde::{Deserialize, Serialize};

use crate::ids::{CohortName, GateKey, MetricName, Millis};

mod line;
pub use line::{SignalLine, SketchLine};

/// Which side of the experiment a signal was measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Treatment,
    Control,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Treatment => "treatment",
            Arm::Control => "control",
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    /// `events` out of `trials`.
    Rate { events: u64, trials: u64 },
    /// `n` values summarised by their sum and sum of squares.
    Moments { n: u64, sum: f64, sum_sq: f64 },
    /// A latency sketch (see `engine::sketch`): many timings in one signal.
    Sketch(super::sketch::Sketch),
    /// One scored observation, e.g. a review's sentiment from a classifier.
    Observation {
        value: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        topics: Vec<String>,
    },
}

impl Measurement {
    /// A short name of the shape, for error messages.
    pub fn shape(&self) -> &'static str {
        match self {
            Measurement::Rate { .. } => "rate (events/trials)",
            Measurement::Moments { .. } => "moments (n/sum/sum_sq)",
            Measurement::Observation { .. } => "observation (value)",
            Measurement::Sketch(_) => "sketch (values or sketch)",
        }
    }
}

/// One signal as the system stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub gate: GateKey,
    pub metric: MetricName,
    pub cohort: CohortName,
    pub arm: Arm,
    /// Event time, milliseconds since the epoch.
    pub at: Millis,
    pub measurement: Measurement,
}

/// Why one signal was refused: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SignalError {
    pub field: String,
    pub reason: String,
}

impl SignalError {
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why the cluster refused a well-formed signal: the checks against the gate's contract and
/// windows. Each refusal's field and words are fixed (only the names in them vary), so an
/// answer's field and reason say again which refusal it was ([`Refusal::of`]): the
/// rejection counter's `reason` label, a small fixed set whatever the messages say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownGate,
    UnknownMetric,
    UnknownCohort,
    WrongKind,
    Future,
    BeforeGate,
    ClosedWindow,
}

impl Refusal {
    const ALL: [Refusal; 7] = [
        Refusal::UnknownGate,
        Refusal::UnknownMetric,
        Refusal::UnknownCohort,
        Refusal::WrongKind,
        Refusal::Future,
        Refusal::BeforeGate,
        Refusal::ClosedWindow,
    ];

    /// The signal's field it is refused on.
    fn field(self) -> &'static str {
        match self {
            Refusal::UnknownGate => "gate",
            Refusal::UnknownMetric => "metric",
            Refusal::UnknownCohort => "cohort",
            Refusal::WrongKind => "measurement",
            Refusal::Future | Refusal::BeforeGate | Refusal::ClosedWindow => "at",
        }
    }

    /// The fixed words of its reason.
    pub fn words(self) -> &'static str {
        match self {
            Refusal::UnknownGate => "has no contract",
            Refusal::UnknownMetric => "has no metric",
            Refusal::UnknownCohort => "has no cohort",
            Refusal::WrongKind => "but the signal is a",
            Refusal::Future => "is more than 5 minutes ahead of cluster time",
            Refusal::BeforeGate => {
                "is before the gate's first window (the contract was not applied yet)"
            }
            Refusal::ClosedWindow => "arrived after its window closed (window end + grace)",
        }
    }

    /// Its name as a label value.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::UnknownGate => "unknown_gate",
            Refusal::UnknownMetric => "unknown_metric",
            Refusal::UnknownCohort => "unknown_cohort",
            Refusal::WrongKind => "wrong_kind",
            Refusal::Future => "future",
            Refusal::BeforeGate => "before_gate",
            Refusal::ClosedWindow => "closed_window",
        }
    }

    /// The refusal a rejection's field (without positions: `at`, not `signals[3].at`) and
    /// reason describe; none for a signal that could not be read or checked on its own.
    pub fn of(field: &str, reason: &str) -> Option<Refusal> {
        Self::ALL
            .into_iter()
            .find(|r| r.field() == field && reason.contains(r.words()))
    }

    /// This refusal of a signal, `reason` its whole reason (naming what it is about).
    pub fn error(self, reason: String) -> SignalError {
        debug_assert!(reason.contains(self.words()), "{reason}");
        SignalError::new(self.field(), reason)
    }
}

/// How far ahead of cluster time a signal's event time may be (clock skew between producers
/// and the cluster); the leader refuses signals further ahead, and so does the backtest.
pub const MAX_FUTURE_MS: Millis = 5 * 60 * 1000;

/// Largest count accepted in one signal (trials, n): beyond this a value is a bug upstream.
pub const MAX_COUNT: u64 = 1_000_000_000_000;
/// Largest magnitude of a value or sum.
pub const MAX_MAGNITUDE: f64 = 1e15;
/// Most topics one observation may carry.
pub const MAX_TOPICS: usize = 32;
/// Longest topic.
pub const MAX_TOPIC_LEN: usize = 64;

fn finite(field: &str, value: f64) -> Result<(), SignalError> {
    if !value.is_finite() {
        return Err(SignalError::new(
            field,
            format!("{value} is not a finite number"),
        ));
    }
    if value.abs() > MAX_MAGNITUDE {
        return Err(SignalError::new(
            field,
            format!("{value} is larger than {MAX_MAGNITUDE:e} in magnitude"),
        ));
    }
    Ok(())
}

fn count(field: &str, value: u64) -> Result<(), SignalError> {
    if value > MAX_COUNT {
        return Err(SignalError::new(
            field,
            format!("{value} is larger than {MAX_COUNT}"),
        ));
    }
    Ok(())
}

impl Measurement {
    /// Checks the values on their own: finite, in range, consistent.
    pub fn validate(&self) -> Result<(), SignalError> {
        match self {
            Measurement::Rate { events, trials } => {
                count("trials", *trials)?;
                if *trials == 0 {
                    return Err(SignalError::new("trials", "must be at least 1"));
                }
                if events > trials {
                    return Err(SignalError::new(
                        "events",
                        format!("{events} is more than trials ({trials})"),
                    ));
                }
            }
            Measurement::Moments { n, sum, sum_sq } => {
                count("n", *n)?;
                if *n == 0 {
                    return Err(SignalError::new("n", "must be at least 1"));
                }
                finite("sum", *sum)?;
                finite("sum_sq", *sum_sq)?;
                if *sum_sq < 0.0 {
                    return Err(SignalError::new("sum_sq", format!("{sum_sq} is negative")));
                }
                // Cauchy-Schwarz: sum^2 <= n * sum_sq, up to rounding.
                #[allow(clippy::cast_precision_loss)]
                let nf = *n as f64;
                if sum * sum > nf * sum_sq * (1.0 + 1e-9) + 1e-9 {
                    return Err(SignalError::new(
                        "sum_sq",
                        format!("{sum_sq} is too small for n={n} and sum={sum} (sum^2 must be <= n*sum_sq)"),
                    ));
                }
            }
            Measurement::Sketch(sketch) => {
                use super::sketch::MAX_BINS;
                if sketch.is_empty() {
                    return Err(SignalError::new("sketch", "holds no values"));
                }
                if sketch.bins.len() > MAX_BINS {
                    return Err(SignalError::new(
                        "sketch.bins",
                        format!("{} buckets; at most {MAX_BINS}", sketch.bins.len()),
                    ));
                }
                count("sketch", sketch.count())?;
            }
            Measurement::Observation {
                value,
                confidence,
                topics,
            } => {
                finite("value", *value)?;
                if let Some(c) = confidence {
                    if !c.is_finite() || !(0.0..=1.0).contains(c) {
                        return Err(SignalError::new(
                            "confidence",
                            format!("{c} is not in [0, 1]"),
                        ));
                    }
                }
                if topics.len() > MAX_TOPICS {
                    return Err(SignalError::new(
                        "topics",
                        format!("{} topics; at most {MAX_TOPICS}", topics.len()),
                    ));
                }
                for (i, t) in topics.iter().enumerate() {
                    if t.trim().is_empty() || t.len() > MAX_TOPIC_LEN {
                        return Err(SignalError::new(
                            &format!("topics[{i}]"),
                            format!("must be 1 to {MAX_TOPIC_LEN} bytes"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A sketch's buckets as a producer sent them: (relative accuracy, (bucket, count)s, zeros).
pub type SketchParts = (f64, Vec<(i32, u64)>, u64);

/// Builds a sketch from raw values or from a sketch's buckets, each error naming its field.
pub fn sketch_from_parts(
    values: Option<&[f64]>,
    buckets: Option<SketchParts>,
    field: &str,
) -> Result<super::sketch::Sketch, SignalError> {
    use super::sketch::{Sketch, MAX_VALUES, RELATIVE_ACCURACY};
    match (values, buckets) {
        (Some(values), None) => {
            if values.len() > MAX_VALUES {
                return Err(SignalError::new(
                    "values",
                    format!("{} values; at most {MAX_VALUES}", values.len()),
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if !v.is_finite() || *v < 0.0 || *v > MAX_MAGNITUDE {
                    return Err(SignalError::new(
                        &format!("values[{i}]"),
                        format!("{v} is not a finite non-negative number"),
                    ));
                }
            }
            Ok(Sketch::of_values(values))
        }
        (None, Some((accuracy, bins, zeros))) => {
            if (accuracy - RELATIVE_ACCURACY).abs() > 1e-12 {
                return Err(SignalError::new(
                    &format!("{field}.relative_accuracy"),
                    format!("{accuracy} is not {RELATIVE_ACCURACY}, the accuracy rampart merges sketches at"),
                ));
            }
            let mut s = Sketch {
                zeros,
                ..Sketch::default()
            };
            for (k, n) in bins {
                // Two spellings of one bucket ("7", "07") add up; the total is checked below.
                let c = s.bins.entry(k).or_default();
                *c = c.saturating_add(n);
            }
            if s.count() > MAX_COUNT {
                return Err(SignalError::new(
                    &format!("{field}.bins"),
                    format!("the counts add up to more than {MAX_COUNT}"),
                ));
            }
            Ok(s)
        }
        _ => Err(SignalError::new(
            "measurement",
            "give either values or sketch for a latency signal",
        )),
    }
}

/// The earliest event time an RFC 3339 time can spell (`0000-01-01T00:00:00Z`).
pub const MIN_AT: Millis = -62_167_219_200_000;
/// The latest (`9999-12-31T23:59:59.999Z`): a signal file can hold no later time, so neither
/// may a signal that arrives another way (it could not be written back as a line).
pub const MAX_AT: Millis = 253_402_300_799_999;

/// Checks an event time that did not come as RFC 3339 text (protobuf): within what a signal
/// line can spell.
pub fn check_time(field: &str, at: Millis) -> Result<Millis, SignalError> {
    if (MIN_AT..=MAX_AT).contains(&at) {
        Ok(at)
    } else {
        Err(SignalError::new(
            field,
            format!("{at} ms since the epoch is outside the years 0000 to 9999"),
        ))
    }
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_time(field: &str, text: &str) -> Result<Millis, SignalError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| SignalError::new(field, format!("{text:?} is not an RFC 3339 time: {e}")))
}

/// Formats epoch milliseconds as RFC 3339 (UTC), with the milliseconds when there are any
/// (`2026-11-21T10:03:00Z`, `2026-11-21T10:03:00.250Z`), so `parse_time` reads back the same
/// instant. Whole seconds are written as before.
pub fn format_time(at: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| at.to_string())
}

/// A signal's identifiers from text, each error naming its field; no cohort means `all`.
pub fn parse_ids(
    gate: &str,
    metric: &str,
    cohort: Option<&str>,
) -> Result<(GateKey, MetricName, CohortName), SignalError> {
    let gate = GateKey::try_from(gate).map_err(|e| SignalError::new("gate", e.0))?;
    let metric = MetricName::try_from(metric).map_err(|e| SignalError::new("metric", e.0))?;
    let cohort = match cohort {
        Some(c) => CohortName::try_from(c).map_err(|e| SignalError::new("cohort", e.0))?,
        None => CohortName::default_cohort(),
    };
    Ok((gate, metric, cohort))
}

/// Parses an arm name.
pub fn parse_arm(text: &str) -> Result<Arm, SignalError> {
    match text {
        "treatment" => Ok(Arm::Treatment),
        "control" => Ok(Arm::Control),
        other => Err(SignalError::new(
            "arm",
            format!("{other:?} is neither treatment nor control"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> Result<Signal, SignalError> {
        serde_json::from_str::<SignalLine>(json)
            .unwrap()
            .into_signal()
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        let e = SignalLine::read(r#"{"gate":"g","metric":"m","arm":"treatment","at":"2026-11-21T10:03:00Z","events":-1,"trials":3}"#).unwrap_err();
        assert_eq!(e.field, "events");
        assert!(
            e.reason.contains("-1") && !e.reason.contains("column"),
            "{}",
            e.reason
        );
        let e = SignalLine::read("{not json").unwrap_err();
        assert_eq!(e.field, "line");
        let e =
            SignalLine::read(r#"{"gate":"g","metric":"m","arm":"treatment","at":"x","colour":1}"#)
                .unwrap_err();
        assert!(e.reason.contains("colour"), "{}", e.reason);
        let e = SignalLine::read_value(serde_json::json!({"gate": 3})).unwrap_err();
        assert_eq!(e.field, "gate");
    }

    #[test]
    fn design_examples_parse() {
        let s = line(r#"{"gate":"checkout-v2","metric":"negative_review_rate","cohort":"mobile","arm":"treatment","at":"2026-11-21T10:03:00Z","events":12,"trials":340}"#).unwrap();
        assert_eq!(
            s.measurement,
            Measurement::Rate {
                events: 12,
                trials: 340
            }
        );
        let s = line(r#"{"gate":"checkout-v2","metric":"review_sentiment","cohort":"mobile","arm":"treatment","at":"2026-11-21T10:03:10Z","value":-0.6,"confidence":0.91,"topics":["confusing"]}"#).unwrap();
        assert!(matches!(s.measurement, Measurement::Observation { .. }));
    }

    #[test]
    fn bad_values_name_their_field() {
        let base = r#""gate":"g","metric":"m","arm":"control","at":"2026-11-21T10:03:00Z""#;
        assert_eq!(
            line(&format!("{{{base},\"events\":5,\"trials\":3}}"))
                .unwrap_err()
                .field,
            "events"
        );
        assert_eq!(
            line(&format!("{{{base},\"n\":3,\"sum\":1e300,\"sum_sq\":1}}"))
                .unwrap_err()
                .field,
            "sum"
        );
        assert_eq!(
            line(&format!("{{{base},\"value\":0.1,\"confidence\":1.5}}"))
                .unwrap_err()
                .field,
            "confidence"
        );
        assert_eq!(
            line(&format!("{{{base},\"n\":4,\"sum\":10,\"sum_sq\":1}}"))
                .unwrap_err()
                .field,
            "sum_sq"
        );
        let bad_at = r#"{"gate":"g","metric":"m","arm":"control","at":"yesterday","value":1}"#;
        assert_eq!(line(bad_at).unwrap_err().field, "at");
        let bad_arm =
            r#"{"gate":"g","metric":"m","arm":"both","at":"2026-11-21T10:03:00Z","value":1}"#;
        assert_eq!(line(bad_arm).unwrap_err().field, "arm");
    }

    #[test]
    fn written_times_keep_their_milliseconds() {
        // Whole seconds are written as before (and as older files hold them).
        assert_eq!(format_time(1_795_255_380_000), "2026-11-21T10:03:00Z");
        assert_eq!(format_time(1_795_255_380_250), "2026-11-21T10:03:00.250Z");
        for at in [0, 1, 999, -1, -1001, 1_795_255_380_007, 1_795_255_380_250] {
            assert_eq!(parse_time("at", &format_time(at)), Ok(at), "{at}");
        }
        let signal = line(
            r#"{"gate":"g","metric":"m","arm":"control","at":"2026-11-21T10:03:00.25Z","value":1}"#,
        )
        .unwrap();
        assert_eq!(signal.at, 1_795_255_380_250);
        let written = serde_json::to_string(&SignalLine::from_signal(&signal)).unwrap();
        assert_eq!(line(&written).unwrap(), signal, "{written}");
    }

    #[test]
    fn sketch_counts_that_overflow_are_refused() {
        let base = r#""gate":"g","metric":"m","arm":"control","at":"2026-11-21T10:03:00Z""#;
        for bins in [
            r#"{"1":18446744073709551615,"01":5}"#,
            r#"{"1":18446744073709551615,"2":1}"#,
            r#"{"1":1000000000000,"2":1}"#,
        ] {
            let json = format!(r#"{{{base},"sketch":{{"relative_accuracy":0.01,"bins":{bins}}}}}"#);
            assert_eq!(line(&json).unwrap_err().field, "sketch.bins", "{bins}");
        }
        let sketch = crate::engine::sketch::Sketch {
            zeros: u64::MAX,
            bins: [(1, 1)].into_iter().collect(),
        };
        assert_eq!(sketch.count(), u64::MAX);
    }

    #[test]
    fn the_time_range_is_what_a_line_can_spell() {
        for at in [MIN_AT, MAX_AT] {
            assert_eq!(parse_time("at", &format_time(at)), Ok(at), "{at}");
            assert_eq!(check_time("at", at), Ok(at));
        }
        assert_eq!(check_time("at", MAX_AT + 1).unwrap_err().field, "at");
        assert_eq!(check_time("at", MIN_AT - 1).unwrap_err().field, "at");
    }

    #[test]
    fn nan_is_refused() {
        let m = Measurement::Observation {
            value: f64::NAN,
            confidence: None,
            topics: vec![],
        };
        assert_eq!(m.validate().unwrap_err().field, "value");
    }
}
