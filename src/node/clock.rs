//! The rule that bounds cluster time: which time a leader may propose, given its own wall
//! clock and the voters' clock readings (see "Cluster time" in `docs/design.md`).
//!
//! This module is pure: it owns the arithmetic and its tests, and never reads a clock, does
//! IO or keeps state. `super::timekeeper` gathers the readings and calls it.

use crate::ids::Millis;

/// How much faster than real (monotonic) time a single voter's cluster time may run on its
/// own clock's word alone (signals' times can move it further, see `Inputs::evidence`).
pub const SINGLE_VOTER_CATCH_UP: i64 = 1;

/// How the allowed time relates to the leader's own wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The leader's clock is within the skew of the voters' median (or it is the only voter
    /// and within its pace).
    None,
    /// The leader's clock is more than the skew ahead of the voters' median.
    LeaderAhead,
    /// The leader's clock is more than the skew behind the voters' median.
    LeaderBehind,
    /// Fewer than a majority of the voters have a fresh reading: time does not advance.
    NoQuorum,
    /// A single voter whose wall clock ran ahead of both its pace bound and the newest
    /// signal time it received (a jump, or a restart after a downtime without signals):
    /// capped at the larger of the two.
    Pace,
}

impl Limit {
    /// The name shown by `cluster status`; empty for `None`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::None => "",
            Limit::LeaderAhead => "leader_ahead",
            Limit::LeaderBehind => "leader_behind",
            Limit::NoQuorum => "no_quorum",
            Limit::Pace => "pace",
        }
    }
}

/// The inputs of the rule, all in epoch milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs<'a> {
    /// The leader's wall clock.
    pub own: Millis,
    /// The other voters' clocks as estimated now (reading + elapsed since it was taken), for
    /// the voters with a fresh reading.
    pub peers: &'a [Millis],
    /// How many voters the cluster has, the leader included.
    pub voters: usize,
    /// `max_clock_skew_ms`: how far the leader's clock may be from the median before it is
    /// reported as skewed.
    pub max_skew: Millis,
    /// The time already proposed (never go back).
    pub floor: Millis,
    /// For a single voter: a cluster time it had (the applied one after a start, rebased
    /// when signals confirm a later one) plus `SINGLE_VOTER_CATCH_UP` times the monotonic time
    /// elapsed since. None: no pace bound (a fresh cluster).
    pub pace: Option<Millis>,
    /// For a single voter: the newest signal time (`at`) it received from producers, 0 when
    /// none. Producers' clocks are its second opinion: cluster time may follow its own clock
    /// up to that, so a restart after a real downtime catches up as soon as signals arrive.
    pub evidence: Millis,
}

/// What the rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// The time to propose: never below `floor`.
    pub at: Millis,
    /// The median of the voters' readings (the leader's own included), when a majority of
    /// the voters has one.
    pub median: Option<Millis>,
    pub limit: Limit,
}

/// The lower median of a majority of the voters' readings (leader included), or None when
/// fewer than a majority have one. The lower median of an even count: with two readings, the
/// earlier one, so one fast clock can never move time ahead.
pub fn quorum_median(own: Millis, peers: &[Millis], voters: usize) -> Option<Millis> {
    let mut all: Vec<Millis> = std::iter::once(own).chain(peers.iter().copied()).collect();
    if all.len() < voters / 2 + 1 {
        return None;
    }
    all.sort_unstable();
    Some(all[(all.len() - 1) / 2])
}

