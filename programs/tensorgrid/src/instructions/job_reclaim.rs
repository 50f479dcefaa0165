use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::JobReclaimed,
    state::{bps_of, checked_add, checked_sub, move_lamports, Job, JobState, Market, Worker},
};

/// Permissionless crank: after a missed deadline, slash the worker and reopen the job.
#[event_cpi]
#[derive(Accounts)]
pub struct JobReclaim<'info> {
    /// Whoever cranks; receives the bounty share of the slash.
    #[account(mut)]
    pub cranker: Signer<'info>,
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    #[account(
        mut, has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    #[account(
        mut,
        has_one = market @ TensorgridError::MarketMismatch,
        has_one = poster @ TensorgridError::RecipientMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
    /// CHECK: the job's poster (checked by `has_one`); receives the rest of the slash.
    #[account(mut)]
    pub poster: UncheckedAccount<'info>,
}

impl JobReclaim<'_> {
    fn validate(&self) -> Result<()> {
        require!(
            self.job.state == JobState::Claimed,
            TensorgridError::JobNotClaimed
        );
        require!(
            self.job.worker == Some(self.worker.key()),
            TensorgridError::NotAssignedWorker
        );
        require!(
            Clock::get()?.unix_timestamp > self.job.deadline,
            TensorgridError::DeadlineNotReached
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let params = ctx.accounts.market.params;
        let slashed = bps_of(ctx.accounts.worker.stake, params.slash_bps)?;
        let bounty = bps_of(slashed, params.crank_bounty_bps)?;
        let to_poster = checked_sub(slashed, bounty)?;
        let worker_info = ctx.accounts.worker.to_account_info();
        move_lamports(&worker_info, &ctx.accounts.cranker, bounty)?;
        move_lamports(&worker_info, &ctx.accounts.poster, to_poster)?;
        let worker = &mut ctx.accounts.worker;
        worker.take_stake(slashed)?;
        worker.active_job = None;
        worker.jobs_slashed = checked_add(worker.jobs_slashed, 1)?;
        worker.invariant(&worker_info)?;
        let job = &mut ctx.accounts.job;
        job.reopen();
        job.invariant(&job.to_account_info())?;
        emit_cpi!(JobReclaimed {
            job: job.key(),
            job_id: job.job_id,
            worker: worker.key(),
            cranker: ctx.accounts.cranker.key(),
            to_poster,
            bounty,
        });
        Ok(())
    }
}
