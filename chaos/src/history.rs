//! The recorded history of a drill and the final state of every node: plain data, read from and
//! written to JSON lines. This module owns the format; it never checks anything.
//!
//! Times are wall-clock microseconds since the Unix epoch, taken by the drill runner on one
//! machine (the nodes stamp decisions with the same machine's clock, in milliseconds).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch.
pub type Micros = i64;
/// Milliseconds since the Unix epoch (the nodes' unit).
pub type Millis = i64;

/// How a call ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The node answered with a result.
    Ok,
    /// The node answered with an error that means nothing was applied.
    Failed,
    /// Timed out or the connection broke: it may or may not have been applied.
    Unknown,
}

/// One call by one client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Unique in the history.
    pub id: u64,
    pub client: u32,
    /// The node the call went to.
    #[serde(default)]
    pub node: Option<u64>,
    pub start: Micros,
    /// When the answer (or the give-up) came; for `Unknown`, the call may take effect any time
    /// after `start`, or never.
    pub end: Micros,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub call: Call,
}

/// What was called, with its input and (when `Ok`) its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// Plain data, built once per call and read once by the checker: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Call {
    Ingest {
        input: IngestInput,
        #[serde(default)]
        output: Option<IngestOutput>,
    },
    Read {
        input: ReadInput,
        #[serde(default)]
        output: Option<GateView>,
    },
    Evaluate {
        input: EvaluateInput,
        #[serde(default)]
        output: Option<EvaluateOutput>,
    },
    Override {
        input: OverrideInput,
        #[serde(default)]
        output: Option<DecisionRecord>,
    },
    /// One watch stream connection, from connect to disconnect, with what it delivered.
    Watch {
        input: WatchInput,
        #[serde(default)]
        output: Vec<WatchItem>,
    },
}

impl Call {
    pub fn kind(&self) -> &'static str {
        match self {
            Call::Ingest { .. } => "ingest",
            Call::Read { .. } => "read",
            Call::Evaluate { .. } => "evaluate",
            Call::Override { .. } => "override",
            Call::Watch { .. } => "watch",
        }
    }
}

/// One rate signal of a batch (the drills only send rates, so a batch's contribution to a
/// window is exact: its trials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRec {
    pub gate: String,
    pub metric: String,
    pub cohort: String,
    /// `treatment` or `control`.
    pub arm: String,
    pub at_ms: Millis,
    pub events: u64,
    pub trials: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestInput {
    pub key: String,
    pub signals: Vec<SignalRec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutput {
    pub accepted: u32,
    /// Positions of the refused signals.
    pub rejected: Vec<u32>,
    pub duplicate: bool,
    pub log_index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    Linearizable,
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadInput {
    pub gate: String,
    pub consistency: Consistency,
}

/// One cohort of a gate as a read returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortView {
    pub exposure: f64,
    pub status: String,
}

/// A gate's state as one read returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateView {
    pub version: u64,
    pub kill_switch: bool,
    pub cohorts: BTreeMap<String, CohortView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluateInput {
    pub gate: String,
    pub unit: String,
    pub cohort: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateOutput {
    pub gate_version: u64,
    pub kill_switch: bool,
    pub exposure: f64,
    pub treatment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideInput {
    pub gate: String,
    #[serde(default)]
    pub cohort: Option<String>,
    /// `hold`, `resume`, `approve`, `rollback`, `kill`.
    pub kind: String,
    pub actor: String,
    /// Unique per call (it carries the op id), so the final log tells whether an unknown
    /// override was applied.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchInput {
    pub gates: Vec<String>,
    /// Resume points sent with the request.
    #[serde(default)]
    pub after_version: BTreeMap<String, u64>,
}

/// One event a watch stream delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchItem {
    pub at: Micros,
    pub gate: String,
    /// A state snapshot (the start of a stream that did not resume) or a decision.
    pub state: bool,
    pub version: u64,
    #[serde(default)]
    pub decision: Option<DecisionRecord>,
}

/// One cohort's change in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRec {
    pub cohort: String,
    pub from_exposure: f64,
    pub to_exposure: f64,
    pub from_status: String,
    pub to_status: String,
}

/// What the checker needs of one metric's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRec {
    pub metric: String,
    pub cohort: String,
    pub window_start: Millis,
    pub samples_treatment: u64,
    pub samples_control: u64,
}

