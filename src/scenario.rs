//! Synthetic signal traces: what `rampart simulate` writes, what `rampart dev --demo` pushes
//! live, what the scenario tests and the engine report replay.
//!
//! The traffic model is meant to look like a real rollout, not like the engine's assumptions:
//! units arrive per window as Poisson traffic and are split between the arms Binomial(N, ½);
//! reviews (0.3 per unit), survey answers (6%), scored reviews (2%) and requests (about 5 per
//! unit, overdispersed) are drawn per unit; CSAT answers are 1–5 Likert draws; every trace
//! draws its own base rates; a severe topic (`broken`) appears in 0.5% of scored reviews in
//! *both* arms of every trace. Each scenario then changes one thing from one window on.
//! The metrics are those of `examples/checkout-v2.yaml`.
//!
//! Pure and deterministic: the randomness is a seeded generator, the same seed gives the same
//! trace. No IO, no clock.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::engine::backtest::Arrival;
use crate::engine::signal::{Arm, Measurement, Signal, SignalLine};
use crate::ids::{CohortName, GateKey, MetricName, Millis};

/// A named trace family and what a sound contract concludes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Healthy,
    RegressionMobile,
    LateRegression,
    AaLowTraffic,
    ClassifierDrift,
    StalePipeline,
    SevereTopic,
    CsatDrop,
    ErrorSpike,
    LateArrivals,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::Healthy,
        Scenario::RegressionMobile,
        Scenario::LateRegression,
        Scenario::AaLowTraffic,
        Scenario::ClassifierDrift,
        Scenario::StalePipeline,
        Scenario::SevereTopic,
        Scenario::CsatDrop,
        Scenario::ErrorSpike,
        Scenario::LateArrivals,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::RegressionMobile => "regression-mobile",
            Scenario::LateRegression => "late-regression",
            Scenario::AaLowTraffic => "aa-low-traffic",
            Scenario::ClassifierDrift => "classifier-drift",
            Scenario::StalePipeline => "stale-pipeline",
            Scenario::SevereTopic => "severe-topic",
            Scenario::CsatDrop => "csat-drop",
            Scenario::ErrorSpike => "error-spike",
            Scenario::LateArrivals => "late-arrivals",
        }
    }

    /// What happens in the trace, and what a sound contract concludes.
    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Healthy => "identical arms (a topic at 0.5% in both): expand stage by stage, never stop",
            Scenario::RegressionMobile => "from window 4, mobile treatment's negative-review rate is 1.6x: stop or roll back mobile, keep ramping desktop",
            Scenario::LateRegression => "from window 10, desktop treatment's negative-review rate is 1.6x (a regression mid-rollout): stop desktop, keep ramping mobile",
            Scenario::AaLowTraffic => "identical arms, ~40 reviews per arm and window: too few samples, manual review, never expand or roll back",
            Scenario::ClassifierDrift => "from window 3, 80% of scored reviews come with confidence under 0.5: manual review, not rollback",
            Scenario::StalePipeline => "from window 3, no negative_review_rate signals arrive: stale, manual review",
            Scenario::SevereTopic => "from window 3, 3% of treatment's scored reviews in both cohorts mention 'charged twice': stop",
            Scenario::CsatDrop => "from window 2, treatment CSAT is 0.35 lower in both cohorts: stop",
            Scenario::ErrorSpike => "from window 2, treatment checkout errors at 3% (ceiling 2%): roll back",
            Scenario::LateArrivals => "from window 3, each of control's review batches arrives 75 minutes late with probability 1/3: late lines are refused; a window left thin sends the cohort to manual review (too few samples), never to hold or rollback",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The cohorts every trace covers.
pub const COHORTS: [&str; 2] = ["mobile", "desktop"];

/// What one window of one arm is made of (a fault changes one of these).
#[derive(Debug, Clone, Copy)]
struct Arms {
    negative_reviews: f64,
    csat_drop: f64,
    error_rate: f64,
    low_confidence: f64,
    charged_twice: f64,
    reviews_on_time: f64,
    reviews_sent: bool,
}

/// One trace's generator: a seeded world, then windows on demand.
pub struct Generator {
    scenario: Scenario,
    gate: GateKey,
    rng: StdRng,
    negative_reviews: f64,
    error_rate: f64,
    /// Expected reviews per arm and window.
    reviews: f64,
}

