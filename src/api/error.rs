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

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let message = e.to_string();
        let code = match &e {
            ApiError::Invalid { .. } => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::Node(n) => match n {
                NodeError::NoLeader
                | NodeError::LeaderUnreachable { .. }
                | NodeError::Stopped(_) => Code::Unavailable,
                NodeError::Unknown(_) => Code::Unknown,
                NodeError::Timeout(_) => Code::DeadlineExceeded,
                NodeError::TooLarge { .. } => Code::InvalidArgument,
                NodeError::Membership(_) => Code::FailedPrecondition,
                NodeError::Refused(
                    StateError::UnknownGate(_) | StateError::UnknownCohort { .. },
                ) => Code::NotFound,
                NodeError::Refused(StateError::Invalid { .. }) => Code::InvalidArgument,
            },
        };
        Status::new(code, message)
    }
}

/// Shorthand for handlers.
pub type ApiResult<T> = Result<tonic::Response<T>, Status>;
