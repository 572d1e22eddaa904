//! Signal ingestion: batches with an idempotency key, acknowledged after quorum commit.
//! Each bad signal is reported by position, field and reason; the good ones in the same batch
//! are kept.

use tonic::{Request, Response, Status, Streaming};

use super::convert;
use super::error::{ApiError, ApiResult};
use super::Api;
use crate::auth::{authorize, Role};
use crate::proto::v1 as pb;
use crate::proto::v1::signals_server::Signals;
use crate::state::{Command, Response as SmResponse};

/// Longest idempotency key.
const MAX_KEY_BYTES: usize = 256;

impl Api {
    /// Validates, replicates and reports one batch, and counts it in the node's metrics.
    pub async fn ingest_batch(
        &self,
        request: pb::IngestRequest,
    ) -> Result<pb::IngestResponse, ApiError> {
        let answer = self.replicate_batch(request).await?;
        let metrics = &self.node.metrics;
        let outcome = if answer.duplicate { "duplicate" } else { "new" };
        metrics
            .ingest_batches
            .get_or_create(&crate::node::metrics::BatchLabels { outcome })
            .inc();
        metrics.signals_answered(
            answer.duplicate,
            u64::from(answer.accepted),
            answer
                .rejected
                .iter()
                .map(|r| (r.field.as_str(), r.reason.as_str())),
        );
        Ok(answer)
    }

    async fn replicate_batch(
        &self,
        request: pb::IngestRequest,
    ) -> Result<pb::IngestResponse, ApiError> {
        let key = request.idempotency_key.trim().to_owned();
        if key.is_empty() {
            return Err(ApiError::invalid(
                "idempotency_key",
                "is required (retries with the same key count once)",
            ));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(ApiError::invalid(
                "idempotency_key",
                format!("is longer than {MAX_KEY_BYTES} bytes"),
            ));
        }
        let max = self.node.config.max_batch_signals;
        if request.signals.is_empty() {
            return Err(ApiError::invalid("signals", "the batch is empty"));
        }
        if request.signals.len() > max {
            return Err(ApiError::invalid(
                "signals",
                format!(
                    "{} signals in one batch; at most {max} (split the batch)",
                    request.signals.len()
                ),
            ));
        }
        let mut good = Vec::with_capacity(request.signals.len());
        let mut positions = Vec::with_capacity(request.signals.len());
        let mut rejected = Vec::new();
        for (i, raw) in request.signals.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            match convert::signal(raw) {
                Ok(signal) => {
                    good.push(signal);
                    positions.push(index);
                }
                Err(e) => rejected.push(pb::Rejection {
                    index,
                    field: format!("signals[{i}].{}", e.field),
                    reason: e.reason,
                }),
            }
        }
        if good.is_empty() {
            return Ok(pb::IngestResponse {
                accepted: 0,
                rejected,
                duplicate: false,
                log_index: 0,
            });
        }
        let written = self
            .node
            .write(Command::Ingest {
                idempotency_key: key,
                signals: good,
            })
            .await?;
        let SmResponse::Ingested(outcome) = written.response else {
            return Err(ApiError::Node(crate::node::NodeError::Unknown(
                "unexpected state machine response".into(),
            )));
        };
        for r in outcome.rejected {
            let index = usize::try_from(r.index)
                .ok()
                .and_then(|i| positions.get(i))
                .copied()
                .unwrap_or(r.index);
            rejected.push(pb::Rejection {
                index,
                field: format!("signals[{index}].{}", r.field),
                reason: r.reason,
            });
        }
        rejected.sort_by_key(|r| r.index);
        Ok(pb::IngestResponse {
            accepted: outcome.accepted,
            rejected,
            duplicate: outcome.duplicate,
            // The entry that first applied the batch; older nodes stored no index.
            log_index: if outcome.log_index > 0 {
                outcome.log_index
            } else {
                written.log_index
            },
        })
    }
}

#[tonic::async_trait]
impl Signals for Api {
    #[tracing::instrument(skip_all, fields(signals = request.get_ref().signals.len()))]
    async fn ingest(&self, request: Request<pb::IngestRequest>) -> ApiResult<pb::IngestResponse> {
        authorize(&request, Role::Ingester, "ingesting signals")?;
        Ok(Response::new(
            self.ingest_batch(request.into_inner()).await?,
        ))
    }

    async fn ingest_stream(
        &self,
        request: Request<Streaming<pb::IngestRequest>>,
    ) -> ApiResult<pb::IngestStreamResponse> {
        authorize(&request, Role::Ingester, "ingesting signals")?;
        let mut stream = request.into_inner();
        let mut summary = pb::IngestStreamResponse::default();
        while let Some(batch) = stream.message().await? {
            let result = self
                .ingest_batch(batch)
                .await
                .map_err(|e| Status::from(e).message().to_owned());
            let result = match result {
                Ok(r) => r,
                Err(message) => {
                    return Err(Status::aborted(format!(
                        "batch {} failed ({message}); the {} batches before it are committed",
                        summary.batches, summary.batches
                    )))
                }
            };
            summary.batches += 1;
            summary.accepted += result.accepted;
            summary.rejected += u32::try_from(result.rejected.len()).unwrap_or(u32::MAX);
            summary.duplicates += u32::from(result.duplicate);
            summary.results.push(result);
        }
        Ok(Response::new(summary))
    }
}
