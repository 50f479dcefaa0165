use anyhow::Result;
use clap::Args;
use tensorgrid_client::instructions;

use super::{preflight::Action, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
    units::sol,
};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid job cancel 3")]
pub struct CancelArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// The job: its address, or your job id.
    job: JobRef,
}

pub async fn run(a: CancelArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let signer = ctx.keypair()?;
    let (address, job) = a
        .job
        .load_for(&ctx, None, Action::Cancel, &signer.pubkey())
        .await?;
    ctx.confirm(&format!(
        "Cancel job {address} and take back {} SOL?",
        sol(job.reward)
    ))?;
    let ix = instructions::job_cancel(signer.pubkey(), address);
    let sent = tx::send(&ctx, &[ix], &signer, "job cancelled")
        .await?
        .with("job", address);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
