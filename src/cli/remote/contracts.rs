//! `rampart contract apply|get|list|delete`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::cli::client::{connect, repeatable, status_error, Target};
use crate::cli::table::Output;
use crate::proto::v1 as pb;
use crate::proto::v1::contracts_client::ContractsClient;

#[derive(Debug, Subcommand)]
pub enum ContractCmd {
    /// Apply (create or update) a contract from a YAML file.
    Apply {
        #[arg(short = 'f', long = "file", value_parser = crate::cli::existing_file)]
        file: PathBuf,
        /// Write nothing when the contract equals the gate's current one (a pipeline can
        /// apply on every run without a new contract version each time).
        #[arg(long)]
        if_changed: bool,
    },
    /// Show a gate's contract.
    Get { gate: String },
    /// List contracts.
    List,
    /// Delete a gate's contract (its decision log stays).
    Delete { gate: String },
}

pub async fn contract(target: &Target, out: Output, cmd: ContractCmd) -> anyhow::Result<()> {
    let mut client = ContractsClient::new(connect(target).await?);
    match cmd {
        ContractCmd::Apply { file, if_changed } => {
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let reply = client
                .put_contract(pb::PutContractRequest { yaml, if_changed })
                .await
                .map_err(status_error)?
                .into_inner();
            let row = vec![
                reply.gate.clone(),
                reply.contract_version.to_string(),
                reply.gate_version.to_string(),
                if reply.unchanged {
                    "unchanged"
                } else {
                    "applied"
                }
                .to_string(),
            ];
            out.print(&serde_json::json!({"gate": reply.gate, "contract_version": reply.contract_version, "gate_version": reply.gate_version, "unchanged": reply.unchanged}),
                &["GATE", "CONTRACT VERSION", "GATE VERSION", "RESULT"], vec![row]);
        }
        ContractCmd::Get { gate } => {
            let reply = repeatable(
                &client,
                pb::GetContractRequest {
                    gate: gate.clone(),
                    consistency: 0,
                },
                |mut c, r| async move { c.get_contract(r).await },
            )
            .await?;
            if out.json {
                outln!(
                    "{}",
                    serde_json::json!({"gate": reply.gate, "contract_version": reply.contract_version, "yaml": reply.yaml})
                );
            } else {
                outln!(
                    "# {} contract version {}\n{}",
                    reply.gate,
                    reply.contract_version,
                    reply.yaml
                );
            }
        }
        ContractCmd::List => {
            let reply = repeatable(
                &client,
                pb::ListContractsRequest { consistency: 0 },
                |mut c, r| async move { c.list_contracts(r).await },
            )
            .await?;
            let rows = reply
                .contracts
                .iter()
                .map(|c| {
                    vec![
                        c.gate.clone(),
                        c.contract_version.to_string(),
                        c.owner.clone(),
                        c.description.clone(),
                    ]
                })
                .collect();
            let json: Vec<_> = reply.contracts.iter().map(|c| serde_json::json!({"gate": c.gate, "contract_version": c.contract_version, "owner": c.owner, "description": c.description})).collect();
            out.print(&json, &["GATE", "VERSION", "OWNER", "DESCRIPTION"], rows);
        }
        ContractCmd::Delete { gate } => {
            let reply = client
                .delete_contract(pb::DeleteContractRequest { gate: gate.clone() })
                .await
                .map_err(status_error)?
                .into_inner();
            out.print(
                &serde_json::json!({"gate": gate, "gate_version": reply.gate_version}),
                &["GATE", "DELETED AT VERSION"],
                vec![vec![gate, reply.gate_version.to_string()]],
            );
        }
    }
    Ok(())
}
