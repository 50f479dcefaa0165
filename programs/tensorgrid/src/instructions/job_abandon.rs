use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::JobAbandoned,
    state::{bps_of, checked_add, move_lamports, Job, JobState, Market, Worker},
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobAbandon<'info> {
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
        mut,
        has_one = market @ TensorgridError::MarketMismatch,
        has_one = poster @ TensorgridError::RecipientMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
    /// CHECK: the job's poster (checked by `has_one`); receives the penalty.
    #[account(mut)]
    pub poster: UncheckedAccount<'info>,
}

impl JobAbandon<'_> {
    fn validate(&self) -> Result<()> {
        require!(
            self.job.state == JobState::Claimed,
            TensorgridError::JobNotClaimed
        );
        require!(
            self.job.worker == Some(self.worker.key()),
            TensorgridError::NotAssignedWorker
        );
        // After the deadline the job is reclaimable, with the larger slash.
        require!(
            Clock::get()?.unix_timestamp <= self.job.deadline,
            TensorgridError::DeadlinePassed
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let penalty = bps_of(
            ctx.accounts.worker.stake,
            ctx.accounts.market.params.abandon_penalty_bps,
        )?;
        let worker_info = ctx.accounts.worker.to_account_info();
        move_lamports(&worker_info, &ctx.accounts.poster, penalty)?;
        let worker = &mut ctx.accounts.worker;
        worker.take_stake(penalty)?;
        worker.active_job = None;
        worker.jobs_abandoned = checked_add(worker.jobs_abandoned, 1)?;
        worker.invariant(&worker_info)?;
        let job = &mut ctx.accounts.job;
        job.reopen();
        job.invariant(&job.to_account_info())?;
        emit_cpi!(JobAbandoned {
            job: job.key(),
            job_id: job.job_id,
            worker: worker.key(),
            penalty,
        });
        Ok(())
    }
}
