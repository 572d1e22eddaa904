//! The checker against doctored histories: a clean record passes, and each kind of violation,
//! planted by hand, is caught and names the operations involved.

mod common;

use common::*;
use rampart_chaos::check::{check, Invariant, Options, Report};
use rampart_chaos::history::*;

fn run(record: &Record) -> Report {
    check(record, Options::default())
}

fn only(report: &Report, invariant: Invariant) {
    assert!(
        !report.holds(invariant),
        "expected a {invariant} violation: {report:#?}"
    );
    for v in &report.violations {
        assert_eq!(v.invariant, invariant, "unexpected violation {v}");
    }
}

fn ops_of(report: &Report) -> Vec<u64> {
    report
        .violations
        .iter()
        .flat_map(|v| v.ops.clone())
        .collect()
}

/// After doctoring the nodes' logs, the watcher saw what the nodes hold.
fn sync_watch(record: &mut Record) {
    let held = record.nodes[0].gates["g"].decisions.clone();
    for op in &mut record.ops {
        if let Call::Watch { output, .. } = &mut op.call {
            for i in output.iter_mut().filter(|i| !i.state) {
                i.decision = Some(held[usize::try_from(i.version).unwrap() - 1].clone());
            }
        }
    }
}

fn set_samples(record: &mut Record, window: i64, samples: u64) {
    for n in &mut record.nodes {
        for d in &mut n.gates.get_mut("g").unwrap().decisions {
            for e in &mut d.evidence {
                if e.window_start == window {
                    e.samples_treatment = samples;
                }
            }
        }
    }
    sync_watch(record);
}

#[test]
fn a_clean_drill_passes_every_check() {
    let report = run(&clean());
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.coverage.counters_checked, 4);
    assert_eq!(report.coverage.counters_unchecked, 0);
    assert!(report.coverage.linearizable_ops >= 5);
    assert_eq!(report.coverage.watch_events, 5);
}

#[test]
fn an_unknown_batch_may_be_left_out() {
    let mut r = clean();
    set_samples(&mut r, 2000, 0);
    assert!(run(&r).ok());
}

#[test]
fn a_lost_acknowledged_batch_is_caught() {
    let mut r = clean();
    set_samples(&mut r, 0, 20);
    let report = run(&r);
    only(&report, Invariant::AckedNotLost);
    assert!(ops_of(&report).contains(&1) && ops_of(&report).contains(&3));
}

#[test]
fn a_batch_counted_twice_is_caught() {
    let mut r = clean();
    set_samples(&mut r, 0, 50);
    let report = run(&r);
    only(&report, Invariant::CountedOnce);
    assert!(ops_of(&report).contains(&2), "the retried batch is named");
}

#[test]
fn signals_accepted_above_the_history_is_caught() {
    let mut r = clean();
    r.nodes[0].signals_accepted = Some(9);
    only(&run(&r), Invariant::CountedOnce);
}

#[test]
fn signals_accepted_below_the_acknowledged_is_caught() {
    let mut r = clean();
    r.nodes[2].signals_accepted = Some(3);
    only(&run(&r), Invariant::AckedNotLost);
}

#[test]
fn diverging_decision_logs_are_caught() {
    let mut r = clean();
    r.nodes[1].gates.get_mut("g").unwrap().decisions[1].action = "expand".into();
    only(&run(&r), Invariant::LogsAgree);
}

#[test]
fn a_read_of_a_lost_decision_is_caught() {
    let mut r = clean();
    r.ops
        .push(op(20, 2, 9000, 9100, Outcome::Ok, read(6, false)));
    let report = run(&r);
    assert!(!report.holds(Invariant::LogsAgree));
    assert!(ops_of(&report).contains(&20));
}

#[test]
fn a_stale_linearizable_read_is_caught() {
    let mut r = clean();
    // After the kill override (op 7) returned, a read sees the version before it.
    r.ops
        .push(op(20, 5, 3600, 3700, Outcome::Ok, read(2, false)));
    let report = run(&r);
    only(&report, Invariant::Linearizable);
    assert!(ops_of(&report).contains(&20));
}

#[test]
fn reads_going_back_in_time_are_caught() {
    let mut r = clean();
    r.ops
        .push(op(20, 5, 7500, 7600, Outcome::Ok, read(3, true)));
    only(&run(&r), Invariant::Linearizable);
}

#[test]
fn an_unknown_override_must_not_take_effect_before_its_call() {
    let mut r = clean();
    // A read saw the resume (version 5) before the resume (op 9, unknown) was even called.
    r.ops
        .push(op(20, 5, 5000, 5100, Outcome::Ok, read(5, false)));
    let report = run(&r);
    only(&report, Invariant::Linearizable);
}

#[test]
fn a_kill_switch_cleared_by_the_engine_is_caught() {
    let mut r = clean();
    for n in &mut r.nodes {
        let d = &mut n.gates.get_mut("g").unwrap().decisions;
        d[3].kill_switch = false;
        d[4].kill_switch_before = false;
    }
    sync_watch(&mut r);
    only(&run(&r), Invariant::KillSwitch);
}

#[test]
fn a_resume_nobody_asked_for_is_caught() {
    let mut r = clean();
    r.ops.retain(|o| o.id != 9);
    only(&run(&r), Invariant::KillSwitch);
}

#[test]
fn treatment_served_under_a_kill_switch_is_caught() {
    let mut r = clean();
    if let Call::Evaluate {
        output: Some(e), ..
    } = &mut r.ops[10].call
    {
        e.treatment = true;
    }
    let report = run(&r);
    only(&report, Invariant::KillSwitch);
    assert_eq!(ops_of(&report), vec![11]);
}

