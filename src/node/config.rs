//! A node's configuration: data, then validated. Defaults live here and only here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::RateLimit;
use crate::ids::NodeId;
use crate::tls::TlsFiles;

/// Everything a node needs to run. Read from a TOML/YAML file or flags, then `validate`d.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's Raft id (non-zero).
    pub id: NodeId,
    /// Address the gRPC server binds (public API and node-to-node service).
    pub listen: SocketAddr,
    /// Address the HTTP server binds (`/metrics`, `/healthz`, `/readyz`, the JSON API under
    /// `/v1/`, the Argo Rollouts and Flagger hooks). None: no HTTP listener.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// Address the flagd listener binds: flagd's evaluation protocol for OpenFeature's flagd
    /// providers (evaluation, health and reflection only; no tokens). None: no flagd listener.
    #[serde(default)]
    pub flagd: Option<SocketAddr>,
    /// Address other nodes and clients reach this node at; defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Data directory (Raft log, snapshots).
    pub data: PathBuf,
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    #[serde(default = "default_election_min_ms")]
    pub election_timeout_min_ms: u64,
    #[serde(default = "default_election_max_ms")]
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries since the last one.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// How often the leader's evaluator looks for closed windows.
    #[serde(default = "default_evaluate_ms")]
    pub evaluate_every_ms: u64,
    /// Check kill rules on every committed batch and roll back before the window closes.
    #[serde(default = "default_early_kill")]
    pub early_kill: bool,
    /// Longest time a request may take before it fails with DEADLINE_EXCEEDED.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How long promoting a learner waits for it to answer and catch up (at most 4/5 of
    /// `request_timeout_ms`); after that the promotion is refused and it stays a learner.
    #[serde(default = "default_promote_timeout_ms")]
    pub promote_timeout_ms: u64,
    /// How many entries a learner's replicated log may be behind the leader's applied index
    /// at the start of a promotion for it to count as caught up.
    #[serde(default = "default_promote_max_lag")]
    pub promote_max_lag: u64,
    /// Most signals in one ingest batch.
    #[serde(default = "default_max_batch")]
    pub max_batch_signals: usize,
    /// The access file (cluster token, client tokens with roles; see `crate::auth`). None:
    /// no access control, for development on one machine.
    #[serde(default)]
    pub access: Option<PathBuf>,
    /// Mutual TLS for every connection (see `crate::tls`). None: plaintext.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Calls per caller (token, or client IP without access control). None: no limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// How far a clock may be from the voters' median before it is reported as skewed (the
    /// leader proposes the median either way; a single voter's clock may run this far ahead of
    /// its pace and signals; see "Cluster time" in docs/design.md). Default 5 s: far above
    /// what NTP keeps (milliseconds), far below what blinds a gate (a window and its grace).
    #[serde(default = "default_max_clock_skew_ms")]
    pub max_clock_skew_ms: u64,
    /// The first wait before a failed webhook delivery is tried again; it doubles up to
    /// `notify_retry_max_ms` (with ±20% jitter) and a delivery is retried until it succeeds.
    #[serde(default = "default_notify_retry_ms")]
    pub notify_retry_ms: u64,
    #[serde(default = "default_notify_retry_max_ms")]
    pub notify_retry_max_ms: u64,
    /// How long one webhook POST may take before it counts as failed.
    #[serde(default = "default_notify_timeout_ms")]
    pub notify_timeout_ms: u64,
}

