use anchor_lang::prelude::*;

use super::settle::refund_without_slash;
use crate::{
    constants::{JOB_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::{JobRefunded, RefundReason},
    state::{Job, JobState, Worker},
};

/// Permissionless crank: a dispute the authority did not resolve within the job's
/// `resolve_window_s` ends with the documented default — the poster is refunded, the worker
/// keeps its stake, no fee is charged.
#[event_cpi]
#[derive(Accounts)]
pub struct JobDisputeTimeout<'info> {
    /// The worker holding the job; released without a slash.
    #[account(
        mut,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The disputed job, closed to the poster.
    #[account(
        mut,
        close = poster,
        has_one = poster @ TensorgridError::RecipientMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
    /// The job's poster; receives reward, compensation and rent.
    /// CHECK: must equal `job.poster` (`has_one`).
    #[account(mut)]
    pub poster: UncheckedAccount<'info>,
}

impl JobDisputeTimeout<'_> {
    fn validate(&self) -> Result<()> {
        let job = &self.job;
        job.require_state(JobState::Disputed)?;
        ensure!(
            Clock::get()?.unix_timestamp > job.dispute_ends_at,
            TensorgridError::DisputeNotExpired
        );
        job.require_assigned(&self.worker.key())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let close = {
            let a = &mut *ctx.accounts;
            refund_without_slash(&mut a.worker, &a.job)?
        };
        let a = &ctx.accounts;
        let event = JobRefunded {
            job: a.job.key(),
            job_id: a.job.job_id,
            worker: a.worker.key(),
            poster: a.poster.key(),
            reason: RefundReason::DisputeExpired,
            reward_refunded: a.job.reward,
            slashed: 0,
            compensation: close.compensation,
            rent_refunded: close.rent_refunded,
        };
        emit_event!(ctx, event);
        Ok(())
    }
}