/// A decision of a gate's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub gate: String,
    pub version: u64,
    /// Empty when gate-wide.
    pub cohort: String,
    /// `expand`, `rollback`, `override:resume`, `contract`, …
    pub action: String,
    #[serde(default)]
    pub window_start: Option<Millis>,
    #[serde(default)]
    pub window_end: Option<Millis>,
    pub kill_switch_before: bool,
    pub kill_switch: bool,
    /// `leader:<node>@<term>` or `operator:<actor>` (with access control on and a token
    /// named other than the actor: `operator:<actor> (token <name>)`).
    pub decided_by: String,
    pub at_ms: Millis,
    pub reason: String,
    #[serde(default)]
    pub changes: Vec<ChangeRec>,
    #[serde(default)]
    pub evidence: Vec<EvidenceRec>,
}

impl DecisionRecord {
    /// Whether an operator who called themselves `actor` made this decision: `operator:actor`,
    /// or `operator:actor (token NAME)` when the node recorded the token the call showed.
    pub fn by_operator(&self, actor: &str) -> bool {
        let Some(rest) = self
            .decided_by
            .strip_prefix("operator:")
            .and_then(|r| r.strip_prefix(actor))
        else {
            return false;
        };
        rest.is_empty()
            || rest
                .strip_prefix(" (token ")
                .and_then(|t| t.strip_suffix(')'))
                .is_some_and(|name| !name.is_empty() && !name.contains(' '))
    }

    /// Whether two records are the same decision (what every node must agree on).
    pub fn same_as(&self, other: &DecisionRecord) -> bool {
        self == other
    }
}

/// One window aggregate as a node holds it (for when the API exposes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSamples {
    pub gate: String,
    pub cohort: String,
    pub metric: String,
    pub window_start: Millis,
    pub samples_treatment: u64,
    pub samples_control: u64,
}

/// One gate on one node at the end of a drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateFinal {
    pub view: GateView,
    pub decisions: Vec<DecisionRecord>,
}

/// One node at the end of a drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFinal {
    pub node: u64,
    /// False when the node could not be read (then nothing else is known of it).
    pub reachable: bool,
    #[serde(default)]
    pub applied_index: u64,
    #[serde(default)]
    pub gates: BTreeMap<String, GateFinal>,
    /// The node's `signals_accepted` counter, when the API exposes it.
    #[serde(default)]
    pub signals_accepted: Option<u64>,
    /// Open and closed window aggregates, when the API exposes them.
    #[serde(default)]
    pub windows: Option<Vec<WindowSamples>>,
}

/// A drill's whole record: the history and every node's final state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub ops: Vec<Op>,
    pub nodes: Vec<NodeFinal>,
}

/// A line of a history that is not a valid operation.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct ParseError {
    pub line: usize,
    #[source]
    pub source: serde_json::Error,
}

/// Parses JSON lines of operations (blank lines skipped).
pub fn parse_ops(text: &str) -> Result<Vec<Op>, ParseError> {
    parse_lines(text)
}

/// Parses JSON lines of node final states.
pub fn parse_nodes(text: &str) -> Result<Vec<NodeFinal>, ParseError> {
    parse_lines(text)
}

fn parse_lines<T: for<'de> Deserialize<'de>>(text: &str) -> Result<Vec<T>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| ParseError {
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// Writes values as JSON lines.
pub fn to_lines<T: Serialize>(values: &[T]) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    for v in values {
        out.push_str(&serde_json::to_string(v)?);
        out.push('\n');
    }
    Ok(out)
}
