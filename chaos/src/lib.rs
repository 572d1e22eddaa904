//! rampart-chaos: chaos drills against a rampart cluster, and the checker that judges them.
//!
//! # Layout
//!
//! - [`history`]: the record of a drill (every call, every node's final state), as data.
//! - [`wgl`]: a Wing–Gong/porcupine linearizability search over any model. Pure.
//! - [`check`]: one module per invariant; a record in, violations out. Pure: no IO, no clock.
//! - [`runner`]: the drills: a cluster (local processes or docker-compose), faults, a
//!   workload that records the history, and the report. All the IO lives here.

pub mod check;
pub mod history;
pub mod runner;
pub mod wgl;