/// The time a leader may propose now.
///
/// Several voters: the lower median of a majority of the voters' readings (the leader's own
/// included), whatever the leader's own clock says; without a majority of readings, `floor`
/// (time holds). One voter: its clock, unless that is more than the skew ahead of both `pace`
/// and `evidence`; then the larger of those two. Always at least `floor`.
pub fn allowed(input: &Inputs<'_>) -> Allowed {
    let skew = input.max_skew.max(0);
    let (target, median, limit) = if input.voters <= 1 {
        match input.pace.map(|p| p.max(input.evidence)) {
            Some(ceiling) if input.own > ceiling.saturating_add(skew) => {
                (ceiling, None, Limit::Pace)
            }
            _ => (input.own, None, Limit::None),
        }
    } else {
        match quorum_median(input.own, input.peers, input.voters) {
            None => (input.floor, None, Limit::NoQuorum),
            Some(m) if input.own > m.saturating_add(skew) => (m, Some(m), Limit::LeaderAhead),
            Some(m) if input.own < m.saturating_sub(skew) => (m, Some(m), Limit::LeaderBehind),
            Some(m) => (m, Some(m), Limit::None),
        }
    };
    Allowed {
        at: target.max(input.floor),
        median,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_800_000_000_000;
    const SKEW: Millis = 5_000;
    const H: Millis = 3_600_000;

    fn run(own: Millis, peers: &[Millis], voters: usize, floor: Millis) -> Allowed {
        allowed(&Inputs {
            own,
            peers,
            voters,
            max_skew: SKEW,
            floor,
            pace: None,
            evidence: 0,
        })
    }

    #[test]
    fn a_leader_two_hours_fast_proposes_the_median() {
        let a = run(T + 2 * H, &[T, T + 20], 3, 0);
        assert_eq!(a.median, Some(T + 20));
        assert_eq!(a.at, T + 20);
        assert_eq!(a.limit, Limit::LeaderAhead);
    }

    #[test]
    fn a_leader_half_an_hour_slow_proposes_the_median() {
        let a = run(T - H / 2, &[T, T + 10], 3, 0);
        assert_eq!(a.median, Some(T));
        assert_eq!(a.at, T);
        assert_eq!(a.limit, Limit::LeaderBehind);
    }

    #[test]
    fn within_the_skew_nothing_is_reported() {
        let a = run(T + 4_000, &[T, T - 3_000], 3, 0);
        assert_eq!((a.at, a.limit), (T, Limit::None));
        // A fast follower does not move the median either.
        let a = run(T, &[T + 2 * H, T - 100], 3, 0);
        assert_eq!((a.at, a.median, a.limit), (T, Some(T), Limit::None));
    }

    #[test]
    fn one_fast_clock_among_two_readings_cannot_move_time_ahead() {
        // A follower down: the leader (fast) and one follower; the lower median is the
        // follower's clock.
        let a = run(T + 2 * H, &[T], 3, 0);
        assert_eq!((a.at, a.limit), (T, Limit::LeaderAhead));
        // The limit of the rule: it tolerates a minority of bad clocks among the readings.
        // Five voters, three readings, two of them fast: the median is a fast clock.
        let a = run(T + 2 * H, &[T, T + 2 * H], 5, 0);
        assert_eq!(a.median, Some(T + 2 * H));
    }

    #[test]
    fn without_a_majority_of_readings_time_holds() {
        let a = run(T + 2 * H, &[], 3, T - 7);
        assert_eq!((a.at, a.median, a.limit), (T - 7, None, Limit::NoQuorum));
        let a = run(T, &[T], 5, T - 7);
        assert_eq!(a.limit, Limit::NoQuorum);
    }

    #[test]
    fn time_never_goes_back() {
        let a = run(T - H, &[T - H, T - H], 3, T);
        assert_eq!(a.at, T);
    }

    #[test]
    fn a_single_voter_advances_at_most_at_its_pace_or_its_signals() {
        let single = |own, pace, evidence| {
            allowed(&Inputs {
                own,
                peers: &[],
                voters: 1,
                max_skew: SKEW,
                floor: 0,
                pace,
                evidence,
            })
        };
        // Restarted with its wall clock 2 h ahead of the last cluster time: 4 s later the pace
        // allows 4 s, not 2 h; producers' signals (true time) do not move it further.
        let a = single(
            T + 2 * H,
            Some(T + SINGLE_VOTER_CATCH_UP * 4_000),
            T + 3_000,
        );
        assert_eq!((a.at, a.limit), (T + 4_000, Limit::Pace));
        // Restarted after a real downtime of 2 h: signals stamped now confirm its clock.
        let a = single(T + 2 * H, Some(T + 4_000), T + 2 * H - 50);
        assert_eq!((a.at, a.limit), (T + 2 * H, Limit::None));
        // Signals 1 h old: cluster time may go that far, not to the clock.
        let a = single(T + 2 * H, Some(T + 4_000), T + H);
        assert_eq!((a.at, a.limit), (T + H, Limit::Pace));
        // Within the skew of its pace, its clock is used (NTP slews, ms rounding).
        let a = single(T + 4_000 + SKEW, Some(T + 4_000), 0);
        assert_eq!((a.at, a.limit), (T + 4_000 + SKEW, Limit::None));
        // Never beyond its own clock, whatever the signals say.
        let a = single(T + 1_000, Some(T + 4_000), T + 2 * H);
        assert_eq!((a.at, a.limit), (T + 1_000, Limit::None));
        assert_eq!(single(T + 2 * H, None, 0).at, T + 2 * H, "a fresh cluster");
    }

    #[test]
    fn the_allowed_time_is_the_median_whatever_the_leaders_clock() {
        // Every leader clock against the same honest quorum.
        for offset in [
            -3 * H,
            -H / 2,
            -SKEW - 1,
            -SKEW,
            0,
            SKEW,
            SKEW + 1,
            2 * H,
            30 * H,
        ] {
            let a = run(T + offset, &[T, T], 3, 0);
            let m = a.median.expect("median");
            assert_eq!(a.at, m, "offset {offset}: {a:?}");
            assert_eq!(
                a.limit == Limit::None,
                offset.abs() <= SKEW,
                "offset {offset}"
            );
        }
    }
}
