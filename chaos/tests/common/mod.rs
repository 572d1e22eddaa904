//! A clean drill record to doctor: the fixture of the checker's tests.

use std::collections::BTreeMap;

use rampart_chaos::history::*;

pub fn decision(
    version: u64,
    action: &str,
    window: Option<i64>,
    kill_before: bool,
    kill: bool,
    by: &str,
    reason: &str,
) -> DecisionRecord {
    DecisionRecord {
        gate: "g".into(),
        version,
        cohort: if window.is_some() {
            "c1".into()
        } else {
            String::new()
        },
        action: action.into(),
        window_start: window,
        window_end: window.map(|w| w + 2000),
        kill_switch_before: kill_before,
        kill_switch: kill,
        decided_by: by.into(),
        at_ms: 0,
        reason: reason.into(),
        changes: vec![ChangeRec {
            cohort: "c1".into(),
            from_exposure: 1.0,
            to_exposure: 1.0,
            from_status: "ramping".into(),
            to_status: "ramping".into(),
        }],
        evidence: match window {
            Some(w) => vec![EvidenceRec {
                metric: "m".into(),
                cohort: "c1".into(),
                window_start: w,
                samples_treatment: if w == 0 { 30 } else { 7 },
                samples_control: if w == 0 { 30 } else { 7 },
            }],
            None => Vec::new(),
        },
    }
}

pub fn log() -> Vec<DecisionRecord> {
    vec![
        decision(
            1,
            "contract",
            None,
            false,
            false,
            "operator:contract",
            "contract version 1 applied",
        ),
        decision(2, "stay", Some(0), false, false, "leader:1@2", "healthy"),
        decision(
            3,
            "override:kill",
            None,
            false,
            true,
            "operator:sre",
            "kill by sre: op 7",
        ),
        decision(
            4,
            "stay",
            Some(2000),
            true,
            true,
            "leader:2@3",
            "kill switch on",
        ),
        decision(
            5,
            "override:resume",
            None,
            true,
            false,
            "operator:sre",
            "resume by sre: op 9",
        ),
    ]
}

pub fn signals(at: i64, trials: u64) -> Vec<SignalRec> {
    ["treatment", "control"]
        .iter()
        .map(|arm| SignalRec {
            gate: "g".into(),
            metric: "m".into(),
            cohort: "c1".into(),
            arm: (*arm).into(),
            at_ms: at,
            events: 0,
            trials,
        })
        .collect()
}

pub fn op(id: u64, client: u32, start: i64, end: i64, outcome: Outcome, call: Call) -> Op {
    Op {
        id,
        client,
        node: Some(1),
        start,
        end,
        outcome,
        error: None,
        call,
    }
}

pub fn ingest(key: &str, at: i64, trials: u64, ok: bool) -> Call {
    Call::Ingest {
        input: IngestInput {
            key: key.into(),
            signals: signals(at, trials),
        },
        output: ok.then(|| IngestOutput {
            accepted: 2,
            rejected: vec![],
            duplicate: false,
            log_index: 10,
        }),
    }
}

pub fn view(version: u64, kill: bool) -> GateView {
    GateView {
        version,
        kill_switch: kill,
        cohorts: BTreeMap::from([(
            "c1".to_owned(),
            CohortView {
                exposure: 1.0,
                status: "ramping".into(),
            },
        )]),
    }
}

pub fn read(version: u64, kill: bool) -> Call {
    Call::Read {
        input: ReadInput {
            gate: "g".into(),
            consistency: Consistency::Linearizable,
        },
        output: Some(view(version, kill)),
    }
}

pub fn overriding(kind: &str, reason: &str, output: Option<DecisionRecord>) -> Call {
    Call::Override {
        input: OverrideInput {
            gate: "g".into(),
            cohort: None,
            kind: kind.into(),
            actor: "sre".into(),
            reason: reason.into(),
        },
        output,
    }
}

pub fn item(at: i64, version: u64, state: bool) -> WatchItem {
    let l = log();
    WatchItem {
        at,
        gate: "g".into(),
        state,
        version,
        decision: (!state).then(|| l[usize::try_from(version).unwrap() - 1].clone()),
    }
}

/// A drill where everything went right: a retried batch, an unknown batch, reads around a kill
/// and a resume, a watcher that reconnected once.
pub fn clean() -> Record {
    let l = log();
    let ops = vec![
        op(1, 1, 100, 200, Outcome::Ok, ingest("k1", 500, 10, true)),
        op(
            2,
            1,
            300,
            900,
            Outcome::Unknown,
            ingest("k2", 600, 20, false),
        ),
        op(3, 1, 1000, 1100, Outcome::Ok, ingest("k2", 600, 20, true)),
        op(
            4,
            1,
            1200,
            1300,
            Outcome::Unknown,
            ingest("k3", 2500, 7, false),
        ),
        op(5, 2, 100, 200, Outcome::Ok, read(1, false)),
        op(6, 2, 3000, 3100, Outcome::Ok, read(2, false)),
        op(
            7,
            3,
            3200,
            3300,
            Outcome::Ok,
            overriding("kill", "op 7", Some(l[2].clone())),
        ),
        op(8, 2, 3400, 3500, Outcome::Ok, read(3, true)),
        op(
            9,
            3,
            6000,
            6100,
            Outcome::Unknown,
            overriding("resume", "op 9", None),
        ),
        op(10, 2, 7000, 7100, Outcome::Ok, read(5, false)),
        op(
            11,
            4,
            7200,
            7300,
            Outcome::Ok,
            Call::Evaluate {
                input: EvaluateInput {
                    gate: "g".into(),
                    unit: "u1".into(),
                    cohort: "c1".into(),
                },
                output: Some(EvaluateOutput {
                    gate_version: 3,
                    kill_switch: true,
                    exposure: 1.0,
                    treatment: false,
                }),
            },
        ),
        op(
            12,
            9,
            0,
            4000,
            Outcome::Unknown,
            Call::Watch {
                input: WatchInput {
                    gates: vec!["g".into()],
                    after_version: BTreeMap::new(),
                },
                output: vec![item(10, 1, true), item(20, 2, false), item(30, 3, false)],
            },
        ),
        op(
            13,
            9,
            4100,
            9000,
            Outcome::Ok,
            Call::Watch {
                input: WatchInput {
                    gates: vec!["g".into()],
                    after_version: BTreeMap::from([("g".to_owned(), 3)]),
                },
                output: vec![item(4200, 4, false), item(6200, 5, false)],
            },
        ),
    ];
    let node = |id| NodeFinal {
        node: id,
        reachable: true,
        applied_index: 40,
        gates: BTreeMap::from([(
            "g".to_owned(),
            GateFinal {
                view: view(5, false),
                decisions: log(),
            },
        )]),
        signals_accepted: None,
        windows: None,
    };
    Record {
        ops,
        nodes: vec![node(1), node(2), node(3)],
    }
}
