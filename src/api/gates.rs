//! Gates: state (linearizable or local), sticky evaluation, decisions, window aggregates, and
//! watch.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert::{
    cohort_opt, decision, gate_key, gate_state, metric_opt, millis, window_aggregates,
};
use super::error::{ApiError, ApiResult};
use super::Api;
use crate::auth::{authorize, Role};
use crate::proto::v1 as pb;
use crate::proto::v1::gates_server::Gates;
use crate::state::CohortUnresolved;

/// Most decisions one list call returns.
const MAX_DECISIONS: usize = 1000;

#[tonic::async_trait]
impl Gates for Api {
    async fn get_gate(&self, request: Request<pb::GetGateRequest>) -> ApiResult<pb::GateState> {
        authorize(&request, Role::Reader, "reading gates")?;
        let request = request.into_inner();
        let key = gate_key("gate", &request.gate)?;
        let read = self
            .read_info(request.consistency, pb::Consistency::Linearizable)
            .await?;
        let applied = self.node.state.read();
        match applied.state.gates.get(&key) {
            Some(g) => Ok(Response::new(gate_state(g, read))),
            None => Err(ApiError::NotFound(format!("gate {key} has no contract")).into()),
        }
    }

    async fn list_gates(
        &self,
        request: Request<pb::ListGatesRequest>,
    ) -> ApiResult<pb::ListGatesResponse> {
        authorize(&request, Role::Reader, "reading gates")?;
        let read = self
            .read_info(
                request.into_inner().consistency,
                pb::Consistency::Linearizable,
            )
            .await?;
        let applied = self.node.state.read();
        let gates = applied
            .state
            .gates
            .values()
            .filter(|g| !g.deleted)
            .map(|g| gate_state(g, read))
            .collect();
        Ok(Response::new(pb::ListGatesResponse { gates }))
    }

    async fn evaluate(
        &self,
        request: Request<pb::EvaluateRequest>,
    ) -> ApiResult<pb::EvaluateResponse> {
        authorize(&request, Role::Reader, "evaluating a gate")?;
        let request = request.into_inner();
        let key = gate_key("gate", &request.gate)?;
        if request.unit_id.is_empty() || request.unit_id.len() > 256 {
            return Err(ApiError::invalid("unit_id", "must be 1 to 256 bytes").into());
        }
        let cohort = cohort_opt("cohort", &request.cohort)?;
        let read = self
            .read_info(request.consistency, pb::Consistency::Local)
            .await?;
        let applied = self.node.state.read();
        let Some(gate) = applied.state.live_gate(&key) else {
            return Err(ApiError::NotFound(format!("gate {key} has no contract")).into());
        };
        let cohort = gate.evaluated_cohort(cohort).map_err(|e| match e {
            CohortUnresolved::Ambiguous { .. } => ApiError::invalid("cohort", e.to_string()),
            CohortUnresolved::Unknown { .. } => ApiError::NotFound(e.to_string()),
        })?;
        let Some(a) = gate.assign(&cohort, &request.unit_id) else {
            return Err(ApiError::NotFound(format!("gate {key} has no cohort {cohort}")).into());
        };
        Ok(Response::new(pb::EvaluateResponse {
            variant: a.variant.to_owned(),
            treatment: a.treatment,
            bucket: a.bucket,
            exposure: a.exposure,
            kill_switch: gate.kill_switch,
            gate_version: gate.version,
            read: Some(read),
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

    async fn watch(&self, request: Request<pb::WatchRequest>) -> ApiResult<Self::WatchStream> {
        authorize(&request, Role::Reader, "watching gates")?;
        let stream = super::watch::start(self.node.clone(), request.into_inner()).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_decisions(
        &self,
        request: Request<pb::ListDecisionsRequest>,
    ) -> ApiResult<pb::ListDecisionsResponse> {
        authorize(&request, Role::Reader, "reading decisions")?;
        let request = request.into_inner();
        let key = gate_key("gate", &request.gate)?;
        self.read_info(request.consistency, pb::Consistency::Linearizable)
            .await?;
        let limit = match usize::try_from(request.limit).unwrap_or(MAX_DECISIONS) {
            0 => 100,
            n => n.min(MAX_DECISIONS),
        };
        let applied = self.node.state.read();
        let Some(gate) = applied.state.gates.get(&key) else {
            return Err(ApiError::NotFound(format!("gate {key} has no contract")).into());
        };
        let from = gate
            .decisions
            .partition_point(|d| d.version <= request.after_version);
        let decisions = gate.decisions[from..]
            .iter()
            .take(limit)
            .map(decision)
            .collect();
        Ok(Response::new(pb::ListDecisionsResponse { decisions }))
    }

    async fn list_windows(
        &self,
        request: Request<pb::ListWindowsRequest>,
    ) -> ApiResult<pb::ListWindowsResponse> {
        authorize(&request, Role::Reader, "reading windows")?;
        let request = request.into_inner();
        let key = gate_key("gate", &request.gate)?;
        let cohort = cohort_opt("cohort", &request.cohort)?;
        let metric = metric_opt("metric", &request.metric)?;
        let read = self
            .read_info(request.consistency, pb::Consistency::Linearizable)
            .await?;
        let applied = self.node.state.read();
        let Some(gate) = applied.state.gates.get(&key) else {
            return Err(ApiError::NotFound(format!("gate {key} has no contract")).into());
        };
        if let Some(c) = cohort.as_ref().filter(|c| !gate.cohorts.contains_key(*c)) {
            return Err(ApiError::NotFound(format!("gate {key} has no cohort {c}")).into());
        }
        if let Some(m) = metric
            .as_ref()
            .filter(|m| gate.contract.metric(m).is_none())
        {
            return Err(ApiError::NotFound(format!("gate {key} has no metric {m}")).into());
        }
        let since = request.since.as_ref().map(millis);
        Ok(Response::new(pb::ListWindowsResponse {
            windows: window_aggregates(gate, cohort.as_ref(), metric.as_ref(), since),
            gate_version: gate.version,
            read: Some(read),
        }))
    }
}
