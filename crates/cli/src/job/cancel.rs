use anyhow::Result;
use clap::Args;
use tensorgrid_client::{instructions, Currency};

use super::{preflight::Action, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
    units::Unit,
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
    let market = ctx.market_of(&job).await?;
    let (unit, currency) = (Unit::of(&market), Currency::of(&market));
    let back = job.reward.saturating_add(job.compensation);
    ctx.confirm(&format!(
        "Cancel job {address} and take back {}?",
        unit.show(back)
    ))?;
    let me = signer.pubkey();
    let ixs = match currency {
        Currency::Sol => vec![instructions::job_cancel(me, address)],
        // A token market credits the reward and compensation to the poster account; the same
        // transaction withdraws exactly them to the poster's token account (created if it does
        // not exist). Refunds credited before stay for `job refunds --withdraw`: read here,
        // they could be stale by the time this lands.
        Currency::Token { .. } => {
            let mut ixs: Vec<_> = currency
                .ensure_token_account(&me, &me)
                .into_iter()
                .collect();
            ixs.push(instructions::job_cancel_in(
                &currency, me, job.market, address,
            ));
            ixs.push(instructions::poster_withdraw(
                &currency, me, job.market, back,
            ));
            ixs
        }
    };
    let sent = tx::send(&ctx, &ixs, &signer, "job cancelled")
        .await?
        .with("job", address);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
