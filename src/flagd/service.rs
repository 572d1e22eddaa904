//! Both versions of flagd's evaluation service over one resolver: v1 and v2 differ only in
//! field presence (v2's values and variants are optional), so one macro writes each from the
//! same calls of `resolve`.

use std::pin::Pin;
use std::sync::Arc;

use prost_types::Struct;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::resolve::{self, FlagType, Resolution, Resolved};
use super::Availability;
use crate::node::Node;

/// The flagd evaluation service of one node.
#[derive(Clone)]
pub struct Flagd {
    pub node: Arc<Node>,
    pub availability: Availability,
}

impl Flagd {
    /// One flag for one context, from this node's applied state.
    fn resolve(
        &self,
        flag_key: &str,
        asked: FlagType,
        context: Option<&Struct>,
    ) -> Result<Resolution, Status> {
        self.availability.check()?;
        let applied = self.node.state.read();
        let gate = resolve::live_gate(&applied.state, flag_key)?;
        Ok(resolve::resolve(gate, asked, &context)?)
    }

    fn resolve_all(
        &self,
        context: Option<&Struct>,
    ) -> Result<(std::collections::BTreeMap<String, Resolution>, Struct), Status> {
        self.availability.check()?;
        let applied = self.node.state.read();
        Ok(resolve::resolve_all(&applied.state, &context))
    }
}

/// A resolved value as a bool, string or struct (the caller asked for that type, so the
/// others cannot occur).
fn as_bool(value: Resolved) -> bool {
    matches!(value, Resolved::Bool(true))
}
fn as_text(value: Resolved) -> String {
    match value {
        Resolved::Text(s) => s,
        Resolved::Bool(b) => b.to_string(),
        Resolved::Object(_) => String::new(),
    }
}
fn as_struct(value: Resolved) -> Struct {
    match value {
        Resolved::Object(s) => s,
        Resolved::Bool(_) | Resolved::Text(_) => Struct::default(),
    }
}

type EventStream<E> = Pin<Box<dyn Stream<Item = Result<E, Status>> + Send>>;

/// Writes `Service` for one version: `$pb` its generated module, `$present` how a present
/// value is written (`identity` in v1, `Some` in v2).
macro_rules! flagd_version {
    ($pb:ident, $present:path) => {
        mod $pb {
            use super::*;
            use crate::proto::flagd::$pb as pb;

            /// A single flag's answer as `$resp`, its value converted by `$convert` (a message
            /// value is optional in both versions: `message` says the value is one).
            macro_rules! respond {
                ($resp:ident, $r:expr, $convert:expr) => {
                    respond!($resp, $r, |v| $present($convert(v)), message)
                };
                ($resp:ident, $r:expr, $value:expr, message) => {{
                    let r: Resolution = $r;
                    Ok(Response::new(pb::$resp {
                        value: $value(r.value),
                        reason: r.reason.to_owned(),
                        variant: $present(r.variant),
                        metadata: Some(r.metadata),
                    }))
                }};
            }

            #[tonic::async_trait]
            impl pb::service_server::Service for Flagd {
                async fn resolve_boolean(
                    &self,
                    request: Request<pb::ResolveBooleanRequest>,
                ) -> Result<Response<pb::ResolveBooleanResponse>, Status> {
                    let request = request.into_inner();
                    let r = self.resolve(
                        &request.flag_key,
                        FlagType::Boolean,
                        request.context.as_ref(),
                    )?;
                    respond!(ResolveBooleanResponse, r, as_bool)
                }

                async fn resolve_string(
                    &self,
                    request: Request<pb::ResolveStringRequest>,
                ) -> Result<Response<pb::ResolveStringResponse>, Status> {
                    let request = request.into_inner();
                    let r = self.resolve(
                        &request.flag_key,
                        FlagType::String,
                        request.context.as_ref(),
                    )?;
                    respond!(ResolveStringResponse, r, as_text)
                }

                async fn resolve_object(
                    &self,
                    request: Request<pb::ResolveObjectRequest>,
                ) -> Result<Response<pb::ResolveObjectResponse>, Status> {
                    let request = request.into_inner();
                    let r = self.resolve(
                        &request.flag_key,
                        FlagType::Object,
                        request.context.as_ref(),
                    )?;
                    respond!(ResolveObjectResponse, r, |v| Some(as_struct(v)), message)
                }

                async fn resolve_float(
                    &self,
                    request: Request<pb::ResolveFloatRequest>,
                ) -> Result<Response<pb::ResolveFloatResponse>, Status> {
                    let request = request.into_inner();
                    let r =
                        self.resolve(&request.flag_key, FlagType::Float, request.context.as_ref())?;
                    respond!(ResolveFloatResponse, r, |_| 0.0)
                }

                async fn resolve_int(
                    &self,
                    request: Request<pb::ResolveIntRequest>,
                ) -> Result<Response<pb::ResolveIntResponse>, Status> {
                    let request = request.into_inner();
                    let r =
                        self.resolve(&request.flag_key, FlagType::Int, request.context.as_ref())?;
                    respond!(ResolveIntResponse, r, |_| 0)
                }

                async fn resolve_all(
                    &self,
                    request: Request<pb::ResolveAllRequest>,
                ) -> Result<Response<pb::ResolveAllResponse>, Status> {
                    let request = request.into_inner();
                    let (resolved, metadata) = Flagd::resolve_all(self, request.context.as_ref())?;
                    let flags = resolved
                        .into_iter()
                        .map(|(key, r)| {
                            let flag = pb::AnyFlag {
                                reason: r.reason.to_owned(),
                                variant: $present(r.variant),
                                value: Some(pb::any_flag::Value::BoolValue(as_bool(r.value))),
                                metadata: Some(r.metadata),
                            };
                            (key, flag)
                        })
                        .collect();
                    Ok(Response::new(pb::ResolveAllResponse {
                        flags,
                        metadata: Some(metadata),
                    }))
                }

                type EventStreamStream = EventStream<pb::EventStreamResponse>;

                async fn event_stream(
                    &self,
                    _request: Request<pb::EventStreamRequest>,
                ) -> Result<Response<Self::EventStreamStream>, Status> {
                    let events =
                        super::super::events::start(self.node.clone(), self.availability.clone())?;
                    let events = events.map(|e| {
                        e.map(|(kind, data)| pb::EventStreamResponse {
                            r#type: kind.to_owned(),
                            data,
                        })
                    });
                    Ok(Response::new(Box::pin(events)))
                }
            }
        }
    };
}

flagd_version!(v1, std::convert::identity);
flagd_version!(v2, Some);
