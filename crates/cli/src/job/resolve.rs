use anyhow::Result;
use clap::{Args, ValueEnum};
use tensorgrid_client::instructions::{self, SettleKeys};

use super::{preflight::Action, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Ruling {
    /// The result stands: the worker is paid.
    Worker,
    /// The result is rejected: the poster is refunded and the worker slashed.
    Poster,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid job resolve 9xQe…Lk2m --for worker\n  tensorgrid job resolve 3 --poster 7xKX…3fQe --for poster"
)]
pub struct ResolveArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// The disputed job's address.
    job: JobRef,
    /// Who the ruling is for.
    #[arg(long = "for", value_enum)]
    ruling: Ruling,
    /// The poster, when the job is given by id.
    #[arg(long, value_parser = crate::chain_args::address)]
    poster: Option<tensorgrid_client::anchor_lang::prelude::Pubkey>,
}

pub async fn run(a: ResolveArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let authority = ctx.keypair()?;
    let (address, job) = a
        .job
        .load_for(&ctx, a.poster, Action::Resolve, &authority.pubkey())
        .await?;
    let worker_wins = matches!(a.ruling, Ruling::Worker);
    ctx.confirm(&format!(
        "Rule job {address} for the {}?",
        if worker_wins {
            "worker (pay it)"
        } else {
            "poster (refund, slash the worker)"
        }
    ))?;
    let ix = instructions::job_resolve(
        authority.pubkey(),
        SettleKeys {
            market: job.market,
            worker: job.worker,
            job: address,
            poster: job.poster,
        },
        worker_wins,
    );
    let sent = tx::send(&ctx, &[ix], &authority, "dispute resolved")
        .await?
        .with("job", address);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
