//! `job finalize`: pays a submitted job whose challenge window passed, or applies the default
//! to a dispute the authority did not rule on in time. Anyone may; `--all` sweeps the market.

use anyhow::Result;
use clap::Args;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self, Instruction, SettleKeys},
    rpc::JobQuery,
    state::{Job, JobState},
};

use super::{crank, preflight::Action};
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid job finalize 9xQe…Lk2m\n  tensorgrid job finalize --all         # every job due in the market"
)]
pub struct FinalizeArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    #[command(flatten)]
    target: crank::Target,
}

fn settle_ix(address: &Pubkey, job: &Job) -> Instruction {
    let keys = SettleKeys {
        market: job.market,
        worker: job.worker,
        job: *address,
        poster: job.poster,
    };
    if job.state == JobState::Disputed {
        instructions::job_dispute_timeout(keys)
    } else {
        instructions::job_finalize(keys)
    }
}

pub async fn run(a: FinalizeArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let signer = ctx.keypair()?;
    let now = ctx.chain.chain_time().await?;
    if a.target.all {
        let (market, _) = ctx.market().await?;
        let mut due: Vec<(Pubkey, Job)> = ctx
            .chain
            .jobs_past_challenge(market, now)
            .await?
            .into_iter()
            .map(|e| (e.pubkey, e.job))
            .collect();
        let disputed = ctx
            .chain
            .jobs(&JobQuery::in_state(market, JobState::Disputed))
            .await?;
        due.extend(
            disputed
                .into_iter()
                .filter(|e| e.job.dispute_ends_at < now)
                .map(|e| (e.pubkey, e.job)),
        );
        ctx.confirm(&format!("Settle {} job(s)?", due.len()))?;
        let report = crank::sweep(&ctx, &signer, "finalize", due, settle_ix).await;
        ctx.out.emit(&report)?;
        return Ok(exit(report.failed.is_empty()));
    }
    let job_ref = a.target.job.expect("clap requires a job without --all");
    let (address, job) = job_ref
        .load_for(&ctx, None, Action::Finalize, &signer.pubkey())
        .await?;
    ctx.confirm(&format!("Settle job {address}?"))?;
    let sent = tx::send(&ctx, &[settle_ix(&address, &job)], &signer, "job settled")
        .await?
        .with("job", address);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn exit(ok: bool) -> std::process::ExitCode {
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
