//! Counts and times every gRPC call by service, method and status code (etcd's
//! go-grpc-prometheus names), as a tower layer around the whole server. Only services this
//! node serves get their own labels; anything else counts as `unknown`, so a client cannot
//! grow the label set. Streams are timed until the response head (the stream opening).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::node::metrics::{GrpcLabels, GrpcMethod};
use crate::node::Node;

/// The services of rampart's gRPC and flagd listeners (others are labelled `unknown`).
const SERVICES: [&str; 10] = [
    "rampart.v1.Contracts",
    "rampart.v1.Signals",
    "rampart.v1.Gates",
    "rampart.v1.Overrides",
    "rampart.v1.Admin",
    "rampart.internal.RaftInternal",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "flagd.evaluation.v1.Service",
    "flagd.evaluation.v2.Service",
];

/// The layer.
#[derive(Clone)]
pub struct MeteredLayer(pub Arc<Node>);

impl<S> tower::Layer<S> for MeteredLayer {
    type Service = Metered<S>;
    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            node: self.0.clone(),
        }
    }
}

/// The service the layer wraps.
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    node: Arc<Node>,
}

/// `/pkg.Service/Method` as (service, method), both `unknown` for a service not served here.
fn labels(path: &str) -> GrpcMethod {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    let known = SERVICES.contains(&service)
        && !method.is_empty()
        && method.len() <= 64
        && method.bytes().all(|b| b.is_ascii_alphanumeric());
    if known {
        GrpcMethod {
            grpc_service: service.to_owned(),
            grpc_method: method.to_owned(),
        }
    } else {
        GrpcMethod {
            grpc_service: "unknown".into(),
            grpc_method: "unknown".into(),
        }
    }
}

/// A status code's canonical name, as grpc-go's `codes.Code.String()` spells it and so as
/// go-grpc-prometheus labels it (`OK`, `Canceled`, `InvalidArgument`, ...).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for Metered<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let method = labels(request.uri().path());
        let started = Instant::now();
        let node = self.node.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await;
            let code = match &response {
                // A trailers-only answer (every error) has its status in the head; a
                // successful unary call's comes in the trailers.
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from),
                Err(_) => tonic::Code::Unknown,
            };
            node.metrics
                .grpc_seconds
                .get_or_create(&method)
                .observe(started.elapsed().as_secs_f64());
            node.metrics
                .grpc_handled
                .get_or_create(&GrpcLabels {
                    grpc_service: method.grpc_service,
                    grpc_method: method.grpc_method,
                    grpc_code: code_name(code).to_owned(),
                })
                .inc();
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_services_get_labels() {
        let l = labels("/rampart.v1.Gates/Evaluate");
        assert_eq!(
            (l.grpc_service.as_str(), l.grpc_method.as_str()),
            ("rampart.v1.Gates", "Evaluate")
        );
        assert_eq!(labels("/evil.Service/X").grpc_service, "unknown");
        assert_eq!(labels("/rampart.v1.Gates/a-b").grpc_method, "unknown");
        assert_eq!(labels("").grpc_service, "unknown");
    }

    #[test]
    fn codes_are_labelled_by_their_canonical_names() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::Cancelled), "Canceled");
        assert_eq!(code_name(tonic::Code::InvalidArgument), "InvalidArgument");
        // Every code by its number, as grpc-go lists them.
        let names: Vec<&str> = (0..=16).map(|n| code_name(tonic::Code::from(n))).collect();
        assert_eq!(
            names,
            [
                "OK",
                "Canceled",
                "Unknown",
                "InvalidArgument",
                "DeadlineExceeded",
                "NotFound",
                "AlreadyExists",
                "PermissionDenied",
                "ResourceExhausted",
                "FailedPrecondition",
                "Aborted",
                "OutOfRange",
                "Unimplemented",
                "Internal",
                "Unavailable",
                "DataLoss",
                "Unauthenticated",
            ]
        );
    }
}
