use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::JobReclaimed,
    state::{checked_add, move_lamports, Job, JobState, Worker},
};

/// Permissionless crank: after a missed deadline, slash the job's collateral (the bounty to the
/// cranker, the rest into the escrow for the poster) and reopen the job. The worker that missed
/// the deadline may not claim it again.
#[event_cpi]
#[derive(Accounts)]
pub struct JobReclaim<'info> {
    /// Whoever cranks; receives the bounty share of the slash.
    #[account(mut)]
    pub cranker: Signer<'info>,
    /// The worker that missed the deadline.
    #[account(
        mut,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The claimed job past its deadline; reopens.
    #[account(
        mut,
        constraint = job.market == worker.market @ TensorgridError::MarketMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobReclaim<'_> {
    fn validate(&self) -> Result<()> {
        let job = &self.job;
        job.require_state(JobState::Claimed)?;
        job.require_assigned(&self.worker.key())?;
        ensure!(
            Clock::get()?.unix_timestamp > job.deadline,
            TensorgridError::DeadlineNotReached
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let split = ctx
            .accounts
            .job
            .terms
            .reclaim_split(ctx.accounts.job.collateral)?;
        let worker_info = ctx.accounts.worker.to_account_info();
        let job_info = ctx.accounts.job.to_account_info();
        move_lamports(&worker_info, &ctx.accounts.cranker, split.bounty)?;
        move_lamports(&worker_info, &job_info, split.to_poster)?;
        let worker = &mut ctx.accounts.worker;
        worker.record_missed_deadline(checked_add(split.bounty, split.to_poster)?)?;
        worker.invariant(&worker_info)?;
        let job = &mut ctx.accounts.job;
        job.reopen(split.to_poster, Clock::get()?.unix_timestamp)?;
        job.invariant(&job_info)?;
        emit_event!(
            ctx,
            JobReclaimed {
                job: job.key(),
                job_id: job.job_id,
                worker: worker.key(),
                cranker: ctx.accounts.cranker.key(),
                to_poster: split.to_poster,
                bounty: split.bounty,
            }
        );
        Ok(())
    }
}
