use anchor_lang::prelude::*;

use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use super::vault;
use crate::{
    constants::{JOB_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::JobReclaimed,
    state::{checked_add, move_lamports, shift, Job, JobState, Market, Unit, Worker},
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
    /// Token market only: the job's market (the vault's owner).
    #[account(address = job.market @ TensorgridError::MarketMismatch)]
    pub market: Option<Account<'info, Market>>,
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
    /// Token market only: the market's mint.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// Token market only: the market's vault.
    #[account(mut)]
    pub vault: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the token account receiving the bounty (any account of the mint
    /// the cranker names).
    #[account(mut)]
    pub cranker_token: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
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
        let a = &ctx.accounts;
        let worker_info = a.worker.to_account_info();
        let job_info = a.job.to_account_info();
        let unit = a.job.unit();
        match (unit, &a.market) {
            (Unit::Lamports, _) => {
                vault::none(&a.mint, &a.vault, &a.cranker_token, &a.token_program)?;
                move_lamports(&worker_info, &a.cranker, split.bounty)?;
            }
            (Unit::Token, None) => {
                return Err(crate::errors::fail(TensorgridError::TokenAccountsMissing));
            }
            (Unit::Token, Some(market)) => {
                let v = vault::vault(market, &a.mint, &a.vault, &a.token_program)?
                    .ok_or_else(|| crate::errors::fail(TensorgridError::TokenAccountsMissing))?;
                let to = vault::party(&a.cranker_token, market)?;
                v.withdraw(&market.to_account_info(), to, split.bounty)?;
            }
        }
        shift(unit, &worker_info, &job_info, split.to_poster)?;
        let worker = &mut ctx.accounts.worker;
        worker.record_missed_deadline(checked_add(split.bounty, split.to_poster)?)?;
        worker.invariant(&worker_info, unit)?;
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
