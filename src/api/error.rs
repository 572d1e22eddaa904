//! The one place where errors become gRPC statuses.

use tonic::{Code, Status};

use crate::node::NodeError;
use crate::state::StateError;

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field of the request is wrong.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A field names a position past the end of what exists (a version not yet reached).
    #[error("{field}: {reason}")]
    OutOfRange { field: String, reason: String },
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The metadata key naming the request field a status is about (INVALID_ARGUMENT), so other
/// edges (HTTP) and clients can report it without parsing the message.
pub const FIELD_KEY: &str = "rampart-field";

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let message = e.to_string();
        let field = match &e {
            ApiError::Invalid { field, .. }
            | ApiError::OutOfRange { field, .. }
            | ApiError::Node(NodeError::TooLarge { field, .. })
            | ApiError::Node(NodeError::Refused(StateError::Invalid { field, .. })) => {
                Some(field.clone())
            }
            _ => None,
        };
        let code = match &e {
            ApiError::Invalid { .. } => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::OutOfRange { .. } => Code::OutOfRange,
            ApiError::Node(n) => match n {
                NodeError::NoLeader
                | NodeError::LeaderUnreachable { .. }
                | NodeError::NoClusterTime
                | NodeError::Stopped(_) => Code::Unavailable,
                NodeError::Unknown(_) => Code::Unknown,
                NodeError::Timeout(_) => Code::DeadlineExceeded,
                NodeError::TooLarge { .. } => Code::InvalidArgument,
                NodeError::Membership(_) => Code::FailedPrecondition,
                NodeError::Refused(
                    StateError::UnknownGate(_) | StateError::UnknownCohort { .. },
                ) => Code::NotFound,
                NodeError::Refused(StateError::Invalid { .. }) => Code::InvalidArgument,
                NodeError::Refused(StateError::NotEmpty { .. }) => Code::FailedPrecondition,
            },
        };
        let mut status = Status::new(code, message);
        if let Some(value) = field.and_then(|f| f.parse().ok()) {
            status.metadata_mut().insert(FIELD_KEY, value);
        }
        status
    }
}

/// Shorthand for handlers.
pub type ApiResult<T> = Result<tonic::Response<T>, Status>;
