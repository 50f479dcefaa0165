//! Accounts and money movement shared by the instructions that end a submitted job:
//! `job_accept`, `job_finalize` and `job_resolve`.

use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    state::{bps_of, checked_add, checked_sub, move_lamports, Job, Market, Worker},
};

/// Everything a settlement touches. The job account is closed to the poster, so its rent (and,
/// on a refund, its escrow) goes back to whoever paid it.
#[derive(Accounts)]
pub struct SettleAccounts<'info> {
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    #[account(
        mut,
        has_one = market @ TensorgridError::MarketMismatch,
        has_one = operator @ TensorgridError::RecipientMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    #[account(
        mut,
        close = poster,
        has_one = market @ TensorgridError::MarketMismatch,
        has_one = poster @ TensorgridError::RecipientMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
    /// CHECK: the job's poster (checked by `has_one`); receives rent and any refund.
    #[account(mut)]
    pub poster: UncheckedAccount<'info>,
    /// CHECK: the worker's operator (checked by `has_one`); receives the payout.
    #[account(mut)]
    pub operator: UncheckedAccount<'info>,
    /// CHECK: must be the market's treasury; receives the fee.
    #[account(mut, address = market.treasury @ TensorgridError::TreasuryMismatch)]
    pub treasury: UncheckedAccount<'info>,
}

impl SettleAccounts<'_> {
    /// The job's recorded worker must be the `worker` account passed in.
    pub fn check_assigned(&self) -> Result<()> {
        require!(
            self.job.worker == Some(self.worker.key()),
            TensorgridError::NotAssignedWorker
        );
        Ok(())
    }

    /// Pays reward − fee to the operator and the fee to the treasury; frees the worker.
    /// Returns `(payout, fee)`. Rent goes back to the poster when the job account closes.
    pub fn pay_worker(&mut self) -> Result<(u64, u64)> {
        let reward = self.job.reward;
        let fee = bps_of(reward, self.market.params.fee_bps)?;
        let payout = checked_sub(reward, fee)?;
        let job_info = self.job.to_account_info();
        move_lamports(&job_info, &self.operator, payout)?;
        move_lamports(&job_info, &self.treasury, fee)?;
        let worker = &mut self.worker;
        worker.active_job = None;
        worker.jobs_completed = checked_add(worker.jobs_completed, 1)?;
        worker.total_earned = checked_add(worker.total_earned, payout)?;
        worker.invariant(&worker.to_account_info())?;
        Ok((payout, fee))
    }

    /// Poster won a dispute: slashes the worker's stake to the poster and frees the worker.
    /// Returns `(refunded, slashed)`; the escrow itself returns when the job account closes.
    pub fn refund_poster(&mut self) -> Result<(u64, u64)> {
        let slashed = bps_of(self.worker.stake, self.market.params.slash_bps)?;
        let worker_info = self.worker.to_account_info();
        move_lamports(&worker_info, &self.poster, slashed)?;
        let worker = &mut self.worker;
        worker.take_stake(slashed)?;
        worker.active_job = None;
        worker.jobs_slashed = checked_add(worker.jobs_slashed, 1)?;
        worker.invariant(&worker_info)?;
        Ok((self.job.to_account_info().lamports(), slashed))
    }
}
