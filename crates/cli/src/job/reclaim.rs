//! `job reclaim`: reopens a claimed job whose worker missed the deadline; the worker is
//! slashed, the poster compensated and the caller paid a bounty. `--all` sweeps the market.

use anyhow::Result;
use clap::Args;
use tensorgrid_client::instructions;

use super::{crank, finalize::exit, preflight::Action};
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid job reclaim 9xQe…Lk2m\n  tensorgrid job reclaim --all          # every job past its deadline, for the bounties"
)]
pub struct ReclaimArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    #[command(flatten)]
    target: crank::Target,
}

pub async fn run(a: ReclaimArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let signer = ctx.keypair()?;
    let cranker = signer.pubkey();
    let now = ctx.chain.chain_time().await?;
    if a.target.all {
        let (market, market_state) = ctx.market().await?;
        let currency = tensorgrid_client::Currency::of(&market_state);
        let due = ctx
            .chain
            .jobs_past_deadline(market, now)
            .await?
            .into_iter()
            .map(|e| (e.pubkey, e.job))
            .collect::<Vec<_>>();
        ctx.confirm(&format!("Reclaim {} job(s)?", due.len()))?;
        // In a token market the bounties go to the cranker's token account: created first
        // when it does not exist.
        if let (Some(account), false) = (currency.token_account(&cranker), due.is_empty()) {
            if ctx.chain.account(&account).await?.is_none() {
                if let Some(ix) = currency.ensure_token_account(&cranker, &cranker) {
                    tx::send(&ctx, &[ix], &signer, "token account created").await?;
                }
            }
        }
        let report = crank::sweep(&ctx, &signer, "reclaim", due, |address, job| {
            instructions::job_reclaim_in(&currency, cranker, market, job.worker, *address)
        })
        .await;
        ctx.out.emit(&report)?;
        return Ok(exit(report.failed.is_empty()));
    }
    let job_ref = a.target.job.expect("clap requires a job without --all");
    let (address, job) = job_ref
        .load_for(&ctx, None, Action::Reclaim, &cranker)
        .await?;
    ctx.confirm(&format!("Reclaim job {address} from its worker?"))?;
    let currency = tensorgrid_client::Currency::of(&ctx.market_of(&job).await?);
    let mut ixs: Vec<_> = currency
        .ensure_token_account(&cranker, &cranker)
        .into_iter()
        .collect();
    ixs.push(instructions::job_reclaim_in(
        &currency, cranker, job.market, job.worker, address,
    ));
    let sent = tx::send(&ctx, &ixs, &signer, "job reclaimed")
        .await?
        .with("job", address);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
