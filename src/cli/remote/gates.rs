//! `rampart gate get|list|watch|evaluate` and `rampart decisions`.

use std::collections::HashMap;

use clap::{Args, Subcommand};

use super::consistency;
use crate::api::view;
use crate::cli::client::{connect, repeatable, status_error, Target};
use crate::cli::table::{pct, Output};
use crate::engine::signal::format_time;
use crate::proto::v1 as pb;
use crate::proto::v1::gates_client::GatesClient;

#[derive(Debug, Subcommand)]
pub enum GateCmd {
    /// A gate's state.
    Get {
        gate: String,
        /// Read this node's state without asking the leader (reports applied index and age).
        #[arg(long)]
        local: bool,
    },
    /// Every gate's state.
    List {
        #[arg(long)]
        local: bool,
    },
    /// Stream the state, then every decision, of one or more gates.
    Watch {
        #[arg(required = true)]
        gates: Vec<String>,
        /// Resume after this version (one gate only).
        #[arg(long)]
        after: Option<u64>,
    },
    /// Which variant a unit gets.
    Evaluate {
        gate: String,
        unit: String,
        #[arg(long, default_value = "")]
        cohort: String,
    },
}

#[derive(Debug, Args)]
pub struct DecisionsArgs {
    pub gate: String,
    /// Only decisions after this version.
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Show every metric's evidence.
    #[arg(long)]
    pub evidence: bool,
}

fn gate_rows(g: &pb::GateState) -> Vec<Vec<String>> {
    g.cohorts
        .iter()
        .map(|c| {
            vec![
                g.gate.clone(),
                c.cohort.clone(),
                pct(c.exposure),
                c.status.clone(),
                if g.kill_switch {
                    "ON".into()
                } else {
                    "off".into()
                },
                g.version.to_string(),
            ]
        })
        .collect()
}

const GATE_HEADERS: [&str; 6] = [
    "GATE",
    "COHORT",
    "EXPOSURE",
    "STATUS",
    "KILL SWITCH",
    "VERSION",
];

pub(super) fn decision_row(d: &pb::Decision) -> Vec<String> {
    let exposure = d
        .changes
        .iter()
        .map(|c| format!("{}:{}→{}", c.cohort, c.from_exposure, c.to_exposure))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        d.version.to_string(),
        d.at.as_ref()
            .map(|t| format_time(crate::api::convert::millis(t)))
            .unwrap_or_default(),
        d.cohort.clone(),
        d.action.clone(),
        exposure,
        d.decided_by.clone(),
        d.reason.clone(),
    ]
}

pub(super) const DECISION_HEADERS: [&str; 7] = [
    "VERSION", "AT", "COHORT", "ACTION", "EXPOSURE", "BY", "REASON",
];

pub async fn gate(target: &Target, out: Output, cmd: GateCmd) -> anyhow::Result<()> {
    let client = GatesClient::new(connect(target).await?);
    match cmd {
        GateCmd::Get { gate, local } => {
            let g = repeatable(
                &client,
                pb::GetGateRequest {
                    gate: gate.clone(),
                    consistency: consistency(local),
                },
                |mut c, r| async move { c.get_gate(r).await },
            )
            .await?;
            out.print(&view::gate(&g), &GATE_HEADERS, gate_rows(&g));
        }
        GateCmd::List { local } => {
            let reply = repeatable(
                &client,
                pb::ListGatesRequest {
                    consistency: consistency(local),
                },
                |mut c, r| async move { c.list_gates(r).await },
            )
            .await?;
            let json: Vec<_> = reply.gates.iter().map(view::gate).collect();
            out.print(
                &json,
                &GATE_HEADERS,
                reply.gates.iter().flat_map(gate_rows).collect(),
            );
        }
        GateCmd::Evaluate { gate, unit, cohort } => {
            let r = repeatable(
                &client,
                pb::EvaluateRequest {
                    gate: gate.clone(),
                    unit_id: unit.clone(),
                    cohort: cohort.clone(),
                    consistency: 0,
                },
                |mut c, r| async move { c.evaluate(r).await },
            )
            .await?;
            out.print(&serde_json::json!({"variant": r.variant, "treatment": r.treatment, "bucket": r.bucket, "exposure": r.exposure, "kill_switch": r.kill_switch, "gate_version": r.gate_version}),
                &["VARIANT", "TREATMENT", "BUCKET", "EXPOSURE", "KILL SWITCH"],
                vec![vec![r.variant.clone(), r.treatment.to_string(), r.bucket.to_string(), pct(r.exposure), r.kill_switch.to_string()]]);
        }
        GateCmd::Watch { gates, after } => {
            let mut after_version = HashMap::new();
            if let Some(v) = after {
                anyhow::ensure!(gates.len() == 1, "--after takes exactly one gate");
                after_version.insert(gates[0].clone(), v);
            }
            let mut stream = client
                .clone()
                .watch(pb::WatchRequest {
                    gates,
                    after_version,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if !out.json {
                out!("{}", crate::cli::table::render(&DECISION_HEADERS, &[]));
            }
            while let Some(event) = stream.message().await.map_err(status_error)? {
                match event.event {
                    Some(pb::watch_event::Event::State(g)) => {
                        if out.json {
                            outln!("{}", serde_json::json!({"state": view::gate(&g)}));
                        } else {
                            for row in gate_rows(&g) {
                                outln!("state  {}", row.join("  "));
                            }
                        }
                    }
                    Some(pb::watch_event::Event::Decision(d)) => {
                        if out.json {
                            outln!("{}", serde_json::json!({"decision": view::decision(&d)}));
                        } else {
                            outln!("{}", decision_row(&d).join("  "));
                        }
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}

pub async fn decisions(target: &Target, out: Output, args: DecisionsArgs) -> anyhow::Result<()> {
    let client = GatesClient::new(connect(target).await?);
    let request = pb::ListDecisionsRequest {
        gate: args.gate.clone(),
        after_version: args.after,
        limit: args.limit,
        consistency: 0,
    };
    let reply = repeatable(&client, request.clone(), |mut c, r| async move {
        c.list_decisions(r).await
    })
    .await?;
    if out.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &reply
                    .decisions
                    .iter()
                    .map(view::decision)
                    .collect::<Vec<_>>()
            )?
        );
        return Ok(());
    }
    out!(
        "{}",
        crate::cli::table::render(
            &DECISION_HEADERS,
            &reply.decisions.iter().map(decision_row).collect::<Vec<_>>()
        )
    );
    if args.evidence {
        for d in &reply.decisions {
            for e in &d.evidence {
                outln!(
                    "  v{} {} {}: {} [{}]",
                    d.version,
                    e.cohort,
                    e.metric,
                    e.summary,
                    e.zone
                );
            }
            for t in &d.topics {
                outln!(
                    "  v{} {} topic {:?}: {} [{}]",
                    d.version,
                    t.cohort,
                    t.topic,
                    t.summary,
                    t.zone
                );
            }
        }
    }
    Ok(())
}
