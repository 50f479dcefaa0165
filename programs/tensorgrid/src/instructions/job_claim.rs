use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::JobClaimed,
    state::{checked_add_i64, Job, JobState, Market, Worker},
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobClaim<'info> {
    pub operator: Signer<'info>,
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    #[account(
        mut, has_one = market @ TensorgridError::MarketMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobClaim<'_> {
    fn validate(&self) -> Result<()> {
        require!(!self.market.paused, TensorgridError::MarketPaused);
        require!(
            self.job.state == JobState::Open,
            TensorgridError::JobNotOpen
        );
        require!(
            self.worker.active_job.is_none(),
            TensorgridError::WorkerHasActiveJob
        );
        require!(
            self.worker.stake >= self.market.params.min_stake,
            TensorgridError::InsufficientStake
        );
        self.job.requirements.check(&self.worker.hardware)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let worker_key = ctx.accounts.worker.key();
        let job = &mut ctx.accounts.job;
        job.state = JobState::Claimed;
        job.worker = Some(worker_key);
        job.claimed_at = now;
        job.deadline = checked_add_i64(now, job.max_duration_s)?;
        ctx.accounts.worker.active_job = Some(job.job_id);
        job.invariant(&job.to_account_info())?;
        emit_cpi!(JobClaimed {
            job: job.key(),
            job_id: job.job_id,
            worker: worker_key,
            deadline: job.deadline,
        });
        Ok(())
    }
}
