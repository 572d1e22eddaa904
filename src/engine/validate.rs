//! Validation of the contract language: every rule, every problem reported with its field
//! path and the reason, all at once. Pure; owns no data model (that is `contract`).

use std::collections::BTreeSet;

use super::contract::*;

impl Contract {
    /// Checks every rule of the language; reports all problems at once.
    pub fn validate(&self) -> Result<(), ContractError> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, reason: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                reason,
            });
        };
        if self.variants.treatment.trim().is_empty() {
            fail("variants.treatment", "must not be empty".into());
        }
        if self.variants.fallback.trim().is_empty() {
            fail("variants.fallback", "must not be empty".into());
        }
        let attribute = &self.cohort_attribute;
        if attribute.is_empty() || attribute.len() > 128 || attribute.trim() != attribute {
            fail(
                "cohort_attribute",
                format!("{attribute:?} is not an attribute name (1 to 128 bytes, no surrounding spaces)"),
            );
        } else if attribute == "targetingKey" {
            fail(
                "cohort_attribute",
                "targetingKey names the unit, not its cohort".into(),
            );
        }
        if self.ladder.is_empty() {
            fail("ladder", "must hold at least one stage".into());
        }
        for (i, stage) in self.ladder.iter().enumerate() {
            if !stage.is_finite() || *stage <= 0.0 || *stage > 100.0 {
                fail(
                    &format!("ladder[{i}]"),
                    format!("{stage} is not a percentage in (0, 100]"),
                );
            }
            if i > 0 && *stage <= self.ladder[i - 1] {
                fail(
                    &format!("ladder[{i}]"),
                    format!(
                        "{stage} does not increase on {}: stages must strictly increase",
                        self.ladder[i - 1]
                    ),
                );
            }
        }
        if self.ladder.last().is_some_and(|last| *last != 100.0) {
            fail("ladder", "must end at 100".into());
        }
        if self.window.0 < 1000 {
            fail("window", "must be at least 1s".into());
        }
        if self.grace.0 < 0 || self.grace.0 >= self.window.0 {
            fail("grace", "must be shorter than the window".into());
        }
        if self.stage_min_duration.0 < 0 {
            fail("stage_min_duration", "must not be negative".into());
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            fail("alpha", format!("{} is not in (0, 0.5)", self.alpha));
        }
        if !(self.srm_alpha > 0.0 && self.srm_alpha < 0.5) {
            fail(
                "srm_alpha",
                format!("{} is not in (0, 0.5)", self.srm_alpha),
            );
        }
        if !(self.treatment_share > 0.0 && self.treatment_share < 1.0) {
            fail(
                "treatment_share",
                format!("{} is not in (0, 1)", self.treatment_share),
            );
        }
        if let Some(srm) = &self.srm {
            if self.metric(&srm.units).is_none() {
                fail(
                    "srm.units",
                    format!("{} names no metric of the contract", srm.units),
                );
            }
            if self.srm_alpha >= self.alpha {
                fail(
                    "srm_alpha",
                    format!(
                        "{} must be smaller than alpha ({}): it is spent from alpha",
                        self.srm_alpha, self.alpha
                    ),
                );
            }
        }
        if self.span == 0 || self.span > 96 {
            fail(
                "span",
                format!("{} is not a number of windows in 1..=96", self.span),
            );
        }
        if let Some(approval) = &self.approval {
            if approval.above >= 100.0 {
                fail(
                    "approval.above",
                    "must be below 100: no stage lies above it".into(),
                );
            }
            if !self.ladder.contains(&approval.above) {
                fail(
                    "approval.above",
                    format!("{} is not a stage of the ladder", approval.above),
                );
            }
        }
        let mut seen_cohorts = BTreeSet::new();
        for (i, cohort) in self.cohorts.iter().enumerate() {
            if !seen_cohorts.insert(cohort) {
                fail(
                    &format!("cohorts[{i}]"),
                    format!("{cohort} is listed twice"),
                );
            }
        }
        match &self.baseline {
            Baseline::Rolling(span) if span.0 < self.window.0 => {
                fail("baseline.rolling", "must cover at least one window".into());
            }
            Baseline::Rolling(_)
                if self.rolling_windows() > super::contract::MAX_ROLLING_WINDOWS =>
            {
                fail(
                    "baseline.rolling",
                    format!(
                        "covers {} windows; at most {} (a node keeps them all): use a shorter span or longer windows",
                        self.rolling_windows(),
                        super::contract::MAX_ROLLING_WINDOWS
                    ),
                );
            }
            Baseline::Fixed(values) => {
                for (name, value) in values {
                    if self.metric(name).is_none() {
                        fail(
                            &format!("baseline.fixed.{name}"),
                            "names no metric of the contract".into(),
                        );
                    }
                    if !value.is_finite() {
                        fail(
                            &format!("baseline.fixed.{name}"),
                            "must be a finite number".into(),
                        );
                    }
                    let is_rate = self
                        .metric(name)
                        .is_some_and(|m| m.kind == MetricKind::Rate);
                    if is_rate && !(*value > 0.0 && *value < 1.0) {
                        fail(
                            &format!("baseline.fixed.{name}"),
                            format!("{value} is not a rate in (0, 1)"),
                        );
                    }
                }
                for metric in &self.metrics {
                    if !values.contains_key(&metric.name) {
                        fail(
                            "baseline.fixed",
                            format!("has no value for metric {}", metric.name),
                        );
                    }
                }
            }
            _ => {}
        }
        if self.metrics.is_empty() {
            fail("metrics", "must hold at least one metric".into());
        }
        let mut seen_metrics = BTreeSet::new();
        for (i, metric) in self.metrics.iter().enumerate() {
            let path = format!("metrics[{i}]");
            if !seen_metrics.insert(&metric.name) {
                fail(
                    &format!("{path}.name"),
                    format!("{} is listed twice", metric.name),
                );
            }
            validate_metric(&path, metric, &mut fail);
        }
        if let Some(topics) = &self.topics {
            if !topics.severe.is_empty()
                && !self
                    .metrics
                    .iter()
                    .any(|m| m.kind == MetricKind::Observations)
            {
                fail(
                    "topics.severe",
                    "needs a metric of kind observations to carry topics".into(),
                );
            }
            for (i, topic) in topics.severe.iter().enumerate() {
                if topic.trim().is_empty() {
                    fail(&format!("topics.severe[{i}]"), "must not be empty".into());
                }
            }
            let any_needs = !topics.any_mention.is_empty()
                && !self
                    .metrics
                    .iter()
                    .any(|m| m.kind == MetricKind::Observations);
            if any_needs {
                fail(
                    "topics.any_mention",
                    "needs a metric of kind observations to carry topics".into(),
                );
            }
            for (i, topic) in topics.any_mention.iter().enumerate() {
                if topic.trim().is_empty() {
                    fail(
                        &format!("topics.any_mention[{i}]"),
                        "must not be empty".into(),
                    );
                }
            }
            if !(topics.min_increase.0 > 0.0 && topics.min_increase.0.is_finite()) {
                fail(
                    "topics.min_increase",
                    format!("{} must be a positive share", topics.min_increase.0),
                );
            }
            if topics.min_mentions == 0 {
                fail("topics.min_mentions", "must be at least 1".into());
            }
        }
        if self.actions.watch == ZoneAction::Rollback
            || self.actions.watch == ZoneAction::RollbackGate
        {
            fail(
                "actions.watch",
                "a watch zone may not roll back; use stop or kill".into(),
            );
        }
        super::notify::validate(&self.notify, &mut fail);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ContractError(errors))
        }
    }
}

