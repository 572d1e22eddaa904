//! Watches the Raft core. openraft stops its core for good on a storage error (disk full, an
//! I/O error, a damaged record) and reports it in its metrics (`running_state` is `Err`); the
//! gRPC server would go on answering. A node whose core stopped can neither replicate nor
//! apply, so it must not look alive: this module turns the stop into the node's fatal signal,
//! which health reporting (NOT_SERVING) and `rampart serve` (exit non-zero, for a supervisor
//! to restart it) act on.

use std::sync::Arc;

use openraft::error::Fatal;
use tokio::sync::watch;

use super::Node;
use crate::ids::NodeId;

/// Why the core stopped, if it stopped on an error rather than by a shutdown we asked for.
fn fatal_of(running: &Result<(), Fatal<NodeId>>, shutting_down: bool) -> Option<String> {
    match running {
        Ok(()) => None,
        Err(Fatal::Stopped) if shutting_down => None,
        Err(Fatal::Stopped) => Some("the raft core stopped without a shutdown".into()),
        Err(e) => Some(e.to_string()),
    }
}

/// Runs until the node shuts down or its core stops on an error; then publishes the error
/// on `fatal` and logs it at error level.
pub(super) async fn run(node: Arc<Node>, fatal: watch::Sender<Option<String>>) {
    let mut metrics = node.raft.metrics();
    let shutdown = node.shutdown_signal();
    loop {
        let reason = fatal_of(&metrics.borrow().running_state, *shutdown.borrow());
        if let Some(reason) = reason {
            tracing::error!(
                node = node.id,
                error = %reason,
                "raft stopped on a fatal error: this node can no longer replicate or apply \
                 and reports NOT_SERVING"
            );
            fatal.send_replace(Some(reason));
            return;
        }
        if *shutdown.borrow() {
            return;
        }
        // The core sends its last metrics (with the error) before dropping the sender.
        if metrics.changed().await.is_err() {
            let reason = fatal_of(&metrics.borrow().running_state, *shutdown.borrow());
            if let Some(reason) = reason {
                tracing::error!(node = node.id, error = %reason, "raft stopped on a fatal error");
                fatal.send_replace(Some(reason));
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unrequested_stop_is_fatal() {
        assert_eq!(fatal_of(&Ok(()), false), None);
        assert_eq!(fatal_of(&Err(Fatal::Stopped), true), None);
        assert!(fatal_of(&Err(Fatal::Stopped), false).is_some());
        let panicked = fatal_of(&Err(Fatal::Panicked), true).expect("fatal");
        assert!(panicked.contains("panic"), "{panicked}");
    }
}
