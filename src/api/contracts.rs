//! Contracts: put (validated, a new version in the log), get, list, delete; backtest (see
//! `backtest`).

use tonic::{Request, Response, Status};

use super::convert::gate_key;
use super::error::{ApiError, ApiResult};
use super::{Api, MAX_CONTRACT_BYTES};
use crate::auth::{authorize, Role};
use crate::engine::Contract;
use crate::node::NodeError;
use crate::proto::v1 as pb;
use crate::proto::v1::contracts_server::Contracts;
use crate::state::{Command, Gate, Response as SmResponse};

fn info(g: &Gate) -> Result<pb::ContractInfo, Status> {
    let yaml = serde_yaml::to_string(&g.contract).map_err(|e| Status::internal(e.to_string()))?;
    Ok(pb::ContractInfo {
        gate: g.key.to_string(),
        contract_version: g.contract_version,
        yaml,
        description: g.contract.description.clone(),
        owner: g.contract.owner.clone(),
    })
}

#[tonic::async_trait]
impl Contracts for Api {
    async fn backtest(
        &self,
        request: Request<pb::BacktestRequest>,
    ) -> ApiResult<pb::BacktestResponse> {
        super::backtest::backtest(request).await
    }

    #[tracing::instrument(skip_all)]
    async fn put_contract(
        &self,
        request: Request<pb::PutContractRequest>,
    ) -> ApiResult<pb::PutContractResponse> {
        authorize(&request, Role::Operator, "changing a contract")?;
        let pb::PutContractRequest { yaml, if_changed } = request.into_inner();
        if yaml.len() > MAX_CONTRACT_BYTES {
            return Err(ApiError::invalid(
                "yaml",
                format!("{} bytes; at most {MAX_CONTRACT_BYTES}", yaml.len()),
            )
            .into());
        }
        let contract =
            Contract::from_yaml(&yaml).map_err(|e| ApiError::invalid("contract", e.to_string()))?;
        let gate = contract.gate.to_string();
        if if_changed {
            // Checked against the state a linearizable read sees; a put racing this one from
            // another client may land in between, as it could land just after.
            self.node.read_barrier().await.map_err(ApiError::from)?;
            let applied = self.node.state.read();
            if let Some(g) = applied.state.live_gate(&contract.gate) {
                if g.contract == contract {
                    return Ok(Response::new(pb::PutContractResponse {
                        gate,
                        contract_version: g.contract_version,
                        gate_version: g.version,
                        unchanged: true,
                    }));
                }
            }
        }
        let written = self
            .node
            .write(Command::PutContract {
                contract: Box::new(contract),
            })
            .await
            .map_err(ApiError::from)?;
        match written.response {
            SmResponse::ContractPut {
                contract_version,
                gate_version,
            } => Ok(Response::new(pb::PutContractResponse {
                gate,
                contract_version,
                gate_version,
                unchanged: false,
            })),
            other => Err(Status::internal(format!("unexpected response {other:?}"))),
        }
    }

    async fn get_contract(
        &self,
        request: Request<pb::GetContractRequest>,
    ) -> ApiResult<pb::ContractInfo> {
        authorize(&request, Role::Reader, "reading contracts")?;
        let request = request.into_inner();
        let key = gate_key("gate", &request.gate)?;
        self.read_info(request.consistency, pb::Consistency::Linearizable)
            .await?;
        let applied = self.node.state.read();
        match applied.state.live_gate(&key) {
            Some(g) => Ok(Response::new(info(g)?)),
            None => Err(ApiError::NotFound(format!("gate {key} has no contract")).into()),
        }
    }

    async fn list_contracts(
        &self,
        request: Request<pb::ListContractsRequest>,
    ) -> ApiResult<pb::ListContractsResponse> {
        authorize(&request, Role::Reader, "reading contracts")?;
        self.read_info(
            request.into_inner().consistency,
            pb::Consistency::Linearizable,
        )
        .await?;
        let applied = self.node.state.read();
        let contracts = applied
            .state
            .gates
            .values()
            .filter(|g| !g.deleted)
            .map(info)
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListContractsResponse { contracts }))
    }

    async fn delete_contract(
        &self,
        request: Request<pb::DeleteContractRequest>,
    ) -> ApiResult<pb::DeleteContractResponse> {
        authorize(&request, Role::Operator, "deleting a contract")?;
        let gate = gate_key("gate", &request.into_inner().gate)?;
        let written = self
            .node
            .write(Command::DeleteContract { gate })
            .await
            .map_err(ApiError::from)?;
        match written.response {
            SmResponse::ContractDeleted { gate_version } => {
                Ok(Response::new(pb::DeleteContractResponse { gate_version }))
            }
            SmResponse::Refused(e) => Err(ApiError::from(NodeError::Refused(e)).into()),
            other => Err(Status::internal(format!("unexpected response {other:?}"))),
        }
    }
}
