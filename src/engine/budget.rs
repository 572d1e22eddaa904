//! The error budget: how a contract's `alpha` is shared among everything that can stop a
//! gate by chance, so that the guarantee is stated for the **gate**, not per test.
//!
//! For a gate with C cohorts whose signals carry no harm at all, the probability that the
//! engine ever puts any cohort in a watch, stop or kill zone from a metric, a ceiling or a
//! compared topic, or sends it to manual review for a sample-ratio mismatch, is at most
//! `alpha` over the whole rollout (sequential tests; the fixed test bounds each look only):
//!
//! - the SRM check gets `srm_alpha` of it (only when the contract names `srm.units`), split
//!   evenly over the cohorts and over the cohort's evidence restarts;
//! - the rest, α − α_srm, is split evenly over the cohorts (α_c), then over the cohort's K
//!   tests (α_t = α_c / K): one per metric with comparison rules (relative, absolute), one
//!   per metric with ceilings or floors, and one for the compared severe topics (split again
//!   over the topics);
//! - in sequential mode each test is judged on several evidence spans (see
//!   [`spans`](super::spans)): half of α_t goes to the spans that start at an evidence
//!   restart (at most [`max_restarts`] per cohort), half to the spans that start on the
//!   change-detection grid (at most [`GRID_STARTS`] per cohort). Each span's mixture ratio is
//!   a nonnegative supermartingale under "no harm", so by Ville's inequality and a union bound
//!   over every span that can ever exist, the sum of the levels is the bound.
//!
//! Zones of one test share it (watch, stop and kill thresholds are tested by the same
//! statistic; ceilings of one metric are nested), so they add nothing. This module only does
//! arithmetic; it never judges.

use super::contract::{Contract, MetricSpec, TestKind};

/// Change-detection starts a cohort may open over its life (each costs a share of α).
pub const GRID_STARTS: u32 = 24;
/// κ of the Beta prior of the SRM Bayes factor: prior sd of the share ≈ 0.05 at ½.
pub const SRM_CONCENTRATION: f64 = 100.0;

/// Evidence restarts (stage changes, operator resumes) a cohort may use over its life: one
/// per ladder stage and two for operators. Beyond them the evidence keeps its last start.
pub fn max_restarts(contract: &Contract) -> u32 {
    u32::try_from(contract.ladder.len())
        .unwrap_or(u32::MAX)
        .saturating_add(2)
}

/// Whether a metric has rules that compare it with the baseline.
pub fn has_comparison(spec: &MetricSpec) -> bool {
    spec.zone_rules()
        .iter()
        .flatten()
        .any(|r| r.relative.is_some() || r.absolute.is_some())
}

/// Whether a metric has ceilings or floors.
pub fn has_level(spec: &MetricSpec) -> bool {
    spec.zone_rules()
        .iter()
        .flatten()
        .any(|r| r.above.is_some() || r.below.is_some())
}

/// Topics compared between the arms (severe topics that are not `any_mention` phrases).
pub fn compared_topics(contract: &Contract) -> Vec<String> {
    let Some(topics) = &contract.topics else {
        return Vec::new();
    };
    let has_observations = contract
        .metrics
        .iter()
        .any(|m| m.kind == super::contract::MetricKind::Observations);
    if !has_observations {
        return Vec::new();
    }
    let any: Vec<String> = topics
        .any_mention
        .iter()
        .map(|t| t.to_lowercase())
        .collect();
    let mut out: Vec<String> = topics
        .severe
        .iter()
        .map(|t| t.to_lowercase())
        .filter(|t| !any.contains(t))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The levels of one contract's tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// α_t: one test of one cohort.
    pub test: f64,
    /// One compared topic of one cohort.
    pub topic: f64,
    /// The SRM check of one cohort at one restart (0 without `srm.units`).
    pub srm: f64,
    pub sequential: bool,
    pub max_restarts: u32,
    /// Tests per cohort (K).
    pub tests: u32,
}

impl Budget {
    #[allow(clippy::cast_precision_loss)] // small counts
    pub fn of(contract: &Contract) -> Budget {
        let cohorts = contract.cohort_names().len().max(1) as f64;
        let srm_gate = if contract.srm.is_some() {
            contract.srm_alpha
        } else {
            0.0
        };
        let per_cohort = (contract.alpha - srm_gate).max(0.0) / cohorts;
        let metric_tests: usize = contract
            .metrics
            .iter()
            .map(|m| usize::from(has_comparison(m)) + usize::from(has_level(m)))
            .sum();
        let topics = compared_topics(contract).len();
        let tests = u32::try_from(metric_tests + usize::from(topics > 0))
            .unwrap_or(u32::MAX)
            .max(1);
        let test = per_cohort / f64::from(tests);
        let restarts = max_restarts(contract);
        Budget {
            test,
            topic: test / topics.max(1) as f64,
            srm: srm_gate / cohorts / f64::from(restarts),
            sequential: contract.test == TestKind::Sequential,
            max_restarts: restarts,
            tests,
        }
    }

    /// The level of a span starting at an evidence restart, for a test at level `of`.
    pub fn restart_span(&self, of: f64) -> f64 {
        of * 0.5 / f64::from(self.max_restarts)
    }

    /// The level of a span starting on the change-detection grid.
    pub fn grid_span(&self, of: f64) -> f64 {
        of * 0.5 / f64::from(GRID_STARTS)
    }
}
