use anchor_lang::prelude::*;

use super::settle::{credit_poster, paid_event, pay_worker, PosterOwed};
use crate::{
    constants::{JOB_SEED, MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::Settlement,
    state::{Job, JobState, Market, Worker},
};

/// Permissionless crank: anyone may finalize once the challenge window has passed.
#[event_cpi]
#[derive(Accounts)]
pub struct JobFinalize<'info> {
    /// The job's market; receives the fee.
    #[account(
        mut,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// The worker holding the job; its earnings receive the payout.
    #[account(
        mut,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The submitted job, closed to the poster.
    #[account(
        mut,
        close = poster,
        has_one = market @ TensorgridError::MarketMismatch,
        has_one = poster @ TensorgridError::RecipientMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
    /// The poster's account in this market (`["poster", market, poster]`): in a token market
    /// it is credited with what the job still holds for the poster (compensation, a refund, a
    /// returned bond), which the poster withdraws with `poster_withdraw`.
    /// CHECK: read only in a token market, as a `Poster` that must be the job's poster's in
    /// the job's market (`settle::credit_poster`); a SOL market does not use it.
    #[account(mut)]
    pub poster_account: UncheckedAccount<'info>,
    /// The job's poster; receives the rent and any compensation.
    /// CHECK: must equal `job.poster` (`has_one`).
    #[account(mut)]
    pub poster: UncheckedAccount<'info>,
}

impl JobFinalize<'_> {
    fn validate(&self) -> Result<()> {
        let job = &self.job;
        job.require_state(JobState::Submitted)?;
        ensure!(
            Clock::get()?.unix_timestamp > job.challenge_ends_at,
            TensorgridError::ChallengeWindowOpen
        );
        job.require_assigned(&self.worker.key())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let mut owed = PosterOwed::default();
        let (payout, close) = {
            let a = &mut *ctx.accounts;
            pay_worker(&mut a.market, &mut a.worker, &a.job, &mut owed)?
        };
        let a = &ctx.accounts;
        credit_poster(&a.job, &a.poster_account.to_account_info(), owed)?;
        let event = paid_event(
            &a.job,
            a.worker.key(),
            Settlement::FinalizedAfterWindow,
            payout,
            close,
        );
        emit_event!(ctx, event);
        Ok(())
    }
}
