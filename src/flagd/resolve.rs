//! One gate for one evaluation context, in flagd's terms: the value by the flag type asked,
//! the reason, the variant and rampart's metadata; or why not, as flagd's status codes.
//!
//! A pure function of the applied state: the same sticky bucketing as
//! `rampart.v1.Gates/Evaluate` (`Gate::assign`), so a unit gets the same answer through every
//! door. flagd's listener and OFREP both answer with it. Owns the context's reading (`targetingKey`, the contract's `cohort_attribute`) and the
//! map of its errors to gRPC statuses; never touches storage and never decides anything.

use std::collections::BTreeMap;

use prost_types::value::Kind;
use prost_types::{Struct, Value};

use crate::ids::{CohortName, GateKey};
use crate::state::{Gate, State};

/// Longest targeting key (the unit id), as `Evaluate` allows.
const MAX_UNIT_BYTES: usize = 256;

/// The flag type a provider asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagType {
    Boolean,
    String,
    Object,
    Float,
    Int,
}

impl FlagType {
    fn name(self) -> &'static str {
        match self {
            FlagType::Boolean => "boolean",
            FlagType::String => "string",
            FlagType::Object => "object",
            FlagType::Float => "float",
            FlagType::Int => "integer",
        }
    }
}

/// A resolved value, of the type asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Bool(bool),
    Text(String),
    Object(Struct),
}

/// One flag's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub value: Resolved,
    /// `SPLIT`, `TARGETING_MATCH`, `DISABLED` or `DEFAULT`; never `STATIC` (providers cache
    /// static answers until a change event, and an exposure changes with every stage).
    pub reason: &'static str,
    pub variant: String,
    pub metadata: Struct,
}

/// Why a flag cannot be resolved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    /// No live gate has this key: `NOT_FOUND` (the provider's FLAG_NOT_FOUND).
    #[error("flag_key: {0}")]
    NotFound(String),
    /// A gate is a boolean, string or object flag: `INVALID_ARGUMENT` (TYPE_MISMATCH).
    #[error("flag {gate} is a boolean, string or object flag (treatment, variant, details), not {asked}")]
    TypeMismatch { gate: String, asked: &'static str },
    /// The context cannot be evaluated: `INVALID_ARGUMENT`, naming the attribute.
    #[error("context.{field}: {reason}")]
    Context { field: String, reason: String },
    /// The node cannot answer (no leader for too long): `UNAVAILABLE`, which providers retry.
    #[error("{0}")]
    Unavailable(String),
}

impl From<ResolveError> for tonic::Status {
    fn from(e: ResolveError) -> Self {
        let message = e.to_string();
        match e {
            ResolveError::NotFound(_) => tonic::Status::not_found(message),
            ResolveError::TypeMismatch { .. } | ResolveError::Context { .. } => {
                tonic::Status::invalid_argument(message)
            }
            ResolveError::Unavailable(_) => tonic::Status::unavailable(message),
        }
    }
}

/// An evaluation context as the doors carry it: a protobuf `Struct` (flagd) or a JSON object
/// (OFREP).
pub trait EvaluationContext {
    /// The string attribute `field`: None when absent, null or empty; an error naming it when
    /// it is not a string.
    fn text(&self, field: &str) -> Result<Option<&str>, ResolveError>;
}

fn not_a_string(field: &str) -> ResolveError {
    ResolveError::Context {
        field: field.to_owned(),
        reason: "expected a string".into(),
    }
}

impl EvaluationContext for Option<&Struct> {
    fn text(&self, field: &str) -> Result<Option<&str>, ResolveError> {
        match self
            .and_then(|c| c.fields.get(field))
            .and_then(|v| v.kind.as_ref())
        {
            None | Some(Kind::NullValue(_)) => Ok(None),
            Some(Kind::StringValue(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
            Some(_) => Err(not_a_string(field)),
        }
    }
}

impl EvaluationContext for serde_json::Map<String, serde_json::Value> {
    fn text(&self, field: &str) -> Result<Option<&str>, ResolveError> {
        match self.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
            Some(_) => Err(not_a_string(field)),
        }
    }
}

/// A live gate by its flag key.
pub fn live_gate<'a>(state: &'a State, flag_key: &str) -> Result<&'a Gate, ResolveError> {
    let missing = || ResolveError::NotFound(format!("gate {flag_key:?} has no contract"));
    let key = GateKey::try_from(flag_key).map_err(|_| missing())?;
    state.live_gate(&key).ok_or_else(missing)
}

