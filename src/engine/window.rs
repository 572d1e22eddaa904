//! Window aggregates: what the signals of one (gate, cohort, window) add up to, per metric
//! and arm. Aggregation is exact and order-independent for counts and sums, so every node
//! that applies the same signals holds the same aggregates.
//!
//! This module owns how a signal is folded into its window. It never judges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::contract::{MetricKind, MetricSpec};
use super::signal::{Arm, Measurement, Refusal, Signal, SignalError};
use crate::ids::{MetricName, Millis};

/// An event-time interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start: Millis,
    pub end: Millis,
}

/// The sums of one arm of one metric in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmAggregate {
    /// Signals folded in (confident or not).
    pub signals: u64,
    /// Rates: events and trials.
    pub events: u64,
    pub trials: u64,
    /// Means and observations: count, sum, sum of squares (confident observations only).
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
    /// Observations below the metric's `min_confidence`, left out of the sums.
    pub low_confidence: u64,
    /// Event time of the newest signal.
    pub newest_at: Option<Millis>,
    /// Mentions per topic among counted observations.
    pub topics: BTreeMap<String, u64>,
    /// Latency: every timing of the arm.
    #[serde(default, skip_serializing_if = "super::sketch::Sketch::is_empty")]
    pub sketch: super::sketch::Sketch,
}

impl ArmAggregate {
    /// Sample size: trials for rates, n otherwise.
    pub fn samples(&self, kind: MetricKind) -> u64 {
        match kind {
            MetricKind::Rate => self.trials,
            MetricKind::Mean | MetricKind::Observations => self.n,
            MetricKind::Latency => self.sketch.count(),
        }
    }

    /// Point value: the rate, the mean, or the latency quantile; None without samples.
    #[allow(clippy::cast_precision_loss)]
    pub fn value(&self, kind: MetricKind) -> Option<f64> {
        self.value_at(kind, 0.5)
    }

    /// Point value, the latency quantile being `q`.
    #[allow(clippy::cast_precision_loss)]
    pub fn value_at(&self, kind: MetricKind, q: f64) -> Option<f64> {
        match kind {
            MetricKind::Latency => self.sketch.quantile(q),
            MetricKind::Rate if self.trials > 0 => Some(self.events as f64 / self.trials as f64),
            MetricKind::Mean | MetricKind::Observations if self.n > 0 => {
                Some(self.sum / self.n as f64)
            }
            _ => None,
        }
    }

    /// Adds another aggregate (pooling windows for a rolling baseline).
    pub fn merge(&mut self, other: &ArmAggregate) {
        self.signals += other.signals;
        self.events += other.events;
        self.trials += other.trials;
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.low_confidence += other.low_confidence;
        self.newest_at = self.newest_at.max(other.newest_at);
        for (topic, count) in &other.topics {
            *self.topics.entry(topic.clone()).or_default() += count;
        }
        self.sketch.merge(&other.sketch);
    }
}

/// Both arms of one metric in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricWindow {
    pub treatment: ArmAggregate,
    pub control: ArmAggregate,
}

impl MetricWindow {
    pub fn arm(&self, arm: Arm) -> &ArmAggregate {
        match arm {
            Arm::Treatment => &self.treatment,
            Arm::Control => &self.control,
        }
    }

    fn arm_mut(&mut self, arm: Arm) -> &mut ArmAggregate {
        match arm {
            Arm::Treatment => &mut self.treatment,
            Arm::Control => &mut self.control,
        }
    }
}

/// Every metric of one cohort in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CohortWindow {
    pub window: Option<Window>,
    pub metrics: BTreeMap<MetricName, MetricWindow>,
}

impl CohortWindow {
    pub fn new(window: Window) -> Self {
        Self {
            window: Some(window),
            metrics: BTreeMap::new(),
        }
    }

    /// The metric's aggregates, empty when no signal arrived.
    pub fn metric(&self, name: &MetricName) -> MetricWindow {
        self.metrics.get(name).cloned().unwrap_or_default()
    }

    /// Folds a signal in. The signal's shape must match the metric's kind.
    pub fn add(&mut self, spec: &MetricSpec, signal: &Signal) -> Result<(), SignalError> {
        check_kind(spec, &signal.measurement)?;
        let agg = self
            .metrics
            .entry(spec.name.clone())
            .or_default()
            .arm_mut(signal.arm);
        agg.signals += 1;
        agg.newest_at = agg.newest_at.max(Some(signal.at));
        match &signal.measurement {
            Measurement::Rate { events, trials } => {
                agg.events += events;
                agg.trials += trials;
            }
            Measurement::Moments { n, sum, sum_sq } => {
                agg.n += n;
                agg.sum += sum;
                agg.sum_sq += sum_sq;
            }
            Measurement::Sketch(sketch) => agg.sketch.merge(sketch),
            Measurement::Observation {
                value,
                confidence,
                topics,
            } => {
                let confident = match (spec.min_confidence, confidence) {
                    (Some(floor), Some(c)) => *c >= floor,
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                if !confident {
                    agg.low_confidence += 1;
                    return Ok(());
                }
                agg.n += 1;
                agg.sum += value;
                agg.sum_sq += value * value;
                for topic in topics {
                    *agg.topics.entry(topic.to_lowercase()).or_default() += 1;
                }
            }
        }
        Ok(())
    }
}

/// Refuses a signal whose shape does not fit the metric's kind.
pub fn check_kind(spec: &MetricSpec, measurement: &Measurement) -> Result<(), SignalError> {
    let fits = matches!(
        (spec.kind, measurement),
        (MetricKind::Rate, Measurement::Rate { .. })
            | (MetricKind::Mean, Measurement::Moments { .. })
            | (MetricKind::Observations, Measurement::Observation { .. })
            | (MetricKind::Latency, Measurement::Sketch(_))
    );
    if fits {
        Ok(())
    } else {
        Err(Refusal::WrongKind.error(format!(
            "metric {} is of kind {:?} {} {}",
            spec.name,
            spec.kind,
            Refusal::WrongKind.words(),
            measurement.shape()
        )))
    }
}
