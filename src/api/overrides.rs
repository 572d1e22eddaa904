//! Overrides: a human's hold, resume, approve, rollback, kill or exposure, with actor and reason.

use tonic::{Request, Response, Status};

use super::convert::{cohort_opt, decision, gate_key};
use super::error::{ApiError, ApiResult};
use super::Api;
use crate::auth::{authorize, Role};
use crate::node::NodeError;
use crate::proto::v1 as pb;
use crate::proto::v1::overrides_server::Overrides;
use crate::state::{Command, Override, OverrideKind, Response as SmResponse};

const MAX_TEXT: usize = 1024;

fn required_text(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid(
            field,
            "is required: every override says who and why",
        ));
    }
    if trimmed.len() > MAX_TEXT {
        return Err(ApiError::invalid(
            field,
            format!("is longer than {MAX_TEXT} bytes"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// An override request to a checked override; errors name the field.
pub fn parse(request: &pb::OverrideRequest) -> Result<Override, ApiError> {
    let kind = match pb::OverrideKind::try_from(request.kind) {
        Ok(pb::OverrideKind::Hold) => OverrideKind::Hold,
        Ok(pb::OverrideKind::Resume) => OverrideKind::Resume,
        Ok(pb::OverrideKind::Approve) => OverrideKind::Approve,
        Ok(pb::OverrideKind::Rollback) => OverrideKind::Rollback,
        Ok(pb::OverrideKind::Kill) => OverrideKind::Kill,
        Ok(pb::OverrideKind::SetExposure) => {
            let pct = request.exposure;
            if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
                return Err(ApiError::invalid(
                    "exposure",
                    format!("{pct} is not a percentage in [0, 100]"),
                ));
            }
            OverrideKind::SetExposure(pct)
        }
        _ => {
            return Err(ApiError::invalid(
                "kind",
                "must be one of HOLD, RESUME, APPROVE, ROLLBACK, KILL, SET_EXPOSURE",
            ))
        }
    };
    Ok(Override {
        gate: gate_key("gate", &request.gate)?,
        cohort: cohort_opt("cohort", &request.cohort)?,
        kind,
        actor: required_text("actor", &request.actor)?,
        reason: required_text("reason", &request.reason)?,
    })
}

#[tonic::async_trait]
impl Overrides for Api {
    #[tracing::instrument(skip_all)]
    async fn r#override(&self, request: Request<pb::OverrideRequest>) -> ApiResult<pb::Decision> {
        let caller = authorize(&request, Role::Operator, "overriding a gate")?;
        let mut ov = parse(&request.into_inner())?;
        // The actor is what the person typed; with access control on, the token they used
        // is recorded next to it so the audit trail cannot be written under another name.
        if caller.authenticated && ov.actor != caller.name {
            ov.actor = format!("{} (token {})", ov.actor, caller.name);
        }
        let written = self
            .node
            .write(Command::Override(ov))
            .await
            .map_err(ApiError::from)?;
        match written.response {
            SmResponse::Overridden(d) => Ok(Response::new(decision(&d))),
            SmResponse::Refused(e) => Err(ApiError::from(NodeError::Refused(e)).into()),
            other => Err(Status::internal(format!("unexpected response {other:?}"))),
        }
    }
}