fn validate_metric(path: &str, metric: &MetricSpec, fail: &mut impl FnMut(&str, String)) {
    if metric.min_samples == 0 {
        fail(&format!("{path}.min_samples"), "must be at least 1".into());
    }
    if let Some(conf) = metric.min_confidence {
        if !(0.0..=1.0).contains(&conf) {
            fail(
                &format!("{path}.min_confidence"),
                format!("{conf} is not in [0, 1]"),
            );
        }
        if metric.kind != MetricKind::Observations {
            fail(
                &format!("{path}.min_confidence"),
                "only observations carry a confidence".into(),
            );
        }
    }
    match (metric.kind, metric.quantile) {
        (MetricKind::Latency, None) => fail(
            &format!("{path}.quantile"),
            "a latency metric names the quantile it is judged by (e.g. 0.99)".into(),
        ),
        (MetricKind::Latency, Some(q)) if !(q > 0.0 && q < 1.0) => {
            fail(&format!("{path}.quantile"), format!("{q} is not in (0, 1)"))
        }
        (MetricKind::Latency, Some(_)) | (_, None) => {}
        (_, Some(_)) => fail(
            &format!("{path}.quantile"),
            "only latency metrics are judged by a quantile".into(),
        ),
    }
    if !(0.0..=1.0).contains(&metric.max_low_confidence_share.0) {
        fail(
            &format!("{path}.max_low_confidence_share"),
            "must be in [0%, 100%]".into(),
        );
    }
    if metric.max_staleness.is_some_and(|s| s.0 <= 0) {
        fail(&format!("{path}.max_staleness"), "must be positive".into());
    }
    if metric.watch.is_none() && metric.stop.is_none() && metric.kill.is_none() {
        fail(
            path,
            format!("metric {} has no watch, stop or kill zone", metric.name),
        );
    }
    let zones = [
        ("watch", &metric.watch),
        ("stop", &metric.stop),
        ("kill", &metric.kill),
    ];
    for (zone, rule) in zones {
        let Some(rule) = rule else { continue };
        let zpath = format!("{path}.{zone}");
        if rule.relative.is_none()
            && rule.absolute.is_none()
            && rule.above.is_none()
            && rule.below.is_none()
        {
            fail(
                &zpath,
                "needs one of relative, absolute, above, below".into(),
            );
        }
        if let Some(rel) = rule.relative {
            if !(rel.0.is_finite() && rel.0 > 0.0) {
                fail(
                    &format!("{zpath}.relative"),
                    "must be a positive share (a worsening)".into(),
                );
            }
        }
        if let Some(abs) = rule.absolute {
            if !(abs.is_finite() && abs > 0.0) {
                fail(
                    &format!("{zpath}.absolute"),
                    "must be a positive amount (a worsening)".into(),
                );
            }
        }
        if rule.above.is_some() && metric.better == Better::Higher {
            fail(
                &format!("{zpath}.above"),
                "is a ceiling, but higher is better for this metric: use below".into(),
            );
        }
        if rule.below.is_some() && metric.better == Better::Lower {
            fail(
                &format!("{zpath}.below"),
                "is a floor, but lower is better for this metric: use above".into(),
            );
        }
        for (name, bound) in [("above", rule.above), ("below", rule.below)] {
            if let Some(bound) = bound {
                if !bound.is_finite() {
                    fail(&format!("{zpath}.{name}"), "must be a finite number".into());
                }
                if metric.kind == MetricKind::Rate && !(0.0..=1.0).contains(&bound) {
                    fail(
                        &format!("{zpath}.{name}"),
                        format!("{bound} is not a rate in [0, 1]"),
                    );
                }
            }
        }
        if rule.windows == 0 {
            fail(&format!("{zpath}.windows"), "must be at least 1".into());
        }
    }
    // Zones must get stricter: watch <= stop <= kill for each kind of threshold.
    let ordered = [
        ("watch", &metric.watch),
        ("stop", &metric.stop),
        ("kill", &metric.kill),
    ];
    for pair in ordered.windows(2) {
        let ((lo_name, Some(lo)), (hi_name, Some(hi))) = (pair[0], pair[1]) else {
            continue;
        };
        let checks: [(&str, Option<f64>, Option<f64>, bool); 4] = [
            (
                "relative",
                lo.relative.map(|f| f.0),
                hi.relative.map(|f| f.0),
                true,
            ),
            ("absolute", lo.absolute, hi.absolute, true),
            ("above", lo.above, hi.above, true),
            ("below", lo.below, hi.below, false),
        ];
        for (name, lo_v, hi_v, increasing) in checks {
            if let (Some(a), Some(b)) = (lo_v, hi_v) {
                let wrong = if increasing { b < a } else { b > a };
                if wrong {
                    fail(
                        &format!("{path}.{hi_name}.{name}"),
                        format!("{b} is less severe than the {lo_name} zone's {a}"),
                    );
                }
            }
        }
    }
}