impl Generator {
    pub fn new(scenario: Scenario, seed: u64, gate: GateKey) -> Generator {
        let salt = Scenario::ALL
            .iter()
            .position(|s| *s == scenario)
            .unwrap_or(0) as u64;
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt);
        let negative_reviews = rng.gen_range(0.06..0.10);
        let error_rate = rng.gen_range(0.002..0.006);
        let reviews = if scenario == Scenario::AaLowTraffic {
            40.0
        } else {
            600.0
        };
        Generator {
            scenario,
            gate,
            rng,
            negative_reviews,
            error_rate,
            reviews,
        }
    }

    /// What window `w` of this arm looks like under the scenario.
    fn arms(&self, w: i64, cohort: usize, treatment: bool) -> Arms {
        let mut a = Arms {
            negative_reviews: self.negative_reviews,
            csat_drop: 0.0,
            error_rate: self.error_rate,
            low_confidence: 0.0,
            charged_twice: 0.0,
            reviews_on_time: 1.0,
            reviews_sent: true,
        };
        match self.scenario {
            Scenario::RegressionMobile if treatment && cohort == 0 && w >= 4 => {
                a.negative_reviews *= 1.6;
            }
            Scenario::LateRegression if treatment && cohort == 1 && w >= 10 => {
                a.negative_reviews *= 1.6;
            }
            Scenario::ClassifierDrift if w >= 3 => a.low_confidence = 0.8,
            Scenario::StalePipeline if w >= 3 => a.reviews_sent = false,
            Scenario::SevereTopic if treatment && w >= 3 => a.charged_twice = 0.03,
            Scenario::CsatDrop if treatment && w >= 2 => a.csat_drop = 0.35,
            Scenario::ErrorSpike if treatment && w >= 2 => a.error_rate = 0.03,
            Scenario::LateArrivals if !treatment && w >= 3 => a.reviews_on_time = 2.0 / 3.0,
            _ => {}
        }
        a
    }

    /// The signals of window `w` (0-based), which spans `[start, start + len)`, with `share`
    /// of a window's traffic (the demo pushes a window in slices). Late ones carry the time
    /// they arrive.
    pub fn window(&mut self, w: i64, start: Millis, len: Millis, share: f64) -> Vec<Arrival> {
        let mut out = Vec::new();
        for (ci, cohort) in COHORTS.iter().enumerate() {
            let cohort = CohortName::try_from(*cohort).expect("a valid cohort name");
            let units = poisson(&mut self.rng, share * 2.0 * self.reviews / 0.3);
            let treated = binomial(&mut self.rng, units, 0.5);
            for arm in [Arm::Treatment, Arm::Control] {
                let n = if arm == Arm::Treatment {
                    treated
                } else {
                    units - treated
                };
                let arms = self.arms(w, ci, arm == Arm::Treatment);
                self.arm(&mut out, &cohort, arm, n, arms, (start, len));
            }
        }
        out
    }

    fn arm(
        &mut self,
        out: &mut Vec<Arrival>,
        cohort: &CohortName,
        arm: Arm,
        units: u64,
        a: Arms,
        (start, len): (Millis, Millis),
    ) {
        let rng = &mut self.rng;
        let mut push = |metric: &str, frac: f64, measurement: Measurement, received| {
            out.push(Arrival {
                signal: Signal {
                    gate: self.gate.clone(),
                    metric: MetricName::try_from(metric).expect("a valid metric name"),
                    cohort: cohort.clone(),
                    arm,
                    at: start + (frac * len as f64) as Millis,
                    measurement,
                },
                received,
            });
        };
        // Reviews: 0.3 per unit, sent in 3 batches; late batches arrive 75 minutes after.
        let reviews = binomial(rng, units, 0.3);
        for part in 0..3u64 {
            let trials = reviews / 3 + u64::from(part < reviews % 3);
            if trials == 0 || !a.reviews_sent {
                continue;
            }
            let frac = (part as f64 + 0.5) / 3.0;
            let late = rng.gen::<f64>() >= a.reviews_on_time;
            let received = late.then(|| start + (frac * len as f64) as Millis + 75 * 60_000);
            let events = binomial(rng, trials, a.negative_reviews.min(1.0));
            push(
                "negative_review_rate",
                frac,
                Measurement::Rate { events, trials },
                received,
            );
        }
        // CSAT: 6% of units answer, 1–5.
        let answers = binomial(rng, units, 0.06).max(2);
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for _ in 0..answers {
            let x = likert(rng, a.csat_drop);
            sum += x;
            sum_sq += x * x;
        }
        push(
            "csat",
            0.6,
            Measurement::Moments {
                n: answers,
                sum,
                sum_sq,
            },
            None,
        );
        // Requests: overdispersed, about 5 per unit.
        let requests = (0..units.min(4000))
            .map(|_| if rng.gen::<f64>() < 0.2 { 15 } else { 2 })
            .sum::<u64>()
            .max(1);
        push(
            "checkout_error_rate",
            0.8,
            Measurement::Rate {
                events: binomial(rng, requests, a.error_rate),
                trials: requests,
            },
            None,
        );
        // Scored reviews: 2% of units.
        let scored = binomial(rng, units, 0.02);
        for i in 0..scored {
            let mut value = (0.25 + 0.45 * normal(rng)).clamp(-1.0, 1.0);
            let mut confidence = (0.9 + 0.05 * normal(rng)).clamp(0.0, 1.0);
            if rng.gen::<f64>() < a.low_confidence {
                confidence = rng.gen_range(0.2..0.5);
            }
            let mut topics = Vec::new();
            if rng.gen::<f64>() < 0.005 {
                topics.push("broken".to_owned());
            }
            if rng.gen::<f64>() < a.charged_twice {
                value = value.min(-0.7);
                topics.push("charged twice".to_owned());
            } else if value < -0.3 {
                topics.push("slow".to_owned());
            }
            push(
                "review_sentiment",
                (i as f64 + 0.5) / scored as f64,
                Measurement::Observation {
                    value: (value * 1000.0).round() / 1000.0,
                    confidence: Some((confidence * 1000.0).round() / 1000.0),
                    topics,
                },
                None,
            );
        }
    }
}