fn default_heartbeat_ms() -> u64 {
    100
}
fn default_election_min_ms() -> u64 {
    500
}
fn default_election_max_ms() -> u64 {
    1000
}
fn default_snapshot_every() -> u64 {
    20_000
}
fn default_early_kill() -> bool {
    true
}
fn default_evaluate_ms() -> u64 {
    250
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_promote_timeout_ms() -> u64 {
    8_000
}
fn default_promote_max_lag() -> u64 {
    8
}
fn default_max_clock_skew_ms() -> u64 {
    5_000
}
fn default_notify_retry_ms() -> u64 {
    1_000
}
fn default_notify_retry_max_ms() -> u64 {
    300_000
}
fn default_notify_timeout_ms() -> u64 {
    5_000
}
fn default_max_batch() -> usize {
    5000
}

/// A configuration that cannot run, with the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl NodeConfig {
    /// A configuration with every default, for `id` listening on `listen` with data in `data`.
    pub fn new(id: NodeId, listen: SocketAddr, data: PathBuf) -> Self {
        Self {
            id,
            listen,
            http: None,
            flagd: None,
            advertise: None,
            data,
            heartbeat_ms: default_heartbeat_ms(),
            election_timeout_min_ms: default_election_min_ms(),
            election_timeout_max_ms: default_election_max_ms(),
            snapshot_every: default_snapshot_every(),
            evaluate_every_ms: default_evaluate_ms(),
            early_kill: default_early_kill(),
            request_timeout_ms: default_request_timeout_ms(),
            promote_timeout_ms: default_promote_timeout_ms(),
            promote_max_lag: default_promote_max_lag(),
            max_batch_signals: default_max_batch(),
            access: None,
            tls: None,
            rate_limit: None,
            max_clock_skew_ms: default_max_clock_skew_ms(),
            notify_retry_ms: default_notify_retry_ms(),
            notify_retry_max_ms: default_notify_retry_max_ms(),
            notify_timeout_ms: default_notify_timeout_ms(),
        }
    }

    /// The address peers and clients use.
    pub fn advertised(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// `promote_timeout_ms`, but at most 4/5 of the request timeout: a promotion is one
    /// request, and its refusal must reach the caller before the request times out.
    pub fn promote_timeout(&self) -> Duration {
        Duration::from_millis(self.promote_timeout_ms.min(self.request_timeout_ms / 5 * 4))
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.id == 0 {
            return fail("id", "must be a positive integer");
        }
        if self.heartbeat_ms == 0 {
            return fail("heartbeat_ms", "must be positive");
        }
        if self.election_timeout_min_ms <= self.heartbeat_ms * 2 {
            return fail(
                "election_timeout_min_ms",
                "must be more than twice heartbeat_ms",
            );
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return fail(
                "election_timeout_max_ms",
                "must be more than election_timeout_min_ms",
            );
        }
        if self.snapshot_every < 10 {
            return fail("snapshot_every", "must be at least 10");
        }
        if self.evaluate_every_ms == 0 || self.request_timeout_ms == 0 {
            return fail("evaluate_every_ms", "intervals must be positive");
        }
        if self.promote_timeout_ms == 0 {
            return fail("promote_timeout_ms", "must be positive");
        }
        if self.max_batch_signals == 0 || self.max_batch_signals > 10_000 {
            return fail(
                "max_batch_signals",
                "must be between 1 and 10000 (a batch is one log entry)",
            );
        }
        if let Some(Err((field, reason))) = self.rate_limit.map(|l| l.check()) {
            return fail(field, reason);
        }
        if self.max_clock_skew_ms == 0 || self.max_clock_skew_ms > 3_600_000 {
            return fail(
                "max_clock_skew_ms",
                "must be between 1 and 3600000 (one hour)",
            );
        }
        if self.notify_retry_ms == 0 {
            return fail("notify_retry_ms", "must be positive");
        }
        if self.notify_retry_max_ms < self.notify_retry_ms {
            return fail("notify_retry_max_ms", "must be at least notify_retry_ms");
        }
        if self.notify_timeout_ms == 0 {
            return fail("notify_timeout_ms", "must be positive");
        }
        if self.data.as_os_str().is_empty() {
            return fail("data", "must name a directory");
        }
        Ok(())
    }

    /// openraft's configuration derived from this one.
    pub fn raft_config(&self) -> Result<openraft::Config, ConfigError> {
        let config = openraft::Config {
            cluster_name: "rampart".to_owned(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            install_snapshot_timeout: 10_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            // Logs kept behind a snapshot, for followers a little behind; fewer when snapshots are frequent.
            max_in_snapshot_log_to_keep: self.snapshot_every.min(500),
            max_payload_entries: 256,
            // Elections are started by `crate::node::candidacy` after a pre-vote, never by
            // openraft's own timer (which would let a cut-off node raise the term).
            enable_elect: false,
            ..Default::default()
        };
        config.validate().map_err(|e| ConfigError {
            field: "raft",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let mut c = NodeConfig::new(1, "127.0.0.1:0".parse().unwrap(), "d".into());
        assert!(c.validate().is_ok());
        c.election_timeout_min_ms = 150;
        assert_eq!(c.validate().unwrap_err().field, "election_timeout_min_ms");
        c = NodeConfig::new(0, "127.0.0.1:0".parse().unwrap(), "d".into());
        assert_eq!(c.validate().unwrap_err().field, "id");
        c = NodeConfig::new(1, "127.0.0.1:0".parse().unwrap(), "d".into());
        c.promote_timeout_ms = 0;
        assert_eq!(c.validate().unwrap_err().field, "promote_timeout_ms");
        c.promote_timeout_ms = 60_000;
        assert_eq!(
            c.promote_timeout(),
            Duration::from_secs(8),
            "bounded by the request"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = "id = 1\nlisten = \"127.0.0.1:7001\"\ndata = \"d\"\nheartbeat = 5\n";
        assert!(toml::from_str::<NodeConfig>(text)
            .unwrap_err()
            .to_string()
            .contains("heartbeat"));
    }
}
