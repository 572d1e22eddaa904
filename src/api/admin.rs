//! Cluster administration over gRPC: init, add learner, promote, remove, status, backup and
//! restore (`api::backup`).

use std::collections::BTreeMap;

use tonic::{Request, Response};

use super::error::{ApiError, ApiResult};
use super::Api;
use crate::auth::{authorize, Role};
use crate::node::admin::{AdminCommand, ClusterView};
use crate::proto::v1 as pb;
use crate::proto::v1::admin_server::Admin;

fn view(v: ClusterView) -> pb::ClusterStatus {
    pb::ClusterStatus {
        leader_id: v.leader,
        term: v.term,
        voters: v.voters,
        learners: v.learners,
        nodes: v
            .nodes
            .into_iter()
            .map(|n| pb::NodeStatus {
                id: n.id,
                addr: n.addr,
                role: n.role,
                reachable: n.reachable,
                term: n.term,
                last_log_index: n.last_log_index,
                applied_index: n.applied_index,
                matched_index: n.matched_index,
                lag: n.lag,
                clock_offset_ms: n.clock_offset_ms,
                clock_skew_ms: n.clock_skew_ms,
            })
            .collect(),
        joint: v.joint,
        answered_by: v.answered_by,
        cluster_time_ms: v.cluster_time_ms,
        clock_skew: v.clock_skew,
        time_limit: v.time_limit,
        max_clock_skew_ms: v.max_clock_skew_ms,
    }
}

impl Api {
    /// The status after a change: read barrier first, so a follower shows the change too.
    async fn status_after_change(&self) -> Result<pb::ClusterStatus, ApiError> {
        self.node.read_barrier().await?;
        Ok(view(self.node.status().await))
    }
}

/// A member of a membership request: its id and address; errors name the field.
pub fn member(field: &str, m: Option<&pb::Member>) -> Result<(u64, String), ApiError> {
    let m = m.ok_or_else(|| ApiError::invalid(field, "is required"))?;
    if m.id == 0 {
        return Err(ApiError::invalid(
            format!("{field}.id"),
            "must be a positive integer",
        ));
    }
    if m.addr.trim().is_empty() {
        return Err(ApiError::invalid(
            format!("{field}.addr"),
            "must be host:port",
        ));
    }
    Ok((m.id, m.addr.trim().to_owned()))
}

#[tonic::async_trait]
impl Admin for Api {
    async fn init(&self, request: Request<pb::InitRequest>) -> ApiResult<pb::ClusterStatus> {
        authorize(&request, Role::Admin, "initialising the cluster")?;
        let mut members = BTreeMap::new();
        for (i, m) in request.into_inner().members.iter().enumerate() {
            let (id, addr) = member(&format!("members[{i}]"), Some(m))?;
            if members.insert(id, addr).is_some() {
                return Err(ApiError::invalid(
                    format!("members[{i}].id"),
                    format!("{id} is listed twice"),
                )
                .into());
            }
        }
        self.node.init(members).await.map_err(ApiError::from)?;
        Ok(Response::new(self.status_after_change().await?))
    }

    async fn add_learner(
        &self,
        request: Request<pb::AddLearnerRequest>,
    ) -> ApiResult<pb::ClusterStatus> {
        authorize(&request, Role::Admin, "changing membership")?;
        let (id, addr) = member("member", request.into_inner().member.as_ref())?;
        self.node
            .admin(AdminCommand::AddLearner { id, addr })
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(self.status_after_change().await?))
    }

    async fn promote(&self, request: Request<pb::PromoteRequest>) -> ApiResult<pb::ClusterStatus> {
        authorize(&request, Role::Admin, "changing membership")?;
        let id = request.into_inner().id;
        self.node
            .admin(AdminCommand::Promote { id })
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(self.status_after_change().await?))
    }

    async fn remove(&self, request: Request<pb::RemoveRequest>) -> ApiResult<pb::ClusterStatus> {
        authorize(&request, Role::Admin, "changing membership")?;
        let id = request.into_inner().id;
        self.node
            .admin(AdminCommand::Remove { id })
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(self.status_after_change().await?))
    }

    async fn status(&self, request: Request<pb::StatusRequest>) -> ApiResult<pb::ClusterStatus> {
        authorize(&request, Role::Reader, "reading cluster status")?;
        Ok(Response::new(view(self.node.status().await)))
    }

    type BackupStream = super::backup::BackupStream;

    async fn backup(&self, request: Request<pb::BackupRequest>) -> ApiResult<Self::BackupStream> {
        authorize(&request, Role::Admin, "taking a backup")?;
        super::backup::backup(&self.node).await
    }

    type RestoreStream = super::backup::RestoreStream;

    async fn restore(
        &self,
        request: Request<tonic::Streaming<pb::BackupChunk>>,
    ) -> ApiResult<Self::RestoreStream> {
        authorize(&request, Role::Admin, "restoring a backup")?;
        super::backup::restore(self.node.clone(), request).await
    }
}
