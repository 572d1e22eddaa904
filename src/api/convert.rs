//! Conversions between the protobuf types of `rampart.v1` and the domain, in one file.
//! Incoming values are parsed and validated here, once, naming the field on error.

use prost_types::Timestamp;

use super::error::ApiError;
use crate::engine::policy::CohortState;
use crate::engine::signal::parse_ids;
use crate::engine::{
    Arm, Figures, Measurement, MetricEvidence, Signal, SignalError, TopicEvidence, Window, Zone,
};
use crate::ids::{CohortName, GateKey, MetricName, Millis};
use crate::proto::v1 as pb;
use crate::state::{DecidedBy, Decision, Gate};

pub fn timestamp(ms: Millis) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub fn millis(ts: &Timestamp) -> Millis {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000)
}

pub fn gate_key(field: &str, value: &str) -> Result<GateKey, ApiError> {
    GateKey::try_from(value).map_err(|e| ApiError::invalid(field, e.0))
}

/// An optional id (cohort, metric): empty is None, anything else must be valid.
fn id_opt<'a, T>(field: &str, value: &'a str) -> Result<Option<T>, ApiError>
where
    T: TryFrom<&'a str, Error = crate::ids::IdError>,
{
    if value.is_empty() {
        return Ok(None);
    }
    T::try_from(value)
        .map(Some)
        .map_err(|e| ApiError::invalid(field, e.0))
}

/// An optional metric name: empty is None.
pub fn metric_opt(field: &str, value: &str) -> Result<Option<MetricName>, ApiError> {
    id_opt(field, value)
}

/// The window aggregates of a gate, by cohort, window start and the contract's metric order;
/// only `cohort`, `metric` and windows starting at or after `since` when given.
pub fn window_aggregates(
    g: &Gate,
    cohort: Option<&CohortName>,
    metric: Option<&MetricName>,
    since: Option<Millis>,
) -> Vec<pb::WindowAggregate> {
    let mut out = Vec::new();
    for ((c, start), w) in &g.windows {
        if cohort.is_some_and(|x| x != c) || since.is_some_and(|s| *start < s) {
            continue;
        }
        let judged = g.cohorts.get(c).is_some_and(|s| s.judged(*start));
        let end = w
            .window
            .map_or(start.saturating_add(g.contract.window.0), |x| x.end);
        for spec in &g.contract.metrics {
            if metric.is_some_and(|m| *m != spec.name) {
                continue;
            }
            let m = w.metric(&spec.name);
            out.push(pb::WindowAggregate {
                cohort: c.to_string(),
                metric: spec.name.to_string(),
                window_start: Some(timestamp(*start)),
                window_end: Some(timestamp(end)),
                samples_treatment: m.treatment.samples(spec.kind),
                samples_control: m.control.samples(spec.kind),
                treatment: crate::engine::judge::point(spec, &m.treatment),
                control: crate::engine::judge::point(spec, &m.control),
                judged,
            });
        }
    }
    out
}

/// An optional cohort name: empty is None.
pub fn cohort_opt(field: &str, value: &str) -> Result<Option<CohortName>, ApiError> {
    id_opt(field, value)
}

