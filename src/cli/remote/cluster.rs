//! `rampart cluster init|status|add|promote|remove` and `rampart health`.

use anyhow::Context;
use clap::Subcommand;

use crate::api::view;
use crate::cli::client::{connect, status_error, Target};
use crate::cli::table::Output;
use crate::proto::v1 as pb;
use crate::proto::v1::admin_client::AdminClient;

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
