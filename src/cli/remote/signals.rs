//! `rampart signal push -f FILE`: a JSON-lines file read and checked here, sent in batches
//! whose idempotency keys come from the file's content.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::api::convert::signal_to_proto;
use crate::cli::client::{connect, repeatable, Target};
use crate::cli::table::Output;
use crate::engine::SignalLine;
use crate::proto::v1 as pb;
use crate::proto::v1::signals_client::SignalsClient;

#[derive(Debug, Subcommand)]
pub enum SignalCmd {
    /// Push a JSON-lines signal file; reports accepted and rejected counts.
    Push {
        #[arg(short = 'f', long = "file", value_parser = crate::cli::existing_file)]
        file: PathBuf,
        /// Signals per batch (one idempotency key each).
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
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
        let reply = repeatable(&client, request.clone(), |mut c, r| async move {
            c.ingest(r).await
        })
        .await?;
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