fn number(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

fn boolean(b: bool) -> Value {
    Value {
        kind: Some(Kind::BoolValue(b)),
    }
}

/// A struct of named values.
pub fn fields(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Struct {
    Struct {
        fields: pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// `gate` resolved as `asked` for `context`.
pub fn resolve(
    gate: &Gate,
    asked: FlagType,
    context: &impl EvaluationContext,
) -> Result<Resolution, ResolveError> {
    if matches!(asked, FlagType::Float | FlagType::Int) {
        return Err(ResolveError::TypeMismatch {
            gate: gate.key.to_string(),
            asked: asked.name(),
        });
    }
    let unit = context.text("targetingKey")?;
    if unit.is_some_and(|u| u.len() > MAX_UNIT_BYTES) {
        return Err(ResolveError::Context {
            field: "targetingKey".into(),
            reason: format!("must be at most {MAX_UNIT_BYTES} bytes"),
        });
    }
    let attribute = gate.contract.cohort_attribute.as_str();
    let named = context
        .text(attribute)?
        .map(|c| {
            CohortName::try_from(c).map_err(|e| ResolveError::Context {
                field: attribute.to_owned(),
                reason: e.to_string(),
            })
        })
        .transpose()?;
    let version = number(gate.version as f64);
    let Some(unit) = unit else {
        // No unit, no sticky bucket: the fallback, as the provider's own default would be.
        let fallback = gate.contract.variants.fallback.clone();
        let metadata = fields([
            ("gate_version", version.clone()),
            ("kill_switch", boolean(gate.kill_switch)),
            ("targeting_key", string("missing")),
        ]);
        return Ok(Resolution {
            value: value_of(asked, &fallback, false, None, version),
            reason: "DEFAULT",
            variant: fallback,
            metadata,
        });
    };
    let cohort = gate
        .evaluated_cohort(named)
        .map_err(|e| ResolveError::Context {
            field: attribute.to_owned(),
            reason: e.to_string(),
        })?;
    let Some(a) = gate.assign(&cohort, unit) else {
        return Err(ResolveError::Context {
            field: attribute.to_owned(),
            reason: format!("gate {} has no cohort {cohort}", gate.key),
        });
    };
    let reason = if gate.kill_switch {
        "DISABLED"
    } else if a.operator_set {
        "TARGETING_MATCH"
    } else {
        "SPLIT"
    };
    let metadata = fields([
        ("bucket", number(f64::from(a.bucket))),
        ("cohort", string(cohort.as_str())),
        ("exposure", number(a.exposure)),
        ("gate_version", version.clone()),
        ("kill_switch", boolean(gate.kill_switch)),
    ]);
    Ok(Resolution {
        value: value_of(
            asked,
            a.variant,
            a.treatment,
            Some((a.bucket, a.exposure)),
            version,
        ),
        reason,
        variant: a.variant.to_owned(),
        metadata,
    })
}

/// The value of the type asked: the treatment, the variant name, or the details as an object.
fn value_of(
    asked: FlagType,
    variant: &str,
    treatment: bool,
    bucketed: Option<(u32, f64)>,
    gate_version: Value,
) -> Resolved {
    match asked {
        FlagType::String => Resolved::Text(variant.to_owned()),
        FlagType::Object => {
            let mut details = vec![
                ("variant", string(variant)),
                ("treatment", boolean(treatment)),
                ("gate_version", gate_version),
            ];
            if let Some((bucket, exposure)) = bucketed {
                details.push(("bucket", number(f64::from(bucket))));
                details.push(("exposure", number(exposure)));
            }
            Resolved::Object(fields(details))
        }
        FlagType::Boolean | FlagType::Float | FlagType::Int => Resolved::Bool(treatment),
    }
}

/// Every live gate as a boolean for `context`: the answers, and the gates that could not be
/// answered with why (a bulk answer has no error per flag, so they go in its metadata).
pub fn resolve_all(
    state: &State,
    context: &impl EvaluationContext,
) -> (BTreeMap<String, Resolution>, Struct) {
    let mut flags = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for gate in state.gates.values().filter(|g| !g.deleted) {
        match resolve(gate, FlagType::Boolean, context) {
            Ok(r) => {
                flags.insert(gate.key.to_string(), r);
            }
            Err(e) => {
                errors.insert(gate.key.to_string(), string(&e.to_string()));
            }
        }
    }
    let metadata = if errors.is_empty() {
        Struct::default()
    } else {
        fields([(
            "errors",
            Value {
                kind: Some(Kind::StructValue(Struct { fields: errors })),
            },
        )])
    };
    (flags, metadata)
}
