//! Client commands against a running cluster, one module per command family: contracts,
//! signals, gates and decisions, overrides, cluster membership and health. Every call that is
//! safe to repeat goes through `super::client::repeatable`; writes without an idempotency key
//! are sent once.

mod cluster;
mod contracts;
mod gates;
mod overrides;
mod signals;

pub use cluster::{cluster, health, ClusterCmd};
pub use contracts::{contract, ContractCmd};
pub use gates::{decisions, gate, DecisionsArgs, GateCmd};
pub use overrides::{override_gate, OverrideArgs};
pub use signals::{signal, SignalCmd};

use crate::proto::v1 as pb;

/// The consistency of a read: this node's applied state, or the leader's (linearizable).
pub(super) fn consistency(local: bool) -> i32 {
    if local {
        pb::Consistency::Local as i32
    } else {
        pb::Consistency::Linearizable as i32
    }
}
