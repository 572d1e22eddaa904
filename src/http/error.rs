//! The one place where errors become HTTP statuses: every failure of the HTTP edge is a gRPC
//! status of the same call (mapped from the typed errors in `crate::api::error`) or an HTTP
//! request that cannot become a call, and answers one JSON shape, `{code, field, message}`.

use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;

use crate::api::error::FIELD_KEY;
use crate::api::MAX_REQUEST_BYTES;

/// A failed HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpError {
    #[serde(skip)]
    pub status: StatusCode,
    /// The gRPC code's name in snake case (`invalid_argument`, `not_found`, ...).
    pub code: &'static str,
    /// The request field the error is about, when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl HttpError {
    /// A field of the request is wrong (400).
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        HttpError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_argument",
            message: format!("{field}: {}", reason.into()),
            field: Some(field),
        }
    }

    /// No usable credentials (401).
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            field: Some("authorization".into()),
            message: message.into(),
        }
    }

    /// The caller may not do this (403), because of `field`.
    pub fn forbidden(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        HttpError {
            status: StatusCode::FORBIDDEN,
            code: "permission_denied",
            message: format!("{field}: {}", reason.into()),
            field: Some(field),
        }
    }

    /// The route exists but does not take this method (405; the router adds `Allow`).
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        HttpError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "unimplemented",
            field: Some("method".into()),
            message: format!(
                "method: {path} does not take {method}; the routes are in docs/openapi.yaml"
            ),
        }
    }

    /// The thing asked for does not exist (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            field: None,
            message: message.into(),
        }
    }
}

impl HttpError {
    /// The same error with the request field the gRPC message calls `grpc` named as the HTTP
    /// request names it (`unit_id` is the query's `unit`).
    pub fn naming(mut self, grpc: &str, http: &str) -> Self {
        if self.field.as_deref() == Some(grpc) {
            self.field = Some(http.to_owned());
            if let Some(rest) = self.message.strip_prefix(grpc) {
                self.message = format!("{http}{rest}");
            }
        }
        self
    }
}

/// The HTTP status and code name of each gRPC code (as grpc-gateway maps them).
fn http_of(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::Ok => (StatusCode::OK, "ok"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_argument"),
        Code::OutOfRange => (StatusCode::BAD_REQUEST, "out_of_range"),
        Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Code::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
        Code::Aborted => (StatusCode::CONFLICT, "aborted"),
        Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "failed_precondition"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
        Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "unimplemented"),
        Code::Cancelled => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "cancelled",
        ),
        Code::Unknown => (StatusCode::INTERNAL_SERVER_ERROR, "unknown"),
        Code::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        Code::DataLoss => (StatusCode::INTERNAL_SERVER_ERROR, "data_loss"),
    }
}

impl From<tonic::Status> for HttpError {
    fn from(status: tonic::Status) -> Self {
        let (http, code) = http_of(status.code());
        let field = status
            .metadata()
            .get(FIELD_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| (status.code() == Code::Unauthenticated).then(|| "authorization".into()));
        HttpError {
            status: http,
            code,
            field,
            message: status.message().to_owned(),
        }
    }
}

/// A body that could not be read: one over the request limit is a 413 naming the limit (the
/// gRPC edge refuses a message that large as an invalid argument too), any other a 400.
impl From<BytesRejection> for HttpError {
    fn from(e: BytesRejection) -> Self {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("body: is larger than the {MAX_REQUEST_BYTES} bytes a request may carry")
        } else {
            format!("body: {}", e.body_text())
        };
        HttpError {
            status,
            code: "invalid_argument",
            field: Some("body".into()),
            message,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, axum::Json(&self)).into_response();
        let headers = response.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::ApiError;

    #[test]
    fn an_invalid_field_keeps_its_name_through_the_grpc_status() {
        let status: tonic::Status = ApiError::invalid("signals[2].at", "is in the future").into();
        let e = HttpError::from(status);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "invalid_argument");
        assert_eq!(e.field.as_deref(), Some("signals[2].at"));
        assert_eq!(e.message, "signals[2].at: is in the future");
    }

    #[test]
    fn a_grpc_field_is_named_as_the_http_request_names_it() {
        let status: tonic::Status = ApiError::invalid("unit_id", "must be 1 to 256 bytes").into();
        let e = HttpError::from(status).naming("unit_id", "unit");
        assert_eq!(e.field.as_deref(), Some("unit"));
        assert_eq!(e.message, "unit: must be 1 to 256 bytes");
        let other = HttpError::invalid("cohort", "name one").naming("unit_id", "unit");
        assert_eq!(other.field.as_deref(), Some("cohort"));
    }

    #[test]
    fn codes_map_once() {
        let e = HttpError::from(tonic::Status::unavailable("no leader"));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        assert_eq!(e.field, None);
        let e = HttpError::from(tonic::Status::unauthenticated("who"));
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.field.as_deref(), Some("authorization"));
        let response = e.into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