/// A protobuf signal to a checked domain signal; errors name the field inside the signal.
pub fn signal(s: &pb::Signal) -> Result<Signal, SignalError> {
    let cohort = Some(s.cohort.as_str()).filter(|c| !c.is_empty());
    let (gate, metric, cohort) = parse_ids(&s.gate, &s.metric, cohort)?;
    let arm = match pb::Arm::try_from(s.arm) {
        Ok(pb::Arm::Treatment) => Arm::Treatment,
        Ok(pb::Arm::Control) => Arm::Control,
        _ => {
            return Err(SignalError::new(
                "arm",
                "must be ARM_TREATMENT or ARM_CONTROL",
            ))
        }
    };
    let at =
        s.at.as_ref()
            .map(millis)
            .ok_or_else(|| SignalError::new("at", "is required"))?;
    let at = crate::engine::signal::check_time("at", at)?;
    let measurement = match &s.measurement {
        Some(pb::signal::Measurement::Rate(r)) => Measurement::Rate {
            events: r.events,
            trials: r.trials,
        },
        Some(pb::signal::Measurement::Moments(m)) => Measurement::Moments {
            n: m.n,
            sum: m.sum,
            sum_sq: m.sum_sq,
        },
        Some(pb::signal::Measurement::Observation(o)) => Measurement::Observation {
            value: o.value,
            confidence: o.confidence,
            topics: o.topics.clone(),
        },
        Some(pb::signal::Measurement::Sketch(k)) => {
            let values = (!k.values.is_empty()).then_some(k.values.as_slice());
            let buckets =
                (k.relative_accuracy != 0.0 || !k.bins.is_empty() || k.zeros > 0).then(|| {
                    (
                        k.relative_accuracy,
                        k.bins.iter().map(|(b, n)| (*b, *n)).collect::<Vec<_>>(),
                        k.zeros,
                    )
                });
            Measurement::Sketch(crate::engine::signal::sketch_from_parts(
                values, buckets, "sketch",
            )?)
        }
        None => {
            return Err(SignalError::new(
                "measurement",
                "one of rate, moments, observation, sketch is required",
            ))
        }
    };
    measurement.validate().map_err(|e| {
        let prefix = match measurement {
            Measurement::Rate { .. } => "rate",
            Measurement::Moments { .. } => "moments",
            Measurement::Observation { .. } => "observation",
            Measurement::Sketch(_) => "sketch",
        };
        SignalError::new(&format!("{prefix}.{}", e.field), e.reason)
    })?;
    Ok(Signal {
        gate,
        metric,
        cohort,
        arm,
        at,
        measurement,
    })
}

/// A domain signal to protobuf (for clients such as the CLI).
pub fn signal_to_proto(s: &Signal) -> pb::Signal {
    let measurement = match &s.measurement {
        Measurement::Rate { events, trials } => pb::signal::Measurement::Rate(pb::Rate {
            events: *events,
            trials: *trials,
        }),
        Measurement::Moments { n, sum, sum_sq } => pb::signal::Measurement::Moments(pb::Moments {
            n: *n,
            sum: *sum,
            sum_sq: *sum_sq,
        }),
        Measurement::Sketch(sketch) => pb::signal::Measurement::Sketch(pb::Sketch {
            relative_accuracy: crate::engine::sketch::RELATIVE_ACCURACY,
            bins: sketch.bins.iter().map(|(k, n)| (*k, *n)).collect(),
            zeros: sketch.zeros,
            values: Vec::new(),
        }),
        Measurement::Observation {
            value,
            confidence,
            topics,
        } => pb::signal::Measurement::Observation(pb::Observation {
            value: *value,
            confidence: *confidence,
            topics: topics.clone(),
        }),
    };
    pb::Signal {
        gate: s.gate.to_string(),
        metric: s.metric.to_string(),
        cohort: s.cohort.to_string(),
        arm: match s.arm {
            Arm::Treatment => pb::Arm::Treatment as i32,
            Arm::Control => pb::Arm::Control as i32,
        },
        at: Some(timestamp(s.at)),
        measurement: Some(measurement),
    }
}

fn interval(i: Option<(f64, f64)>) -> Option<pb::Interval> {
    i.map(|(low, high)| pb::Interval { low, high })
}

fn interval_from_proto(i: Option<&pb::Interval>) -> Option<(f64, f64)> {
    i.map(|i| (i.low, i.high))
}

/// A metric's evidence as the proto carries it (flat: the figures beside metric, cohort,
/// window, zone). [`evidence_from_proto`] is its inverse.
pub fn evidence(e: &MetricEvidence) -> pb::MetricEvidence {
    let f = &e.figures;
    pb::MetricEvidence {
        metric: e.metric.to_string(),
        cohort: e.cohort.to_string(),
        window_start: Some(timestamp(e.window.start)),
        window_end: Some(timestamp(e.window.end)),
        zone: e.zone.as_str().to_owned(),
        streak: e.streak,
        unreliable_reason: e.unreliable_reason.clone().unwrap_or_default(),
        summary: e.summary.clone(),
        treatment: f.treatment,
        control: f.control,
        baseline: f.baseline,
        baseline_source: f.baseline_source.clone(),
        delta: f.delta,
        delta_interval: interval(f.delta_interval),
        relative: f.relative,
        relative_interval: interval(f.relative_interval),
        p_value: f.p_value,
        e_value: f.e_value,
        samples_treatment: f.samples_treatment,
        samples_control: f.samples_control,
        window_samples_treatment: f.window_samples_treatment,
        window_samples_control: f.window_samples_control,
        window_treatment: f.window_treatment,
        window_control: f.window_control,
        span_windows: f.span_windows,
        test: f.test.clone(),
        treatment_interval: interval(f.treatment_interval),
        ceiling_p_value: f.ceiling_p_value,
        srm_p_value: f.srm_p_value,
        low_confidence_share: f.low_confidence_share,
        alpha: f.alpha,
        ceiling_e_value: f.ceiling_e_value,
        ceiling_span_windows: f.ceiling_span_windows,
        ceiling_alpha: f.ceiling_alpha,
        quantile: f.quantile,
        exceedance_interval: interval(f.exceedance_interval),
    }
}

