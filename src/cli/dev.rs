//! `rampart dev`: a 3-node cluster on loopback in one process, data under ./rampart-data,
//! initialised on first run with the example contract applied. Ctrl-C stops it cleanly; run
//! again, it reuses the data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::engine::Contract;
use crate::node::NodeConfig;
use crate::state::Command;

/// The example contract applied on first start.
pub const EXAMPLE_CONTRACT: &str = include_str!("../../examples/checkout-v2.yaml");

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Data directory of the local cluster.
    #[arg(long, default_value = "rampart-data")]
    pub data: PathBuf,
    /// Port of node 1; nodes 2 and 3 take the next two.
    #[arg(long, default_value_t = 7101)]
    pub base_port: u16,
    /// HTTP port of node 1 (metrics, JSON API, hooks); nodes 2 and 3 take the next two.
    #[arg(long, default_value_t = 7201)]
    pub http_port: u16,
    /// flagd port of node 1 (flagd's evaluation protocol, for OpenFeature flagd providers;
    /// 8013 is the port they assume); nodes 2 and 3 take the next two.
    #[arg(long, default_value_t = 8013)]
    pub flagd_port: u16,
    /// Push live synthetic signals for a demo gate with 10-second windows (examples/demo.yaml):
    /// cohorts expand stage by stage and mobile regresses and rolls back within about a
    /// minute. Data in a temporary directory, removed when it stops.
    #[arg(long)]
    pub demo: bool,
}

pub async fn run(mut args: DevArgs) -> anyhow::Result<()> {
    let scratch = args
        .demo
        .then(|| std::env::temp_dir().join(format!("rampart-demo-{}", std::process::id())));
    if let Some(dir) = &scratch {
        args.data.clone_from(dir);
    }
    let outcome = serve(&args).await;
    if let Some(dir) = scratch {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("note: could not remove {}: {e}", dir.display());
        }
    }
    outcome
}

async fn serve(args: &DevArgs) -> anyhow::Result<()> {
    let mut nodes = Vec::new();
    let mut members = BTreeMap::new();
    for i in 0..3u16 {
        let id = u64::from(i) + 1;
        let port = args
            .base_port
            .checked_add(i)
            .context("--base-port too high")?;
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let http_port = args
            .http_port
            .checked_add(i)
            .context("--http-port too high")?;
        let flagd_port = args
            .flagd_port
            .checked_add(i)
            .context("--flagd-port too high")?;
        let mut config = NodeConfig::new(id, listen, args.data.join(format!("node{id}")));
        config.http = Some(SocketAddr::from(([127, 0, 0, 1], http_port)));
        config.flagd = Some(SocketAddr::from(([127, 0, 0, 1], flagd_port)));
        members.insert(id, listen.to_string());
        let running = crate::server::start(config).await.with_context(|| {
            format!("starting node {id} on {listen} (is another rampart dev running?)")
        })?;
        nodes.push(running);
    }
    let first = nodes[0].node.clone();
    let mut demo = None;
    first
        .init(members)
        .await
        .context("initialising the cluster")?;
    wait_for_leader(&first).await?;
    let has_contract = !first.state.read().state.gates.is_empty();
    if !has_contract {
        let contract = Contract::from_yaml(EXAMPLE_CONTRACT).context("the example contract")?;
        first
            .write(Command::PutContract {
                contract: Box::new(contract),
            })
            .await?;
    }
    if args.demo {
        let gate = super::demo::apply(&first).await?;
        demo = Some((
            gate.clone(),
            tokio::spawn(super::demo::produce(first.clone(), gate, 1)),
        ));
    }
    let leader = first.leader().map(|(id, _)| id).unwrap_or_default();
    println!(
        "rampart dev: 3 nodes on loopback, data in {}",
        args.data.display()
    );
    for n in &nodes {
        println!(
            "  node {}  {}  {}  flagd {}{}",
            n.node.id,
            n.endpoint(),
            n.http_url().unwrap_or_default(),
            n.flagd_addr.map(|a| a.to_string()).unwrap_or_default(),
            if n.node.id == leader {
                "  (leader)"
            } else {
                ""
            }
        );
    }
    let first_window = first
        .state
        .read()
        .state
        .gates
        .values()
        .next()
        .map(|g| format!(", {}", crate::engine::signal::format_time(g.first_window)))
        .unwrap_or_default();
    if let Some(http) = nodes.first().and_then(|n| n.http_url()) {
        println!();
        println!("Console: {http}/  (every node serves it)");
    }
    println!();
    println!("Try, in another terminal:");
    println!("  rampart cluster status");
    println!("  rampart gate list");
    println!("  rampart contract get checkout-v2");
    println!("  rampart gate evaluate checkout-v2 user-42 --cohort mobile");
    println!("  rampart gate watch checkout-v2");
    println!("  rampart simulate regression-mobile > trace.jsonl   # --list: every scenario");
    println!("  rampart backtest --contract examples/checkout-v2.yaml --signals trace.jsonl");
    println!("  rampart signal push -f FILE.jsonl   # live signals count from the gate's first full window{first_window}");
    println!("  rampart override kill checkout-v2 --actor you --reason 'trying it out'");
    println!("  rampart decisions checkout-v2");
    if let Some(http) = nodes.first().and_then(|n| n.http_url()) {
        println!("  curl {http}/v1/gates/checkout-v2/verdict?cohort=mobile");
        println!("  curl {http}/metrics");
        println!("  curl -d '{{\"context\":{{\"targetingKey\":\"user-42\",\"cohort\":\"mobile\"}}}}' {http}/ofrep/v1/evaluate/flags/checkout-v2");
    }
    if let Some(flagd) = nodes.first().and_then(|n| n.flagd_addr) {
        println!("  OpenFeature flagd providers (RPC mode): FLAGD_HOST={} FLAGD_PORT={} FLAGD_RESOLVER=rpc", flagd.ip(), flagd.port());
    }
    match &demo {
        Some((gate, _)) => {
            println!();
            println!(
                "Demo: gate {gate}, 10-second windows (examples/demo.yaml), synthetic traffic from"
            );
            println!("`rampart simulate regression-mobile`: both cohorts expand 5% → 25% → 50% → 100%; mobile's");
            println!("negative reviews rise 1.6x from its 5th window and it rolls back, with the evidence.");
            println!("  rampart gate watch {gate}");
            println!("  rampart decisions {gate} --evidence");
            println!("  rampart override kill {gate} --actor you --reason 'trying it out'   # then: override resume");
            println!("Ctrl-C stops the demo and removes its data.");
        }
        None => {
            println!("  rampart dev --demo                  # live synthetic traffic: watch a rollout decide in a minute");
            println!(
                "Ctrl-C stops the cluster; run `rampart dev` again to resume with the same data."
            );
        }
    }
    super::shutdown_signal().await;
    println!("stopping...");
    if let Some((_, producer)) = demo {
        producer.abort();
    }
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

async fn wait_for_leader(node: &crate::node::Node) -> anyhow::Result<()> {
    let mut metrics = node.raft.metrics();
    tokio::time::timeout(
        Duration::from_secs(20),
        metrics.wait_for(|m| m.current_leader.is_some()),
    )
    .await
    .context("no leader elected within 20s")?
    .context("raft stopped")?;
    node.read_barrier().await?;
    Ok(())
}
