//! Identifiers of the domain, validated once where they enter the system.
//!
//! Every id is a newtype over a string (or integer) so a gate key can never be passed where
//! a cohort name is expected. Parsing (`TryFrom<&str>`) checks the allowed alphabet and length
//! and reports the reason; nothing else in the crate re-validates them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The reason an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(pub String);

const MAX_ID_LEN: usize = 128;

fn check_token(kind: &str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError(format!("{kind} must not be empty")));
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError(format!(
            "{kind} is {} bytes long; at most {MAX_ID_LEN} are allowed",
            value.len()
        )));
    }
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(IdError(format!(
            "{kind} {value:?} may only hold ASCII letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(value: &str) -> Result<Self, IdError> {
                check_token($kind, value)?;
                Ok(Self(value.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                check_token($kind, &value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token_id!(
    /// The key of a gate: one guarded rollout of one feature, e.g. `checkout-v2`.
    GateKey,
    "gate key"
);
token_id!(
    /// A segment evaluated and ramped on its own, e.g. `mobile`.
    CohortName,
    "cohort name"
);
token_id!(
    /// The name of a metric in a contract, e.g. `negative_review_rate`.
    MetricName,
    "metric name"
);

impl CohortName {
    /// The cohort used when a contract names none.
    pub fn default_cohort() -> Self {
        Self("all".to_owned())
    }
}

/// A Raft node id.
pub type NodeId = u64;

/// Milliseconds since the Unix epoch, UTC. All time in the replicated state is in this unit.
pub type Millis = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_bad_alphabet_and_empty() {
        assert!(GateKey::try_from("checkout-v2").is_ok());
        assert!(GateKey::try_from("").unwrap_err().0.contains("empty"));
        assert!(CohortName::try_from("eu west")
            .unwrap_err()
            .0
            .contains("may only hold"));
        assert!(MetricName::try_from("x".repeat(200).as_str()).is_err());
    }

    #[test]
    fn ids_deserialize_with_validation() {
        let ok: GateKey = serde_json::from_str("\"a.b_c-1\"").unwrap();
        assert_eq!(ok.as_str(), "a.b_c-1");
        assert!(serde_json::from_str::<GateKey>("\"a/b\"").is_err());
    }
}