/// A whole trace: `windows` windows of `len` from `start`, in arrival order.
pub fn trace(
    scenario: Scenario,
    seed: u64,
    windows: i64,
    start: Millis,
    len: Millis,
    gate: GateKey,
) -> Vec<Arrival> {
    let mut g = Generator::new(scenario, seed, gate);
    let end = start + windows * len;
    // A late line due after the trace's end is left out: replaying it would move the clock
    // past the last window and judge windows the trace never filled.
    let mut out: Vec<Arrival> = (0..windows)
        .flat_map(|w| g.window(w, start + w * len, len, 1.0))
        .filter(|a| a.received.is_none_or(|r| r < end))
        .collect();
    // In the order they reach the cluster (a late line among the lines of its arrival time).
    out.sort_by_key(|a| a.received.unwrap_or(a.signal.at));
    out
}

/// A trace as JSON lines (`received` only on late lines).
pub fn to_lines(arrivals: &[Arrival]) -> String {
    let mut out = String::new();
    for a in arrivals {
        let mut line = SignalLine::from_signal(&a.signal);
        line.received = a.received.map(crate::engine::signal::format_time);
        out.push_str(&serde_json::to_string(&line).expect("a signal line serialises"));
        out.push('\n');
    }
    out
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut StdRng) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    let v: f64 = rng.gen::<f64>();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A Binomial(n, p) draw (exact up to n = 2000, then the normal approximation).
pub fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n > 2000 {
        // Normal approximation, rounded and clamped: enough for counts this large.
        let nf = n as f64;
        let x = nf * p + (nf * p * (1.0 - p)).sqrt() * normal(rng);
        return x.round().clamp(0.0, nf) as u64;
    }
    (0..n).filter(|_| rng.gen::<f64>() < p).count() as u64
}

/// A Poisson draw by its normal approximation (the means here are large).
pub fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u64
}

/// A CSAT answer: mean 4.1 (sd ≈ 1.07); a drop d moves d/2 of the mass from 5 to 3.
pub fn likert(rng: &mut StdRng, drop: f64) -> f64 {
    let shift = drop / 2.0;
    let p = [0.05, 0.05, 0.10 + shift, 0.35, 0.45 - shift];
    let u: f64 = rng.gen();
    let mut acc = 0.0;
    for (i, pi) in p.iter().enumerate() {
        acc += pi;
        if u < acc {
            return (i + 1) as f64;
        }
    }
    5.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_trace_and_lines_read_back() {
        let gate = GateKey::try_from("checkout-v2").unwrap();
        let a = trace(Scenario::LateArrivals, 7, 12, 0, 900_000, gate.clone());
        let b = trace(Scenario::LateArrivals, 7, 12, 0, 900_000, gate.clone());
        assert_eq!(to_lines(&a), to_lines(&b));
        assert_ne!(
            to_lines(&a),
            to_lines(&trace(Scenario::LateArrivals, 8, 12, 0, 900_000, gate))
        );
        let (read, errors) = crate::engine::backtest::parse_arrivals(&to_lines(&a));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(read.len(), a.len());
        assert!(read.iter().any(|r| r.received.is_some()), "late lines");
    }

    #[test]
    fn every_name_reads_back() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
    }
}
