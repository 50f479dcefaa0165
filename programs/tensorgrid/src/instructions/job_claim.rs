use anchor_lang::prelude::*;

use crate::{
    errors::TensorgridError,
    events::JobClaimed,
    state::{checked_add_i64, Job, JobState, Market, Worker},
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobClaim<'info> {
    pub operator: Signer<'info>,
    pub market: Account<'info, Market>,
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        has_one = market @ TensorgridError::MarketMismatch,
    )]
    pub worker: Account<'info, Worker>,
    #[account(mut, has_one = market @ TensorgridError::MarketMismatch)]
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
