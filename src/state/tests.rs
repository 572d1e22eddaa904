//! State machine rules: ingest against contracts and windows, idempotency, decisions against
//! versions and windows, overrides and the kill switch.

use super::*;
use crate::engine::notify::{Notify, NotifyOn};
use crate::engine::{Arm, CohortState, Contract, Judgement, Measurement, Verdict};
use crate::ids::{CohortName, MetricName};

const MIN: Millis = 60_000;
/// 10:00 on the day of the example traces.
const T0: Millis = 1_763_719_200_000;

fn contract() -> Contract {
    Contract::from_yaml(include_str!("../../examples/checkout-v2.yaml")).expect("example contract")
}

fn gate() -> GateKey {
    GateKey::try_from("checkout-v2").unwrap()
}

fn mobile() -> CohortName {
    CohortName::try_from("mobile").unwrap()
}

fn rate(metric: &str, at: Millis, events: u64, trials: u64) -> Signal {
    Signal {
        gate: gate(),
        metric: MetricName::try_from(metric).unwrap(),
        cohort: mobile(),
        arm: Arm::Treatment,
        at,
        measurement: Measurement::Rate { events, trials },
    }
}

fn apply(state: &mut State, at: Millis, command: Command) -> Response {
    state.apply(&Request { at, command })
}

/// A state with the example contract applied at T0 (first window starts at T0 + 15m).
fn with_gate() -> State {
    let mut state = State::default();
    apply(
        &mut state,
        T0,
        Command::PutContract {
            contract: Box::new(contract()),
        },
    );
    state
}

