//! rampart: a replicated release-gate cluster.
//!
//! # Layout
//!
//! - [`ids`]: the domain's identifiers (gate, cohort, metric), validated once.
//! - [`engine`]: pure statistics, policy and backtesting. No IO, no clock, no async
//!   (see `docs/engine.md`).
//! - [`state`]: the replicated state machine (gates, windows, decisions), deterministic.
//! - [`store`]: the Raft log and state machine storage on sled; the only module touching disk.
//! - [`consensus`]: openraft's types and its network over tonic.
//! - [`node`]: a running node: replicated writes and linearizable reads from any node,
//!   membership, the leader's evaluator.
//! - [`api`]: the gRPC edge (`rampart.v1`), errors mapped to statuses in one place.
//! - [`http`]: the HTTP edge: Prometheus metrics, probes, the JSON API, Argo and Flagger hooks,
//!   OpenFeature's OFREP.
//! - [`flagd`]: flagd's evaluation protocol on its own listener, for OpenFeature's flagd
//!   providers.
//! - [`notify`]: the contract webhooks the leader delivers, signed, retried, resumed by the
//!   next leader.
//! - [`auth`]: bearer tokens with roles for clients, the cluster token between nodes.
//! - [`tls`]: mutual TLS between nodes and for clients.
//! - [`scenario`]: synthetic signal traces (`rampart simulate`, `dev --demo`, the tests).
//! - [`server`]: a node bound to a listener, started and stopped the same way everywhere.
//! - [`cli`]: the `rampart` command line.

// tonic's handler signatures return `Result<_, tonic::Status>`; Status is large by design.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod consensus;
pub mod engine;
pub mod flagd;
pub mod http;
pub mod ids;
pub mod node;
pub mod notify;
pub mod proto;
pub mod scenario;
pub mod server;
pub mod state;
pub mod store;
pub mod tls;
