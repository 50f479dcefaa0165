use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::JobAbandoned,
    state::{shift, Job, JobState, Worker},
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobAbandon<'info> {
    /// The worker's operator.
    pub operator: Signer<'info>,
    /// The worker giving the job back; pays the abandon penalty from its stake.
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The claimed job; reopens, with the penalty added to its escrow for the poster.
    #[account(
        mut,
        constraint = job.market == worker.market @ TensorgridError::MarketMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobAbandon<'_> {
    fn validate(&self) -> Result<()> {
        self.job.require_state(JobState::Claimed)?;
        self.job.require_assigned(&self.worker.key())?;
        // After the deadline the job is reclaimable, with the larger slash.
        self.job
            .require_before_deadline(Clock::get()?.unix_timestamp)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let penalty = ctx
            .accounts
            .job
            .terms
            .abandon_penalty(ctx.accounts.job.collateral)?;
        let worker_info = ctx.accounts.worker.to_account_info();
        let job_info = ctx.accounts.job.to_account_info();
        let unit = ctx.accounts.job.unit();
        shift(unit, &worker_info, &job_info, penalty)?;
        let worker = &mut ctx.accounts.worker;
        worker.record_abandon(penalty)?;
        worker.invariant(&worker_info, unit)?;
        let job = &mut ctx.accounts.job;
        job.reopen(penalty, Clock::get()?.unix_timestamp)?;
        job.invariant(&job_info)?;
        emit_event!(
            ctx,
            JobAbandoned {
                job: job.key(),
                job_id: job.job_id,
                worker: worker.key(),
                penalty,
            }
        );
        Ok(())
    }
}
