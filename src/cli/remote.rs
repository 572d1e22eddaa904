//! Client commands: contracts, signals, gates, decisions, overrides, cluster.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::client::{connect, retry, status_error, Target};
use super::table::{pct, Output};
use crate::api::convert::signal_to_proto;
use crate::api::view;
use crate::engine::signal::format_time;
use crate::engine::SignalLine;
use crate::proto::v1 as pb;
use crate::proto::v1::admin_client::AdminClient;
use crate::proto::v1::contracts_client::ContractsClient;
use crate::proto::v1::gates_client::GatesClient;
use crate::proto::v1::overrides_client::OverridesClient;
use crate::proto::v1::signals_client::SignalsClient;

const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Subcommand)]
pub enum ContractCmd {
    /// Apply (create or update) a contract from a YAML file.
    Apply {
        #[arg(short = 'f', long = "file", value_parser = super::existing_file)]
        file: PathBuf,
    },
    /// Show a gate's contract.
    Get { gate: String },
    /// List contracts.
    List,
    /// Delete a gate's contract (its decision log stays).
    Delete { gate: String },
}

#[derive(Debug, Subcommand)]
pub enum SignalCmd {
    /// Push a JSON-lines signal file; reports accepted and rejected counts.
    Push {
        #[arg(short = 'f', long = "file", value_parser = super::existing_file)]
        file: PathBuf,
        /// Signals per batch (one idempotency key each).
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

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

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverrideKind {
    Hold,
    Resume,
    Approve,
    Rollback,
    Kill,
    SetExposure,
}

#[derive(Debug, Args)]
pub struct OverrideArgs {
    pub kind: OverrideKind,
    pub gate: String,
    /// One cohort (default: every cohort).
    #[arg(long, default_value = "")]
    pub cohort: String,
    /// For set-exposure: the percentage.
    #[arg(long)]
    pub exposure: Option<f64>,
    /// Who decides.
    #[arg(long, env = "USER")]
    pub actor: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Initialise a new cluster (once; repeating it with the same members is harmless).
    Init {
        /// Members as ID=HOST:PORT; none means the node at --endpoint alone.
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Leader, term, members, and each node's log and applied index.
    Status,
    /// Add a node as a learner, then promote it to voter.
    Add {
        id: u64,
        addr: String,
        /// Stay a learner.
        #[arg(long)]
        learner: bool,
    },
    /// Promote a learner to voter (also finishes an interrupted change).
    Promote { id: u64 },
    /// Remove a node from the cluster.
    Remove { id: u64 },
}

fn consistency(local: bool) -> i32 {
    if local {
        pb::Consistency::Local as i32
    } else {
        pb::Consistency::Linearizable as i32
    }
}

pub async fn contract(target: &Target, out: Output, cmd: ContractCmd) -> anyhow::Result<()> {
    let mut client = ContractsClient::new(connect(target).await?);
    match cmd {
        ContractCmd::Apply { file } => {
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let reply = client
                .put_contract(pb::PutContractRequest { yaml })
                .await
                .map_err(status_error)?
                .into_inner();
            let row = vec![
                reply.gate.clone(),
                reply.contract_version.to_string(),
                reply.gate_version.to_string(),
            ];
            out.print(&serde_json::json!({"gate": reply.gate, "contract_version": reply.contract_version, "gate_version": reply.gate_version}),
                &["GATE", "CONTRACT VERSION", "GATE VERSION"], vec![row]);
        }
        ContractCmd::Get { gate } => {
            let reply = retry(PATIENCE, || {
                let mut c = client.clone();
                let req = pb::GetContractRequest {
                    gate: gate.clone(),
                    consistency: 0,
                };
                async move { c.get_contract(req).await }
            })
            .await
            .map_err(status_error)?
            .into_inner();
            if out.json {
                outln!(
                    "{}",
                    serde_json::json!({"gate": reply.gate, "contract_version": reply.contract_version, "yaml": reply.yaml})
                );
            } else {
                outln!(
                    "# {} contract version {}\n{}",
                    reply.gate,
                    reply.contract_version,
                    reply.yaml
                );
            }
        }
        ContractCmd::List => {
            let reply = retry(PATIENCE, || {
                let mut c = client.clone();
                let req = pb::ListContractsRequest { consistency: 0 };
                async move { c.list_contracts(req).await }
            })
            .await
            .map_err(status_error)?
            .into_inner();
            let rows = reply
                .contracts
                .iter()
                .map(|c| {
                    vec![
                        c.gate.clone(),
                        c.contract_version.to_string(),
                        c.owner.clone(),
                        c.description.clone(),
                    ]
                })
                .collect();
            let json: Vec<_> = reply.contracts.iter().map(|c| serde_json::json!({"gate": c.gate, "contract_version": c.contract_version, "owner": c.owner, "description": c.description})).collect();
            out.print(&json, &["GATE", "VERSION", "OWNER", "DESCRIPTION"], rows);
        }
        ContractCmd::Delete { gate } => {
            let reply = client
                .delete_contract(pb::DeleteContractRequest { gate: gate.clone() })
                .await
                .map_err(status_error)?
                .into_inner();
            out.print(
                &serde_json::json!({"gate": gate, "gate_version": reply.gate_version}),
                &["GATE", "DELETED AT VERSION"],
                vec![vec![gate, reply.gate_version.to_string()]],
            );
        }
    }
    Ok(())
}

/// An idempotency key prefix from the file's content: pushing the same file twice counts once.
fn content_key(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("file-{hash:016x}")
}

pub async fn signal(target: &Target, out: Output, cmd: SignalCmd) -> anyhow::Result<()> {
    let SignalCmd::Push { file, batch } = cmd;
    anyhow::ensure!(
        (1..=5000).contains(&batch),
        "--batch must be between 1 and 5000"
    );
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let text = String::from_utf8(bytes.clone()).context("the signal file is not UTF-8")?;
    let key = content_key(&bytes);
    let mut rejected: Vec<serde_json::Value> = Vec::new();
    let mut good: Vec<(usize, pb::Signal)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = SignalLine::read(line)
            .map_err(|e| (e.field, e.reason))
            .and_then(|l| l.into_signal().map_err(|e| (e.field, e.reason)));
        match parsed {
            Ok(s) => good.push((line_no, signal_to_proto(&s))),
            Err((field, reason)) => rejected
                .push(serde_json::json!({"line": line_no, "field": field, "reason": reason})),
        }
    }
    let client = SignalsClient::new(connect(target).await?);
    let mut accepted = 0u64;
    let mut duplicates = 0u64;
    for (n, chunk) in good.chunks(batch).enumerate() {
        let request = pb::IngestRequest {
            idempotency_key: format!("{key}-{batch}-{n}"),
            signals: chunk.iter().map(|(_, s)| s.clone()).collect(),
        };
        let reply = retry(PATIENCE, || {
            let mut c = client.clone();
            let req = request.clone();
            async move { c.ingest(req).await }
        })
        .await
        .map_err(status_error)?
        .into_inner();
        accepted += u64::from(reply.accepted);
        duplicates += u64::from(reply.duplicate);
        for r in reply.rejected {
            let line = usize::try_from(r.index)
                .ok()
                .and_then(|i| chunk.get(i))
                .map_or(0, |(l, _)| *l);
            rejected.push(serde_json::json!({"line": line, "field": r.field, "reason": r.reason}));
        }
    }
    let summary = serde_json::json!({"file": file.display().to_string(), "accepted": accepted, "rejected": rejected.len(), "duplicate_batches": duplicates, "rejections": rejected});
    if out.json {
        outln!("{summary}");
    } else {
        outln!(
            "{}: {accepted} accepted, {} rejected{}",
            file.display(),
            rejected.len(),
            if duplicates > 0 {
                format!(" ({duplicates} batches were already ingested)")
            } else {
                String::new()
            }
        );
        for r in rejected.iter().take(20) {
            outln!(
                "  line {}: {}: {}",
                r["line"],
                r["field"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or("")
            );
        }
        if rejected.len() > 20 {
            outln!("  ... {} more (use --json to see all)", rejected.len() - 20);
        }
    }
    Ok(())
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

fn decision_row(d: &pb::Decision) -> Vec<String> {
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

const DECISION_HEADERS: [&str; 7] = [
    "VERSION", "AT", "COHORT", "ACTION", "EXPOSURE", "BY", "REASON",
];

pub async fn gate(target: &Target, out: Output, cmd: GateCmd) -> anyhow::Result<()> {
    let client = GatesClient::new(connect(target).await?);
    match cmd {
        GateCmd::Get { gate, local } => {
            let g = retry(PATIENCE, || {
                let mut c = client.clone();
                let req = pb::GetGateRequest {
                    gate: gate.clone(),
                    consistency: consistency(local),
                };
                async move { c.get_gate(req).await }
            })
            .await
            .map_err(status_error)?
            .into_inner();
            out.print(&view::gate(&g), &GATE_HEADERS, gate_rows(&g));
        }
        GateCmd::List { local } => {
            let reply = retry(PATIENCE, || {
                let mut c = client.clone();
                let req = pb::ListGatesRequest {
                    consistency: consistency(local),
                };
                async move { c.list_gates(req).await }
            })
            .await
            .map_err(status_error)?
            .into_inner();
            let json: Vec<_> = reply.gates.iter().map(view::gate).collect();
            out.print(
                &json,
                &GATE_HEADERS,
                reply.gates.iter().flat_map(gate_rows).collect(),
            );
        }
        GateCmd::Evaluate { gate, unit, cohort } => {
            let r = retry(PATIENCE, || {
                let mut c = client.clone();
                let req = pb::EvaluateRequest {
                    gate: gate.clone(),
                    unit_id: unit.clone(),
                    cohort: cohort.clone(),
                    consistency: 0,
                };
                async move { c.evaluate(req).await }
            })
            .await
            .map_err(status_error)?
            .into_inner();
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
                out!("{}", super::table::render(&DECISION_HEADERS, &[]));
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
    let reply = retry(PATIENCE, || {
        let mut c = client.clone();
        let req = request.clone();
        async move { c.list_decisions(req).await }
    })
    .await
    .map_err(status_error)?
    .into_inner();
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
        super::table::render(
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

pub async fn override_gate(target: &Target, out: Output, args: OverrideArgs) -> anyhow::Result<()> {
    let kind = match args.kind {
        OverrideKind::Hold => pb::OverrideKind::Hold,
        OverrideKind::Resume => pb::OverrideKind::Resume,
        OverrideKind::Approve => pb::OverrideKind::Approve,
        OverrideKind::Rollback => pb::OverrideKind::Rollback,
        OverrideKind::Kill => pb::OverrideKind::Kill,
        OverrideKind::SetExposure => pb::OverrideKind::SetExposure,
    };
    if matches!(args.kind, OverrideKind::SetExposure) && args.exposure.is_none() {
        anyhow::bail!("set-exposure needs --exposure PERCENT");
    }
    let mut client = OverridesClient::new(connect(target).await?);
    let d = client
        .r#override(pb::OverrideRequest {
            gate: args.gate,
            cohort: args.cohort,
            kind: kind as i32,
            exposure: args.exposure.unwrap_or(0.0),
            actor: args.actor,
            reason: args.reason,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    out.print(
        &view::decision(&d),
        &DECISION_HEADERS,
        vec![decision_row(&d)],
    );
    Ok(())
}

fn status_out(out: Output, s: &pb::ClusterStatus) {
    let json = view::cluster(s);
    if !out.json {
        let leader = s.leader_id.map_or("none".to_owned(), |l| l.to_string());
        outln!(
            "leader {leader}, term {}, voters {:?}, learners {:?}{}",
            s.term,
            s.voters,
            s.learners,
            if s.joint {
                " (joint change in progress)"
            } else {
                ""
            }
        );
        if s.clock_skew {
            let why = if s.time_limit.is_empty() {
                "a member's clock is off".to_owned()
            } else {
                format!("leader bounds cluster time: {}", s.time_limit)
            };
            outln!(
                "CLOCK SKEW: {why} (max_clock_skew_ms {}; see the CLOCK column)",
                s.max_clock_skew_ms
            );
        }
    }
    let rows = s
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                n.addr.clone(),
                n.role.clone(),
                if n.reachable {
                    "yes".into()
                } else {
                    "NO".into()
                },
                n.term.to_string(),
                n.last_log_index.to_string(),
                n.applied_index.to_string(),
                n.matched_index.map(|m| m.to_string()).unwrap_or_default(),
                n.lag.map(|l| l.to_string()).unwrap_or_default(),
                n.clock_skew_ms.map(clock_cell).unwrap_or_default(),
            ]
        })
        .collect();
    out.print(
        &json,
        &[
            "ID",
            "ADDR",
            "ROLE",
            "REACHABLE",
            "TERM",
            "LAST LOG",
            "APPLIED",
            "MATCHED",
            "LAG",
            "CLOCK",
        ],
        rows,
    );
}

/// A member's clock against the members' median: `+7200.0s`, `-0.0s`.
fn clock_cell(skew_ms: i64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let seconds = skew_ms as f64 / 1000.0;
    format!("{seconds:+.1}s")
}

pub async fn cluster(target: &Target, out: Output, cmd: ClusterCmd) -> anyhow::Result<()> {
    let mut client = AdminClient::new(connect(target).await?);
    let status = match cmd {
        ClusterCmd::Init { members } => {
            let mut parsed = Vec::new();
            for m in &members {
                let (id, addr) = m
                    .split_once('=')
                    .with_context(|| format!("--member {m}: expected ID=HOST:PORT"))?;
                let id: u64 = id
                    .parse()
                    .with_context(|| format!("--member {m}: {id} is not a node id"))?;
                parsed.push(pb::Member {
                    id,
                    addr: addr.to_owned(),
                });
            }
            client.init(pb::InitRequest { members: parsed }).await
        }
        ClusterCmd::Status => client.status(pb::StatusRequest {}).await,
        ClusterCmd::Add { id, addr, learner } => {
            let added = client
                .add_learner(pb::AddLearnerRequest {
                    member: Some(pb::Member { id, addr }),
                })
                .await;
            if learner || added.is_err() {
                added
            } else {
                client.promote(pb::PromoteRequest { id }).await
            }
        }
        ClusterCmd::Promote { id } => client.promote(pb::PromoteRequest { id }).await,
        ClusterCmd::Remove { id } => client.remove(pb::RemoveRequest { id }).await,
    }
    .map_err(status_error)?
    .into_inner();
    status_out(out, &status);
    Ok(())
}

/// Asks the node's gRPC health service; an error unless it is SERVING.
pub async fn health(target: &Target) -> anyhow::Result<()> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(connect(target).await?);
    let reply = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    anyhow::ensure!(
        reply.status == serving,
        "not serving (status {})",
        reply.status
    );
    outln!("SERVING");
    Ok(())
}
