//! The JSON-lines form of a signal (`docs/design.md`, "Signal files"): one flat object per
//! line, read into a checked `Signal` with errors that name the field, and written back from
//! one. The checks themselves are the parent module's; nothing here does IO.

use serde::{Deserialize, Serialize};

use super::*;

/// One line of a signal file (`docs/design.md`, "Signal files"): flat JSON, shape told by its
/// fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalLine {
    pub gate: String,
    pub metric: String,
    #[serde(default)]
    pub cohort: Option<String>,
    pub arm: String,
    /// RFC 3339 time, e.g. `2026-11-21T10:03:00Z`.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum_sq: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// Latency: raw timings (folded into a sketch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f64>>,
    /// Latency: a sketch's buckets, computed with `relative_accuracy` 0.01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sketch: Option<SketchLine>,
    /// When the signal reached the cluster (RFC 3339), for `rampart backtest` only: the
    /// replay judges lateness by it. The cluster ignores it (its own time is the arrival).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
}

impl SignalLine {
    /// Reads one line of a signal file. A value of the wrong type names its field
    /// (`events: invalid value: integer `-1`, expected u64`); a line that is not JSON is
    /// `line`. Positions inside the line are left out: the caller knows the file's line.
    pub fn read(json: &str) -> Result<SignalLine, SignalError> {
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut de).map_err(line_error)
    }

    /// `read`, for an item already parsed as JSON (an element of a JSON array).
    pub fn read_value(value: serde_json::Value) -> Result<SignalLine, SignalError> {
        serde_path_to_error::deserialize(value).map_err(line_error)
    }
}

fn line_error(e: serde_path_to_error::Error<serde_json::Error>) -> SignalError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let mut reason = inner.to_string();
    if inner.line() > 0 {
        if let Some((message, _)) = reason.rsplit_once(" at line ") {
            reason = message.to_owned();
        }
    }
    // serde_path_to_error spells "no field yet" as "." or "?": JSON that is no signal line
    // (a missing or unknown field) is the `signal`'s fault, text that is no JSON the `line`'s.
    let field = if !(path.is_empty() || path == "." || path == "?") {
        path.as_str()
    } else if inner.is_data() {
        "signal"
    } else {
        "line"
    };
    SignalError::new(field, reason)
}

/// A sketch as a signal line carries it: `{"relative_accuracy": 0.01, "bins": {"-230": 4},
/// "zeros": 0}` (bucket k = ⌈ln x / ln γ⌉, γ = (1 + a)/(1 − a)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SketchLine {
    pub relative_accuracy: f64,
    #[serde(default)]
    pub bins: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub zeros: u64,
}

impl SignalLine {
    /// Turns a flat line into a checked signal.
    pub fn into_signal(self) -> Result<Signal, SignalError> {
        let (gate, metric, cohort) = parse_ids(&self.gate, &self.metric, self.cohort.as_deref())?;
        let arm = parse_arm(&self.arm)?;
        let at = parse_time("at", &self.at)?;
        let latency = self.values.is_some() || self.sketch.is_some();
        let measurement = match (self.events, self.trials, self.n, self.value) {
            (None, None, None, None) if latency => {
                let buckets = match &self.sketch {
                    Some(line) => {
                        let mut bins = Vec::with_capacity(line.bins.len());
                        for (k, n) in &line.bins {
                            let k: i32 = k.trim().parse().map_err(|_| {
                                SignalError::new(
                                    &format!("sketch.bins.{k}"),
                                    "a bucket index must be an integer",
                                )
                            })?;
                            bins.push((k, *n));
                        }
                        Some((line.relative_accuracy, bins, line.zeros))
                    }
                    None => None,
                };
                Measurement::Sketch(sketch_from_parts(
                    self.values.as_deref(),
                    buckets,
                    "sketch",
                )?)
            }
            (Some(events), Some(trials), None, None) => Measurement::Rate { events, trials },
            (None, None, Some(n), None) => Measurement::Moments {
                n,
                sum: self
                    .sum
                    .ok_or_else(|| SignalError::new("sum", "is required with n"))?,
                sum_sq: self
                    .sum_sq
                    .ok_or_else(|| SignalError::new("sum_sq", "is required with n"))?,
            },
            (None, None, None, Some(value)) => Measurement::Observation {
                value,
                confidence: self.confidence,
                topics: self.topics,
            },
            _ => {
                return Err(SignalError::new(
                    "measurement",
                    "give exactly one of: events+trials, n+sum+sum_sq, value, or values/sketch",
                ))
            }
        };
        measurement.validate()?;
        Ok(Signal {
            gate,
            metric,
            cohort,
            arm,
            at,
            measurement,
        })
    }

    /// The flat line of a signal (for files and the CLI).
    pub fn from_signal(signal: &Signal) -> SignalLine {
        let mut line = SignalLine {
            gate: signal.gate.to_string(),
            metric: signal.metric.to_string(),
            cohort: Some(signal.cohort.to_string()),
            arm: signal.arm.as_str().to_owned(),
            at: format_time(signal.at),
            ..SignalLine::default()
        };
        match &signal.measurement {
            Measurement::Rate { events, trials } => {
                line.events = Some(*events);
                line.trials = Some(*trials);
            }
            Measurement::Moments { n, sum, sum_sq } => {
                line.n = Some(*n);
                line.sum = Some(*sum);
                line.sum_sq = Some(*sum_sq);
            }
            Measurement::Sketch(sketch) => {
                line.sketch = Some(SketchLine {
                    relative_accuracy: crate::engine::sketch::RELATIVE_ACCURACY,
                    bins: sketch
                        .bins
                        .iter()
                        .map(|(k, n)| (k.to_string(), *n))
                        .collect(),
                    zeros: sketch.zeros,
                });
            }
            Measurement::Observation {
                value,
                confidence,
                topics,
            } => {
                line.value = Some(*value);
                line.confidence = *confidence;
                line.topics.clone_from(topics);
            }
        }
        line
    }
}
