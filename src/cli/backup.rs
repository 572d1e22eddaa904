//! `rampart snapshot save|info FILE` and `rampart restore FILE`: backups of a whole cluster.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use futures::StreamExt;

use super::client::{connect, retry, status_error, Target};
use super::table::Output;
use crate::proto::v1 as pb;
use crate::proto::v1::admin_client::AdminClient;
use crate::store::backup::{decode_backup, BackupSummary};

/// Backups of the whole replicated state.
#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Write a consistent backup of the cluster (every gate, contract version, decision,
    /// signal in open windows and idempotency key) to FILE. Needs the admin role.
    Save { file: PathBuf },
    /// Check a backup file and print what it holds (no cluster needed).
    Info {
        #[arg(value_parser = super::existing_file)]
        file: PathBuf,
    },
}

/// Restore a backup into a fresh cluster (initialised, no gate, no signal).
#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[arg(value_parser = super::existing_file)]
    pub file: PathBuf,
}

fn rows(s: &BackupSummary) -> Vec<Vec<String>> {
    vec![vec![
        s.gates.to_string(),
        s.decisions.to_string(),
        s.signals_accepted.to_string(),
        s.idempotency_keys.to_string(),
        s.log_index.to_string(),
        crate::engine::signal::format_time(s.cluster_time_ms),
    ]]
}

const HEADERS: &[&str] = &[
    "GATES",
    "DECISIONS",
    "SIGNALS",
    "KEYS",
    "LOG INDEX",
    "CLUSTER TIME",
];

fn read_backup(file: &Path) -> anyhow::Result<(Vec<u8>, BackupSummary)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let backup = decode_backup(&bytes).with_context(|| format!("{}", file.display()))?;
    Ok((bytes, backup.summary()))
}

pub async fn snapshot(target: &Target, out: Output, cmd: SnapshotCmd) -> anyhow::Result<()> {
    match cmd {
        SnapshotCmd::Info { file } => {
            let (_, summary) = read_backup(&file)?;
            out.print(&summary, HEADERS, rows(&summary));
        }
        SnapshotCmd::Save { file } => {
            let client = AdminClient::new(connect(target).await?);
            let mut chunks = retry(std::time::Duration::from_secs(10), || {
                let mut c = client.clone();
                async move { c.backup(pb::BackupRequest {}).await }
            })
            .await
            .map_err(status_error)?
            .into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = chunks.next().await {
                bytes.extend(chunk.map_err(status_error)?.data);
            }
            // Check what arrived before it replaces anything on disk.
            let summary = decode_backup(&bytes)
                .context("the backup received does not decode")?
                .summary();
            let partial = file.with_extension("partial");
            std::fs::write(&partial, &bytes)
                .with_context(|| format!("writing {}", partial.display()))?;
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", partial.display()))?;
            std::fs::rename(&partial, &file)
                .with_context(|| format!("renaming {} to {}", partial.display(), file.display()))?;
            if !out.json {
                outln!("saved {} ({} bytes)", file.display(), bytes.len());
            }
            out.print(&summary, HEADERS, rows(&summary));
        }
    }
    Ok(())
}

pub async fn restore(target: &Target, out: Output, args: RestoreArgs) -> anyhow::Result<()> {
    let (bytes, _) = read_backup(&args.file)?;
    let mut client = AdminClient::new(connect(target).await?);
    let chunks: Vec<pb::BackupChunk> = bytes
        .chunks(1024 * 1024)
        .map(|c| pb::BackupChunk { data: c.to_vec() })
        .collect();
    let mut progress = client
        .restore(futures::stream::iter(chunks))
        .await
        .map_err(status_error)?
        .into_inner();
    while let Some(message) = progress.next().await {
        let p = message.map_err(status_error)?;
        if !p.done {
            if !out.json {
                eprintln!("restored part {} of {}", p.parts_done, p.parts);
            }
            continue;
        }
        #[derive(serde::Serialize)]
        struct Restored {
            gates: u64,
            decisions: u64,
            signals_accepted: u64,
            log_index: u64,
        }
        let done = Restored {
            gates: p.gates,
            decisions: p.decisions,
            signals_accepted: p.signals_accepted,
            log_index: p.log_index,
        };
        out.print(
            &done,
            &["GATES", "DECISIONS", "SIGNALS", "AT LOG INDEX"],
            vec![vec![
                p.gates.to_string(),
                p.decisions.to_string(),
                p.signals_accepted.to_string(),
                p.log_index.to_string(),
            ]],
        );
        return Ok(());
    }
    anyhow::bail!("the node ended the restore before the last part; nothing is restored unless `rampart gate list` shows the gates (run the restore again: it starts over)")
}
