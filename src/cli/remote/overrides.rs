//! `rampart override hold|resume|approve|rollback|kill|set-exposure`: sent once (an override
//! has no idempotency key, so a retry could apply it twice).

use clap::{Args, ValueEnum};

use super::gates::{decision_row, DECISION_HEADERS};
use crate::api::view;
use crate::cli::client::{connect, status_error, Target};
use crate::cli::table::Output;
use crate::proto::v1 as pb;
use crate::proto::v1::overrides_client::OverridesClient;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverrideKind {
    Hold,
    Resume,
    Approve,
    Rollback,
    Kill,
    SetExposure,
}

#[derive(Debug, Args)]
pub struct OverrideArgs {
    pub kind: OverrideKind,
    pub gate: String,
    /// One cohort (default: every cohort).
    #[arg(long, default_value = "")]
    pub cohort: String,
    /// For set-exposure: the percentage.
    #[arg(long)]
    pub exposure: Option<f64>,
    /// Who decides.
    #[arg(long, env = "USER")]
    pub actor: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
}

pub async fn override_gate(target: &Target, out: Output, args: OverrideArgs) -> anyhow::Result<()> {
    let kind = match args.kind {
        OverrideKind::Hold => pb::OverrideKind::Hold,
        OverrideKind::Resume => pb::OverrideKind::Resume,
        OverrideKind::Approve => pb::OverrideKind::Approve,
        OverrideKind::Rollback => pb::OverrideKind::Rollback,
        OverrideKind::Kill => pb::OverrideKind::Kill,
        OverrideKind::SetExposure => pb::OverrideKind::SetExposure,
    };
    if matches!(args.kind, OverrideKind::SetExposure) && args.exposure.is_none() {
        anyhow::bail!("set-exposure needs --exposure PERCENT");
    }
    let mut client = OverridesClient::new(connect(target).await?);
    let d = client
        .r#override(pb::OverrideRequest {
            gate: args.gate,
            cohort: args.cohort,
            kind: kind as i32,
            exposure: args.exposure.unwrap_or(0.0),
            actor: args.actor,
            reason: args.reason,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    out.print(
        &view::decision(&d),
        &DECISION_HEADERS,
        vec![decision_row(&d)],
    );
    Ok(())
}
