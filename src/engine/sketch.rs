//! Latency sketches: a mergeable, deterministic quantile sketch with a stated relative error.
//!
//! The DDSketch idea (Masson, Rim & Lee, "DDSketch: a fast and fully-mergeable quantile
//! sketch with relative-error guarantees", VLDB 2019) with one fixed accuracy for the whole
//! system: a positive value x falls in bucket k = ⌈ln x / ln γ⌉ with γ = (1 + a)/(1 − a), and
//! every value of bucket k is represented by 2γᵏ/(γ + 1), within a relative error a of it.
//! Values at or below [`MIN_VALUE`] are counted as zeros. Buckets are plain counts in a
//! `BTreeMap`, so merging is exact addition, independent of order: every node that applies
//! the same signals holds the same sketch, and the persisted form is ours to version (a
//! crate's internal store layout is not), which is why this is written here.
//!
//! A producer sends either raw `values` (folded here) or the buckets themselves, computed
//! with the same rule and `relative_accuracy` = [`RELATIVE_ACCURACY`].
//!
//! Pure data and arithmetic; it never judges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The relative accuracy a of every sketch (1%).
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this count as zero.
pub const MIN_VALUE: f64 = 1e-9;
/// Most buckets one signal's sketch may carry.
pub const MAX_BINS: usize = 4096;
/// Most raw values one signal may carry.
pub const MAX_VALUES: usize = 100_000;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bucket of a positive value.
#[allow(clippy::cast_possible_truncation)] // |ln x / ln γ| < 2e5 for finite x ≥ 1e-9
pub fn bucket(x: f64) -> i32 {
    (x.ln() / gamma().ln()).ceil() as i32
}

/// The value that represents bucket `k`.
pub fn representative(k: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(k) / (g + 1.0)
}

/// Counts per bucket, and zeros.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sketch {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bins: BTreeMap<i32, u64>,
    #[serde(default)]
    pub zeros: u64,
}

impl Sketch {
    /// A sketch of raw values (each finite and non-negative, checked by the caller).
    pub fn of_values(values: &[f64]) -> Sketch {
        let mut s = Sketch::default();
        for &x in values {
            s.add(x);
        }
        s
    }

    pub fn add(&mut self, x: f64) {
        if x <= MIN_VALUE {
            self.zeros += 1;
        } else {
            *self.bins.entry(bucket(x)).or_default() += 1;
        }
    }

    /// Adds `other`'s counts (saturating: a count never wraps around).
    pub fn merge(&mut self, other: &Sketch) {
        self.zeros = self.zeros.saturating_add(other.zeros);
        for (k, n) in &other.bins {
            let c = self.bins.entry(*k).or_default();
            *c = c.saturating_add(*n);
        }
    }

    /// How many values the sketch holds (saturating at `u64::MAX`, so a sketch whose counts
    /// overflow reads as too large, never as empty).
    pub fn count(&self) -> u64 {
        self.bins
            .values()
            .fold(self.zeros, |total, n| total.saturating_add(*n))
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// The q-quantile (lower rank ⌊q·(n − 1)⌋, as DDSketch), within the relative accuracy of
    /// the exact sample quantile. None for an empty sketch.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (n - 1) as f64).floor() as u64;
        if rank < self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        for (k, c) in &self.bins {
            seen += c;
            if seen > rank {
                return Some(representative(*k));
            }
        }
        None
    }

    /// How many values lie above `x`'s bucket (a value in the same bucket as x is not above).
    pub fn count_above(&self, x: f64) -> u64 {
        if x <= MIN_VALUE {
            return self.bins.values().sum();
        }
        let k = bucket(x);
        self.bins.range(k + 1..).map(|(_, c)| c).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_relative_accuracy_of_the_exact_ones() {
        let values: Vec<f64> = (1..=10_000)
            .map(|i| 0.001 * f64::from(i).powf(1.3))
            .collect();
        let s = Sketch::of_values(&values);
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let exact = values[(q * 9_999.0f64).floor() as usize];
            let got = s.quantile(q).unwrap();
            assert!(
                (got - exact).abs() <= RELATIVE_ACCURACY * exact * (1.0 + 1e-9),
                "q {q}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn merging_is_exact_and_order_independent() {
        let a = Sketch::of_values(&[0.1, 0.2, 0.0, 3.0]);
        let b = Sketch::of_values(&[0.15, 7.0]);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab, Sketch::of_values(&[0.1, 0.2, 0.0, 3.0, 0.15, 7.0]));
        assert_eq!(ab.count(), 6);
        assert_eq!(ab.count_above(1.0), 2);
    }
}
