//! Outbound notifications: the leader POSTs each decision a contract's webhook wants, signed,
//! retried with backoff until the receiver takes it, then records the delivery in the log
//! (`Command::Notified`), so a new leader resumes where the old one stopped.
//!
//! One lane per (gate, webhook URL) delivers that receiver's decisions in version order; a
//! receiver that is down holds only its own lane. Delivery is at least once: a POST the
//! receiver took just before the leader died is sent again by the next leader, with the same
//! `webhook-id` (`gate:version`).
//!
//! An edge like `crate::http`: it owns the HTTP client and the retry loop, reads the applied
//! state and writes through the node; the cursors are replicated state (`crate::state::notify`).

pub mod deliver;
pub mod payload;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ids::GateKey;
use crate::node::Node;
use crate::state::{Command, Response};
use deliver::Outcome;

/// Every lane with work, started and stopped as leadership and the state change; returns
/// when the node shuts down.
pub async fn run(node: Arc<Node>) -> anyhow::Result<()> {
    let mut shutdown = node.shutdown_signal();
    // Woken by each applied decision (not by every applied command: ingest is the hot path,
    // and `commands_applied` wakes one waiter only, the evaluator's); a tick covers the rest
    // (leadership changes, a lane that ended).
    let mut decisions = node.state.subscribe();
    let client = deliver::client(Duration::from_millis(node.config.notify_timeout_ms))?;
    let mut lanes: HashMap<(GateKey, String), JoinHandle<()>> = HashMap::new();
    // The term in which this node passed the read barrier as leader.
    let mut caught_up_in: Option<u64> = None;
    let every = Duration::from_millis(node.config.evaluate_every_ms);
    loop {
        tokio::select! {
            _ = shutdown.changed() => {}
            () = tokio::time::sleep(every) => {}
            r = decisions.recv() => {
                if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    break;
                }
            }
        }
        if *shutdown.borrow() {
            break;
        }
        lanes.retain(|_, lane| !lane.is_finished());
        if !node.is_leader() {
            caught_up_in = None;
            continue;
        }
        let term = node.raft.metrics().borrow().current_term;
        if caught_up_in != Some(term) {
            // Cursors as committed before this term, so a delivery the old leader recorded
            // is not sent again needlessly.
            if node.read_barrier().await.is_err() {
                continue;
            }
            caught_up_in = Some(term);
        }
        for key in pending(&node) {
            if lanes.contains_key(&key) {
                continue;
            }
            let lane = tokio::spawn(lane(
                node.clone(),
                client.clone(),
                key.clone(),
                shutdown.clone(),
            ));
            lanes.insert(key, lane);
        }
    }
    for (_, lane) in lanes {
        lane.abort();
    }
    Ok(())
}

/// The (gate, URL) pairs with a decision still to deliver.
fn pending(node: &Node) -> Vec<(GateKey, String)> {
    let applied = node.state.read();
    applied
        .state
        .gates
        .values()
        .flat_map(|g| {
            g.contract
                .notify
                .iter()
                .filter(|h| g.next_delivery(&h.url).is_some())
                .map(|h| (g.key.clone(), h.url.clone()))
        })
        .collect()
}

/// Delivers one receiver's decisions in order while this node leads and has any.
async fn lane(
    node: Arc<Node>,
    client: reqwest::Client,
    (gate, url): (GateKey, String),
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    while node.is_leader() && !*shutdown.borrow() {
        let next = {
            let applied = node.state.read();
            applied.state.gates.get(&gate).and_then(|g| {
                let hook = g.receiver(&url)?.clone();
                let decision = g.next_delivery(&url)?.clone();
                Some((hook, decision))
            })
        };
        let Some((hook, decision)) = next else {
            return;
        };
        let event = decision
            .events()
            .into_iter()
            .find(|e| hook.on.contains(e))
            .unwrap_or(hook.on[0]);
        let id = decision.delivery_id();
        let body = payload::body(&decision, event).to_string().into_bytes();
        let outcome = deliver::attempt(&client, &hook, &id, body, node.time.wall()).await;
        let done = match outcome {
            Outcome::Delivered => {
                node.metrics.notification("delivered");
                tracing::info!(%gate, %url, delivery = %id, event = event.as_str(), "webhook delivered");
                true
            }
            Outcome::Refused(why) => {
                node.metrics.notification("refused");
                tracing::warn!(%gate, %url, delivery = %id, %why, "webhook refused the delivery; not sent again");
                true
            }
            Outcome::Retry(why) => {
                node.metrics.notification("retried");
                failures = failures.saturating_add(1);
                let wait = backoff(&node, failures);
                tracing::warn!(%gate, %url, delivery = %id, %why, attempt = failures, retry_in_ms = wait.as_millis() as u64, "webhook delivery failed");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                false
            }
        };
        if done {
            failures = 0;
            let recorded = node
                .write_forwarded(Command::Notified {
                    gate: gate.clone(),
                    url: url.clone(),
                    version: decision.version,
                })
                .await;
            match recorded {
                Ok(w) if matches!(w.response, Response::Notified { .. }) => {}
                Ok(w) => {
                    tracing::info!(%gate, %url, response = ?w.response, "delivery not recorded");
                    return;
                }
                Err(e) => {
                    tracing::info!(%gate, %url, error = %e, "delivery not recorded; the next leader sends it again");
                    return;
                }
            }
        }
    }
}

/// The wait before attempt `failures + 1`: doubling from `notify_retry_ms`, at most
/// `notify_retry_max_ms`, ±20% jitter so receivers that come back are not hit in step.
fn backoff(node: &Node, failures: u32) -> Duration {
    let first = node.config.notify_retry_ms;
    let max = node.config.notify_retry_max_ms;
    let base = first
        .saturating_mul(1u64 << failures.saturating_sub(1).min(32))
        .min(max);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::from_millis((base as f64 * jitter) as u64)
}
