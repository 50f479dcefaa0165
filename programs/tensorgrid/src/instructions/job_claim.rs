use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::JobClaimed,
    state::{Job, JobOffer, Market, Worker},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct JobClaimArgs {
    /// The job as the worker read it and agrees to take it: reward, spec hash, requirements,
    /// duration and money terms (the job account's own values). Any difference when the
    /// claim lands refuses it (`OfferChanged`).
    pub expected: JobOffer,
}

#[event_cpi]
#[derive(Accounts)]
pub struct JobClaim<'info> {
    /// The worker's operator.
    pub operator: Signer<'info>,
    /// The job's market (paused? minimum stake).
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// The claiming worker.
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The open job to claim.
    #[account(
        mut,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobClaim<'_> {
    fn validate(&self, args: &JobClaimArgs) -> Result<()> {
        ensure!(!self.market.paused, TensorgridError::MarketPaused);
        self.job.require_offer(&args.expected)?;
        self.job
            .require_claimable_by(&self.worker.key(), Clock::get()?.unix_timestamp)?;
        let worker = &self.worker;
        worker.require_registered()?;
        worker.require_idle()?;
        let collateral = self.job.terms.collateral(self.job.reward)?;
        ensure!(
            worker.stake >= self.market.params.min_stake && worker.free_stake() >= collateral,
            TensorgridError::InsufficientStake
        );
        self.job.requirements.check(&worker.hardware)
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: JobClaimArgs) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let worker_key = ctx.accounts.worker.key();
        let job = &mut ctx.accounts.job;
        let collateral = job.terms.collateral(job.reward)?;
        job.claim(worker_key, collateral, now)?;
        ctx.accounts.worker.start_job(job.key(), collateral);
        job.invariant(&job.to_account_info())?;
        emit_event!(
            ctx,
            JobClaimed {
                job: job.key(),
                job_id: job.job_id,
                worker: worker_key,
                collateral,
                deadline: job.deadline,
            }
        );
        Ok(())
    }
}