/// A metric's evidence read back from the proto (what a client does before it shows it),
/// naming the field it cannot read.
pub fn evidence_from_proto(e: &pb::MetricEvidence) -> Result<MetricEvidence, ApiError> {
    let id = |field: &str, value: &str| ApiError::invalid(field, format!("{value:?} is not an id"));
    let metric = MetricName::try_from(e.metric.as_str()).map_err(|_| id("metric", &e.metric))?;
    let cohort = CohortName::try_from(e.cohort.as_str()).map_err(|_| id("cohort", &e.cohort))?;
    let at = |field: &str, t: Option<&Timestamp>| {
        t.map(millis)
            .ok_or_else(|| ApiError::invalid(field, "missing"))
    };
    let window = Window {
        start: at("window_start", e.window_start.as_ref())?,
        end: at("window_end", e.window_end.as_ref())?,
    };
    let zone = Zone::from_label(&e.zone)
        .ok_or_else(|| ApiError::invalid("zone", format!("{:?} is not a zone", e.zone)))?;
    Ok(MetricEvidence {
        metric,
        cohort,
        window,
        zone,
        streak: e.streak,
        unreliable_reason: (!e.unreliable_reason.is_empty()).then(|| e.unreliable_reason.clone()),
        summary: e.summary.clone(),
        figures: Figures {
            treatment: e.treatment,
            control: e.control,
            baseline: e.baseline,
            baseline_source: e.baseline_source.clone(),
            delta: e.delta,
            delta_interval: interval_from_proto(e.delta_interval.as_ref()),
            relative: e.relative,
            relative_interval: interval_from_proto(e.relative_interval.as_ref()),
            p_value: e.p_value,
            e_value: e.e_value,
            samples_treatment: e.samples_treatment,
            samples_control: e.samples_control,
            span_windows: e.span_windows,
            test: e.test.clone(),
            alpha: e.alpha,
            window_treatment: e.window_treatment,
            window_control: e.window_control,
            window_samples_treatment: e.window_samples_treatment,
            window_samples_control: e.window_samples_control,
            treatment_interval: interval_from_proto(e.treatment_interval.as_ref()),
            ceiling_p_value: e.ceiling_p_value,
            ceiling_e_value: e.ceiling_e_value,
            ceiling_span_windows: e.ceiling_span_windows,
            ceiling_alpha: e.ceiling_alpha,
            srm_p_value: e.srm_p_value,
            low_confidence_share: e.low_confidence_share,
            quantile: e.quantile,
            exceedance_interval: interval_from_proto(e.exceedance_interval.as_ref()),
        },
    })
}

pub fn decision(d: &Decision) -> pb::Decision {
    pb::Decision {
        gate: d.gate.to_string(),
        version: d.version,
        cohort: d
            .cohort
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        action: d.action.label(),
        changes: d
            .changes
            .iter()
            .map(|c| pb::CohortChange {
                cohort: c.cohort.to_string(),
                from_exposure: c.from_exposure,
                to_exposure: c.to_exposure,
                from_status: c.from_status.as_str().to_owned(),
                to_status: c.to_status.as_str().to_owned(),
            })
            .collect(),
        kill_switch_before: d.kill_switch_before,
        kill_switch: d.kill_switch,
        reason: d.reason.clone(),
        evidence: d.evidence.iter().map(evidence).collect(),
        topics: d.topics.iter().map(topic).collect(),
        contract_version: d.contract_version,
        decided_by: match &d.decided_by {
            DecidedBy::Leader { node, term } => format!("leader:{node}@{term}"),
            DecidedBy::Operator { actor } => format!("operator:{actor}"),
        },
        at: Some(timestamp(d.at)),
        window_start: d.window.map(|w| timestamp(w.start)),
        window_end: d.window.map(|w| timestamp(w.end)),
    }
}