fn ingest(state: &mut State, at: Millis, key: &str, signals: Vec<Signal>) -> IngestOutcome {
    match apply(
        state,
        at,
        Command::Ingest {
            idempotency_key: key.into(),
            signals,
        },
    ) {
        Response::Ingested(o) => o,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn bad_signals_are_reported_and_good_ones_kept() {
    let mut state = with_gate();
    let now = T0 + 16 * MIN;
    let mut unknown_metric = rate("nope", now, 1, 10);
    unknown_metric.metric = MetricName::try_from("nope").unwrap();
    let mut wrong_kind = rate("csat", now, 1, 10);
    wrong_kind.metric = MetricName::try_from("csat").unwrap();
    let mut unknown_cohort = rate("negative_review_rate", now, 1, 10);
    unknown_cohort.cohort = CohortName::try_from("tablet").unwrap();
    let late = rate("negative_review_rate", T0 - 10 * MIN, 1, 10);
    let good = rate("negative_review_rate", now, 3, 100);
    let outcome = ingest(
        &mut state,
        now,
        "k1",
        vec![
            unknown_metric,
            good.clone(),
            wrong_kind,
            unknown_cohort,
            late,
        ],
    );
    assert_eq!(outcome.accepted, 1);
    let fields: Vec<(u32, &str)> = outcome
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![(0, "metric"), (2, "measurement"), (3, "cohort"), (4, "at")]
    );
    // Each refusal says again which it was, for the rejection counter's label.
    let refusals: Vec<Option<Refusal>> = outcome
        .rejected
        .iter()
        .map(|r| Refusal::of(&r.field, &r.reason))
        .collect();
    assert_eq!(
        refusals,
        vec![
            Some(Refusal::UnknownMetric),
            Some(Refusal::WrongKind),
            Some(Refusal::UnknownCohort),
            Some(Refusal::BeforeGate)
        ]
    );
    let g = state.live_gate(&gate()).unwrap();
    let w = g
        .windows
        .get(&(mobile(), T0 + 15 * MIN))
        .expect("window holds the good signal");
    let agg = &w.metrics[&good.metric].treatment;
    assert_eq!((agg.events, agg.trials), (3, 100));
}

#[test]
fn a_retried_batch_is_counted_once() {
    let mut state = with_gate();
    let now = T0 + 16 * MIN;
    let batch = vec![rate("negative_review_rate", now, 3, 100)];
    let first = ingest(&mut state, now, "same-key", batch.clone());
    let again = ingest(&mut state, now + 1, "same-key", batch);
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(again.accepted, first.accepted);
    assert_eq!(state.signals_accepted, 1);
    assert_eq!(state.live_gate(&gate()).unwrap().signals_accepted, 1);
    let g = state.live_gate(&gate()).unwrap();
    let metric = MetricName::try_from("negative_review_rate").unwrap();
    assert_eq!(
        g.windows[&(mobile(), T0 + 15 * MIN)].metrics[&metric]
            .treatment
            .trials,
        100
    );
}

#[test]
fn signals_for_unknown_gates_and_closed_windows_are_refused() {
    let mut state = State::default();
    let outcome = ingest(
        &mut state,
        T0,
        "k",
        vec![rate("negative_review_rate", T0, 1, 2)],
    );
    assert_eq!(outcome.rejected[0].field, "gate");
    let refusal = |o: &IngestOutcome| Refusal::of(&o.rejected[0].field, &o.rejected[0].reason);
    assert_eq!(refusal(&outcome), Some(Refusal::UnknownGate));
    let mut state = with_gate();
    // The first window [T0+15m, T0+30m) closes at T0+32m (grace 2m).
    let outcome = ingest(
        &mut state,
        T0 + 33 * MIN,
        "k",
        vec![rate("negative_review_rate", T0 + 20 * MIN, 1, 2)],
    );
    assert!(outcome.rejected[0].reason.contains("closed"), "{outcome:?}");
    assert_eq!(refusal(&outcome), Some(Refusal::ClosedWindow));
    let mut state = with_gate();
    let outcome = ingest(
        &mut state,
        T0 + 16 * MIN,
        "k2",
        vec![rate("negative_review_rate", T0 + 30 * MIN, 1, 2)],
    );
    assert!(outcome.rejected[0].reason.contains("ahead"), "{outcome:?}");
    assert_eq!(refusal(&outcome), Some(Refusal::Future));
}

fn judgement(state: &State, verdict: Verdict, kill: bool) -> Judgement {
    let g = state.live_gate(&gate()).unwrap();
    let mut next: CohortState = g.cohorts[&mobile()].clone();
    next.last_window = Some(g.first_window);
    Judgement {
        verdict,
        next,
        kill_switch: kill,
        evidence: Vec::new(),
        topics: Vec::new(),
        reason: verdict.as_str().into(),
    }
}

fn decide(state: &mut State, based_on: u64, j: Judgement) -> Response {
    let g = state.live_gate(&gate()).unwrap();
    let window = crate::engine::Window {
        start: g.first_window,
        end: g.first_window + 15 * MIN,
    };
    let command = Command::Decide {
        gate: gate(),
        cohort: mobile(),
        window,
        based_on,
        judgement: Box::new(j),
        leader: 1,
        term: 1,
    };
    apply(state, T0 + 33 * MIN, command)
}

#[test]
fn a_decision_from_a_stale_version_changes_nothing() {
    let mut state = with_gate();
    let version = state.live_gate(&gate()).unwrap().version;
    let j = judgement(&state, Verdict::Rollback, true);
    let before = state.clone();
    let r = decide(&mut state, version + 7, j);
    assert!(
        matches!(r, Response::Decided { applied: false, .. }),
        "{r:?}"
    );
    assert_eq!(state.gates, before.gates);
}

#[test]
fn a_window_is_decided_at_most_once() {
    let mut state = with_gate();
    let version = state.live_gate(&gate()).unwrap().version;
    let j = judgement(&state, Verdict::Stay, false);
    assert!(matches!(
        decide(&mut state, version, j.clone()),
        Response::Decided { applied: true, .. }
    ));
    let r = decide(&mut state, version + 1, j);
    assert!(
        matches!(r, Response::Decided { applied: false, skipped: Some(ref why), .. } if why.contains("already decided"))
    );
}

#[test]
fn only_an_operator_resume_turns_the_kill_switch_off() {
    let mut state = with_gate();
    let version = state.live_gate(&gate()).unwrap().version;
    let j = judgement(&state, Verdict::RollbackGate, true);
    decide(&mut state, version, j);
    assert!(state.live_gate(&gate()).unwrap().kill_switch);
    // A later engine judgement without a kill does not clear it.
    let g = state.live_gate(&gate()).unwrap();
    let mut next = g.cohorts[&mobile()].clone();
    let second = g.first_window + 15 * MIN;
    next.last_window = Some(second);
    let j = Judgement {
        verdict: Verdict::Expand,
        next,
        kill_switch: false,
        evidence: vec![],
        topics: vec![],
        reason: "x".into(),
    };
    let command = Command::Decide {
        gate: gate(),
        cohort: mobile(),
        window: crate::engine::Window {
            start: second,
            end: second + 15 * MIN,
        },
        based_on: g.version,
        judgement: Box::new(j),
        leader: 1,
        term: 1,
    };
    apply(&mut state, T0 + 50 * MIN, command);
    assert!(
        state.live_gate(&gate()).unwrap().kill_switch,
        "the engine never clears the kill switch"
    );
    let resume = Override {
        gate: gate(),
        cohort: None,
        kind: OverrideKind::Resume,
        actor: "sre".into(),
        reason: "fixed".into(),
    };
    let r = apply(&mut state, T0 + 51 * MIN, Command::Override(resume));
    let Response::Overridden(d) = r else {
        panic!("{r:?}")
    };
    assert!(d.kill_switch_before && !d.kill_switch);
    assert!(!state.live_gate(&gate()).unwrap().kill_switch);
}

#[test]
fn a_cohort_rollback_leaves_other_cohorts_serving() {
    let mut state = with_gate();
    let version = state.live_gate(&gate()).unwrap().version;
    let mut j = judgement(&state, Verdict::Rollback, true);
    j.next.exposure = 0.0;
    j.next.status = crate::engine::CohortStatus::RolledBack;
    decide(&mut state, version, j);
    let g = state.live_gate(&gate()).unwrap();
    assert!(
        !g.kill_switch,
        "desktop keeps ramping: only mobile is rolled back"
    );
    assert_eq!(g.cohorts[&mobile()].exposure, 0.0);
    assert!(g.cohorts[&CohortName::try_from("desktop").unwrap()].exposure > 0.0);
}

#[test]
fn overrides_name_unknown_cohorts_and_bad_exposure() {
    let mut state = with_gate();
    let ov = |cohort: &str, kind| Override {
        gate: gate(),
        cohort: Some(CohortName::try_from(cohort).unwrap()),
        kind,
        actor: "a".into(),
        reason: "r".into(),
    };
    let r = apply(
        &mut state,
        T0,
        Command::Override(ov("tablet", OverrideKind::Hold)),
    );
    assert!(matches!(
        r,
        Response::Refused(StateError::UnknownCohort { .. })
    ));
    let r = apply(
        &mut state,
        T0,
        Command::Override(ov("mobile", OverrideKind::SetExposure(130.0))),
    );
    assert!(
        matches!(r, Response::Refused(StateError::Invalid { ref field, .. }) if field == "exposure")
    );
    let r = apply(
        &mut state,
        T0,
        Command::Override(ov("mobile", OverrideKind::SetExposure(25.0))),
    );
    let Response::Overridden(d) = r else {
        panic!("{r:?}")
    };
    assert_eq!(d.changes[0].to_exposure, 25.0);
    assert_eq!(
        state.live_gate(&gate()).unwrap().cohorts[&mobile()].stage,
        3
    );
}

#[test]
fn every_change_appends_exactly_one_decision_with_the_next_version() {
    let mut state = with_gate();
    let kill = Override {
        gate: gate(),
        cohort: None,
        kind: OverrideKind::Kill,
        actor: "a".into(),
        reason: "r".into(),
    };
    apply(&mut state, T0 + 1, Command::Override(kill));
    apply(
        &mut state,
        T0 + 2,
        Command::PutContract {
            contract: Box::new(contract()),
        },
    );
    let versions: Vec<u64> = state
        .live_gate(&gate())
        .unwrap()
        .decisions
        .iter()
        .map(|d| d.version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
}

#[test]
fn an_entry_reports_the_decisions_it_appended_and_no_others() {
    let mut state = with_gate();
    let kill = Override {
        gate: gate(),
        cohort: None,
        kind: OverrideKind::Kill,
        actor: "a".into(),
        reason: "r".into(),
    };
    let done = state.apply_at(
        &Request {
            at: T0 + 1,
            command: Command::Override(kill.clone()),
        },
        7,
    );
    let log = &state.live_gate(&gate()).unwrap().decisions;
    assert_eq!(done.decisions, log[log.len() - 1..].to_vec());
    assert_eq!(done.decisions[0].version, 2);
    assert!(matches!(done.response, Response::Overridden(_)));

    // A refused override, an ingest and a tick append nothing.
    let refused = Override {
        cohort: Some(CohortName::try_from("nope").unwrap()),
        ..kill
    };
    let signals = vec![rate("error_rate", T0 + 16 * MIN, 1, 100)];
    for command in [
        Command::Override(refused),
        Command::Ingest {
            idempotency_key: "k".into(),
            signals,
        },
        Command::Tick,
    ] {
        let done = state.apply_at(
            &Request {
                at: T0 + 16 * MIN,
                command,
            },
            8,
        );
        assert_eq!(done.decisions, Vec::new(), "{:?}", done.response);
    }
}

#[test]
fn cluster_time_never_goes_backwards() {
    let mut state = with_gate();
    apply(&mut state, T0 + 10 * MIN, Command::Tick);
    apply(&mut state, T0 + 5 * MIN, Command::Tick);
    assert_eq!(state.cluster_time, T0 + 10 * MIN);
}

#[test]
fn idempotency_keys_expire_after_their_retention() {
    let mut state = with_gate();
    ingest(&mut state, T0, "old", vec![]);
    ingest(&mut state, T0 + DEDUP_RETENTION_MS + 1, "new", vec![]);
    assert!(!state.ingested.contains_key("old"));
    assert!(state.ingested.contains_key("new"));
}

fn with_hooks(hooks: &[(&str, &[NotifyOn])]) -> Contract {
    let mut c = contract();
    c.notify = hooks
        .iter()
        .map(|(url, on)| Notify {
            url: (*url).into(),
            secret: Some("k".into()),
            secret_env: None,
            on: on.to_vec(),
        })
        .collect();
    c
}

fn put(state: &mut State, at: Millis, c: Contract) {
    apply(
        state,
        at,
        Command::PutContract {
            contract: Box::new(c),
        },
    );
}

fn notified(state: &mut State, url: &str, version: u64) -> Response {
    apply(
        state,
        T0 + 10,
        Command::Notified {
            gate: gate(),
            url: url.into(),
            version,
        },
    )
}

fn override_(state: &mut State, kind: OverrideKind) {
    let ov = Override {
        gate: gate(),
        cohort: None,
        kind,
        actor: "a".into(),
        reason: "r".into(),
    };
    apply(state, T0 + 5, Command::Override(ov));
}

#[test]
fn a_webhook_hears_the_decisions_it_wants_from_when_it_was_added() {
    const A: &str = "http://a.example/hook";
    const B: &str = "http://b.example/hook";
    let mut state = with_gate();
    override_(&mut state, OverrideKind::Hold); // version 2: before any hook
    put(
        &mut state,
        T0 + 1,
        with_hooks(&[(A, &[NotifyOn::Kill]), (B, &[NotifyOn::Contract])]),
    );
    let g = state.live_gate(&gate()).unwrap();
    assert_eq!(g.notified.get(A), Some(&2), "starts after the history");
    // B wants the contract decision (version 3) that added it; A wants nothing yet.
    assert_eq!(g.next_delivery(B).map(|d| d.version), Some(3));
    assert!(g.next_delivery(A).is_none());
    override_(&mut state, OverrideKind::Resume); // 4
    override_(&mut state, OverrideKind::Rollback); // 5: an operator's rollback keeps the switch
    override_(&mut state, OverrideKind::Kill); // 6
    let g = state.live_gate(&gate()).unwrap();
    assert_eq!(g.decisions[4].events(), vec![NotifyOn::Rollback]);
    let kill = g.next_delivery(A).expect("the kill");
    assert_eq!(
        (kill.version, kill.delivery_id()),
        (6, "checkout-v2:6".into())
    );
    assert_eq!(kill.events(), vec![NotifyOn::Kill]);
    assert_eq!(notified(&mut state, A, 6), Response::Notified { cursor: 6 });
    // Never back; not past the gate's version; only named receivers.
    assert_eq!(notified(&mut state, A, 4), Response::Notified { cursor: 6 });
    assert!(matches!(
        notified(&mut state, A, 99),
        Response::Refused(StateError::Invalid { .. })
    ));
    assert!(matches!(
        notified(&mut state, "http://other/", 1),
        Response::Refused(StateError::Invalid { .. })
    ));
    assert!(state.live_gate(&gate()).unwrap().next_delivery(A).is_none());
    // A contract that keeps A and drops B: A keeps its cursor, B is forgotten.
    put(&mut state, T0 + 6, with_hooks(&[(A, &[NotifyOn::Kill])]));
    let g = state.live_gate(&gate()).unwrap();
    assert_eq!(g.notified.get(A), Some(&6));
    assert!(!g.notified.contains_key(B));
}

#[test]
fn a_new_ladder_keeps_each_cohort_at_its_percentage_not_its_stage_number() {
    let mut state = with_gate();
    let set = Override {
        gate: gate(),
        cohort: Some(mobile()),
        kind: OverrideKind::SetExposure(10.0),
        actor: "a".into(),
        reason: "r".into(),
    };
    apply(&mut state, T0 + MIN, Command::Override(set));
    {
        let g = state.gates.get_mut(&gate()).expect("gate");
        let s = g.cohorts.get_mut(&mobile()).expect("mobile");
        assert_eq!(
            (s.stage, s.exposure),
            (2, 10.0),
            "10% is stage 2 of [1,5,10,..]"
        );
        s.approved_stage = Some(4); // 50% approved
    }
    let yaml = include_str!("../../examples/checkout-v2.yaml").replace(
        "ladder: [1, 5, 10, 25, 50, 100]",
        "ladder: [5, 25, 50, 100]",
    );
    let contract = Contract::from_yaml(&yaml).expect("contract");
    assert_eq!(contract.ladder, vec![5.0, 25.0, 50.0, 100.0]);
    apply(
        &mut state,
        T0 + 2 * MIN,
        Command::PutContract {
            contract: Box::new(contract),
        },
    );
    let s = &state.gates[&gate()].cohorts[&mobile()];
    // Stage 0 (5%, at or below 10%): the next expansion goes to 25%, not to 50% or 100%.
    assert_eq!((s.stage, s.exposure), (0, 10.0));
    assert_eq!(
        s.approved_stage,
        Some(2),
        "the approval of 50% stays an approval of 50%"
    );
}

#[test]
fn an_operator_set_exposure_is_marked_until_the_engine_moves_it() {
    let mut state = with_gate();
    let assigned = |state: &State| {
        let g = state.live_gate(&gate()).unwrap();
        g.assign(&mobile(), "user-1").unwrap().operator_set
    };
    assert!(
        !assigned(&state),
        "the ladder's first stage is the engine's"
    );
    let ov = Override {
        gate: gate(),
        cohort: Some(mobile()),
        kind: OverrideKind::SetExposure(40.0),
        actor: "a".into(),
        reason: "r".into(),
    };
    apply(&mut state, T0 + 5, Command::Override(ov));
    assert!(assigned(&state));
    // Another cohort's exposure stays the engine's.
    let g = state.live_gate(&gate()).unwrap();
    let other = g.cohorts.keys().find(|c| **c != mobile()).unwrap().clone();
    assert!(!g.assign(&other, "user-1").unwrap().operator_set);
    // What an older node wrote has no index: it is derived from the decision log, the same.
    let mut older = state.clone();
    for g in older.gates.values_mut() {
        g.operator_exposure = None;
    }
    assert!(assigned(&older));
    // The next decision recorded there rebuilds the index from the log first.
    override_(&mut older, OverrideKind::Hold);
    assert_eq!(
        older.live_gate(&gate()).unwrap().operator_exposure,
        Some(std::iter::once(mobile()).collect())
    );
    // A hold changes no exposure: still the operator's. The engine's rollback moves it.
    override_(&mut state, OverrideKind::Hold);
    assert!(assigned(&state));
    let version = state.live_gate(&gate()).unwrap().version;
    let mut j = judgement(&state, Verdict::Rollback, false);
    j.next.exposure = 0.0;
    assert!(matches!(
        decide(&mut state, version, j),
        Response::Decided { applied: true, .. }
    ));
    assert!(!assigned(&state));
}

#[test]
fn a_quiet_window_changed_nothing_a_kill_and_the_contract_did() {
    let mut state = with_gate();
    let g = state.live_gate(&gate()).unwrap();
    assert!(g.decisions[0].changed_something(), "the contract");
    let version = g.version;
    let stay = judgement(&state, Verdict::Stay, false);
    decide(&mut state, version, stay);
    let g = state.live_gate(&gate()).unwrap();
    assert!(!g.decisions.last().unwrap().changed_something(), "a stay");
    let mut kill = g.decisions.last().unwrap().clone();
    kill.kill_switch = true;
    assert!(kill.changed_something());
}
