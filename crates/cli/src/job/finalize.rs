//! `job finalize`: pays a submitted job whose challenge window passed; on a dispute, draws its
//! verifiers, settles their vote once it is over, or applies the default to one the authority
//! did not rule on in time. Anyone may; `--all` sweeps the market.

use std::collections::HashMap;

use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self, Instruction, SettleKeys},
    rpc::{Draw, JobQuery},
    state::{DisputePhase, Job, JobState, VoteState},
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

/// What settles `job` next at chain time `now`: finalize, the dispute's draw, the settlement
/// of its vote, or the timeout; `Err` says why nothing is due.
async fn settle_ix(ctx: &Ctx, address: &Pubkey, job: &Job, now: i64) -> Result<Instruction> {
    let keys = SettleKeys::for_job(*address, job);
    if job.state != JobState::Disputed {
        return Ok(instructions::job_finalize(keys));
    }
    if job.dispute_ends_at > 0 {
        return Ok(instructions::job_dispute_timeout(keys));
    }
    let Some(d) = ctx.chain.dispute_of(address).await? else {
        bail!("job {address} is disputed but its dispute account is gone");
    };
    match d.phase {
        DisputePhase::Drawing => match ctx.chain.draw(address).await? {
            Draw::Ready(ix) => Ok(ix),
            Draw::TooEarly => {
                bail!("no slot after the dispute's has a hash yet: try again in a second")
            }
            Draw::Done => bail!("the verifiers of job {address} are already drawn"),
        },
        DisputePhase::Voting => {
            let all = d.seats.iter().all(|s| s.vote == VoteState::Revealed);
            if !all && now <= d.reveal_ends_at {
                bail!(
                    "the verifiers of job {address} vote until {}",
                    crate::units::when(d.reveal_ends_at, now)
                );
            }
            Ok(instructions::dispute_settle(
                keys,
                d.seats.map(|s| s.worker),
            ))
        }
        DisputePhase::Escalated => Ok(instructions::job_dispute_timeout(keys)),
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
        // Each one's instruction read now (a dispute's depends on its phase); one not due is
        // left out.
        let mut ixs: HashMap<Pubkey, Instruction> = HashMap::new();
        for (address, job) in &due {
            if let Ok(ix) = settle_ix(&ctx, address, job, now).await {
                ixs.insert(*address, ix);
            }
        }
        due.retain(|(a, _)| ixs.contains_key(a));
        ctx.confirm(&format!("Settle {} job(s)?", due.len()))?;
        let report = crank::sweep(&ctx, &signer, "finalize", due, |a, _| ixs[a].clone()).await;
        ctx.out.emit(&report)?;
        return Ok(exit(report.failed.is_empty()));
    }
    let job_ref = a.target.job.expect("clap requires a job without --all");
    let (address, job) = job_ref
        .load_for(&ctx, None, Action::Finalize, &signer.pubkey())
        .await?;
    ctx.confirm(&format!("Settle job {address}?"))?;
    let ix = settle_ix(&ctx, &address, &job, now).await?;
    let sent = tx::send(&ctx, &[ix], &signer, "job settled")
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
