use anyhow::Result;
use clap::Args;
use tensorgrid_client::instructions::{self, SettleKeys};

use super::{preflight::Action, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
    units::money,
};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid job accept 3")]
pub struct AcceptArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// The job: its address, or your job id.
    job: JobRef,
}

pub async fn run(a: AcceptArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let signer = ctx.keypair()?;
    let (address, job) = a
        .job
        .load_for(&ctx, None, Action::Accept, &signer.pubkey())
        .await?;
    ctx.confirm(&format!(
        "Accept the result of job {address} and pay {}?",
        money(job.reward)
    ))?;
    let ix = instructions::job_accept(SettleKeys {
        market: job.market,
        worker: job.worker,
        job: address,
        poster: signer.pubkey(),
    });
    let sent = tx::send(&ctx, &[ix], &signer, "result accepted, worker paid")
        .await?
        .with("job", address);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
