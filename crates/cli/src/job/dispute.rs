use anyhow::Result;
use clap::Args;
use tensorgrid_client::instructions;

use super::{preflight::Action, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid job dispute 3")]
pub struct DisputeArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// The job: its address, or your job id.
    job: JobRef,
}

pub async fn run(a: DisputeArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let signer = ctx.keypair()?;
    let (address, _) = a
        .job
        .load_for(&ctx, None, Action::Dispute, &signer.pubkey())
        .await?;
    ctx.confirm(&format!(
        "Dispute the result of job {address}? The market authority will rule."
    ))?;
    let ix = instructions::job_dispute(signer.pubkey(), address);
    let sent = tx::send(&ctx, &[ix], &signer, "result disputed")
        .await?
        .with("job", address)
        .next(format!("the market authority rules with `tensorgrid job resolve {address} --for worker|poster`"));
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