/// A severe topic's evidence in a decision.
pub fn topic(t: &TopicEvidence) -> pb::TopicEvidence {
    pb::TopicEvidence {
        topic: t.topic.clone(),
        metric: t.metric.to_string(),
        cohort: t.cohort.to_string(),
        window_start: Some(timestamp(t.window.start)),
        window_end: Some(timestamp(t.window.end)),
        treatment_mentions: t.treatment_mentions,
        control_mentions: t.control_mentions,
        zone: t.zone.as_str().to_owned(),
        summary: t.summary.clone(),
        treatment_share: t.treatment_share,
        control_share: t.control_share,
        e_value: t.e_value,
        p_value: t.p_value,
        alpha: t.alpha,
        span_windows: t.span_windows,
        any_mention: t.any_mention,
    }
}

fn cohort_state(name: &CohortName, s: &CohortState) -> pb::CohortState {
    pb::CohortState {
        cohort: name.to_string(),
        exposure: s.exposure,
        stage: u32::try_from(s.stage).unwrap_or(u32::MAX),
        status: s.status.as_str().to_owned(),
        stage_since: Some(timestamp(s.stage_since)),
        last_window: s.last_window.map(timestamp),
    }
}

pub fn gate_state(g: &Gate, read: pb::ReadInfo) -> pb::GateState {
    pb::GateState {
        gate: g.key.to_string(),
        version: g.version,
        contract_version: g.contract_version,
        kill_switch: g.kill_switch,
        cohorts: g.cohorts.iter().map(|(n, s)| cohort_state(n, s)).collect(),
        last_decision: g.decisions.last().map(decision),
        treatment: g.contract.variants.treatment.clone(),
        fallback: g.contract.variants.fallback.clone(),
        deleted: g.deleted,
        read: Some(read),
        signals_accepted: g.signals_accepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(sketch: pb::Sketch) -> pb::Signal {
        pb::Signal {
            gate: "search-v2".into(),
            metric: "search_latency".into(),
            cohort: String::new(),
            arm: pb::Arm::Treatment as i32,
            at: Some(timestamp(1_795_255_200_000)),
            measurement: Some(pb::signal::Measurement::Sketch(sketch)),
        }
    }

    #[test]
    fn a_sketch_round_trips_and_bad_ones_name_the_field() {
        let raw = latency(pb::Sketch {
            values: vec![0.1, 0.2, 0.0],
            ..pb::Sketch::default()
        });
        let domain = signal(&raw).expect("values");
        let back = signal(&signal_to_proto(&domain)).expect("buckets");
        assert_eq!(back, domain);
        let Measurement::Sketch(s) = &domain.measurement else {
            panic!("a sketch")
        };
        assert_eq!(s.count(), 3);

        let wrong = latency(pb::Sketch {
            relative_accuracy: 0.05,
            bins: [(3, 1)].into_iter().collect(),
            ..pb::Sketch::default()
        });
        assert_eq!(
            signal(&wrong).unwrap_err().field,
            "sketch.relative_accuracy"
        );
        let empty = latency(pb::Sketch::default());
        assert_eq!(signal(&empty).unwrap_err().field, "measurement");
        let negative = latency(pb::Sketch {
            values: vec![0.1, f64::NAN],
            ..pb::Sketch::default()
        });
        assert_eq!(signal(&negative).unwrap_err().field, "values[1]");
    }

    #[test]
    fn a_time_no_signal_line_can_spell_is_refused() {
        let mut raw = latency(pb::Sketch {
            values: vec![0.1],
            ..pb::Sketch::default()
        });
        raw.at = Some(Timestamp {
            seconds: 26_412_113_292_372,
            nanos: 0,
        });
        assert_eq!(signal(&raw).unwrap_err().field, "at");
        raw.at = Some(timestamp(crate::engine::signal::MAX_AT));
        assert!(signal(&raw).is_ok());
    }
}