#[test]
fn a_window_decided_twice_is_caught() {
    let mut r = clean();
    for n in &mut r.nodes {
        let d = &mut n.gates.get_mut("g").unwrap().decisions;
        let mut again = decision(6, "stay", Some(0), false, false, "leader:3@4", "healthy");
        again.evidence[0].samples_treatment = 30;
        again.evidence[0].samples_control = 30;
        d.push(again);
        n.gates.get_mut("g").unwrap().view.version = 6;
    }
    // The watcher keeps up, so only the duplicate window is wrong.
    if let Call::Watch { output, .. } = &mut r.ops[12].call {
        let mut last = item(6300, 5, false);
        last.version = 6;
        last.decision = Some(r.nodes[0].gates["g"].decisions[5].clone());
        output.push(last);
    }
    only(&run(&r), Invariant::OneDecision);
}

#[test]
fn a_deposed_leaders_decision_is_caught() {
    let mut r = clean();
    for n in &mut r.nodes {
        n.gates.get_mut("g").unwrap().decisions[3].decided_by = "leader:1@1".into();
    }
    sync_watch(&mut r);
    only(&run(&r), Invariant::OneDecision);
}

#[test]
fn a_node_left_behind_is_caught() {
    let mut r = clean();
    let g = r.nodes[2].gates.get_mut("g").unwrap();
    g.decisions.truncate(4);
    g.view = view(4, true);
    only(&run(&r), Invariant::Convergence);
}

#[test]
fn an_unreachable_node_is_caught() {
    let mut r = clean();
    r.nodes[1].reachable = false;
    r.nodes[1].gates.clear();
    only(&run(&r), Invariant::Convergence);
}

#[test]
fn a_watch_gap_is_caught() {
    let mut r = clean();
    if let Call::Watch { output, .. } = &mut r.ops[11].call {
        output.remove(1);
    }
    let report = run(&r);
    only(&report, Invariant::Watch);
    assert_eq!(ops_of(&report), vec![12]);
}

#[test]
fn a_watch_duplicate_after_resume_is_caught() {
    let mut r = clean();
    if let Call::Watch { output, .. } = &mut r.ops[12].call {
        output.insert(0, item(4150, 3, false));
    }
    only(&run(&r), Invariant::Watch);
}

#[test]
fn a_watcher_that_never_caught_up_is_caught() {
    let mut r = clean();
    if let Call::Watch { output, .. } = &mut r.ops[12].call {
        output.pop();
    }
    only(&run(&r), Invariant::Watch);
}

#[test]
fn histories_round_trip_through_json_lines() {
    let r = clean();
    let text = to_lines(&r.ops).unwrap();
    assert_eq!(parse_ops(&text).unwrap(), r.ops);
    let nodes = to_lines(&r.nodes).unwrap();
    assert_eq!(parse_nodes(&nodes).unwrap(), r.nodes);
}

#[test]
fn a_decision_stamped_hours_ahead_is_caught() {
    let mut r = clean();
    for node in &mut r.nodes {
        for g in node.gates.values_mut() {
            if let Some(d) = g.decisions.last_mut() {
                d.at_ms += 2 * 3_600_000;
            }
        }
    }
    let report = run(&r);
    assert!(!report.holds(Invariant::Clock), "{report:#?}");
    assert!(report
        .violations
        .iter()
        .any(|v| v.invariant == Invariant::Clock && v.message.contains("after the history ended")));
}

/// Three batches of two signals each, all refused, sent 50 ms after their time and answered
/// `answered_ms` after it.
fn refused_batches(answered_ms: i64) -> Record {
    let mut r = clean();
    for (i, at) in [2_100i64, 2_200, 2_300].into_iter().enumerate() {
        let mut call = ingest(&format!("refused{i}"), at, 5, true);
        if let Call::Ingest {
            output: Some(out), ..
        } = &mut call
        {
            out.accepted = 0;
            out.rejected = vec![0, 1];
        }
        r.ops.push(op(
            100 + i as u64,
            1,
            at * 1000 + 50_000,
            (at + answered_ms) * 1000,
            Outcome::Ok,
            call,
        ));
    }
    r
}

#[test]
fn on_time_signals_refused_are_a_blind_gate() {
    let r = refused_batches(60);
    let report = run(&r);
    let clock: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.invariant == Invariant::Clock)
        .collect();
    assert_eq!(clock.len(), 1, "{report:#?}");
    assert!(
        clock[0].message.starts_with("6 of "),
        "{}",
        clock[0].message
    );
    assert_eq!(clock[0].ops, vec![100, 101, 102]);
}

#[test]
fn a_refused_signal_whose_call_took_seconds_is_not_a_blind_gate() {
    // Sent promptly but answered 2.3 s later (retried through a restart): it may have arrived
    // after its window closed, so its refusal says nothing about the cluster's clock.
    let r = refused_batches(2_350);
    let report = run(&r);
    assert!(report.holds(Invariant::Clock), "{report:#?}");
}

/// With access control on, a node records the token next to the actor the caller typed.
fn resumed_by(decided_by: &str) -> Record {
    let mut r = clean();
    for n in &mut r.nodes {
        n.gates.get_mut("g").unwrap().decisions[4].decided_by = decided_by.into();
    }
    sync_watch(&mut r);
    r
}

#[test]
fn a_resume_recorded_with_its_token_is_the_operators() {
    let report = run(&resumed_by("operator:sre (token deploy-eu)"));
    assert!(report.ok(), "{report:#?}");
}

#[test]
fn a_resume_by_another_actor_or_a_mangled_token_is_caught() {
    for by in [
        "operator:mallory (token sre)",
        "operator:sre-bot",
        "operator:sre (token )",
        "operator:sre (token a b)",
    ] {
        only(&run(&resumed_by(by)), Invariant::KillSwitch);
    }
}
