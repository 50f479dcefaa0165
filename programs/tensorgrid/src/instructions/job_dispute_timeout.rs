use anchor_lang::prelude::*;

use super::settle::{
    close_dispute, credit_poster, dispute_tokens, paid_event, pay_worker, PosterOwed,
};
use crate::{
    constants::{DISPUTE_SEED, JOB_SEED, MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::Settlement,
    state::{checked_add, Dispute, DisputePhase, Job, JobState, Market, Worker},
};

/// Permissionless crank: a dispute that neither the verifiers nor the authority settled
/// within the job's `resolve_window_s` ends with the documented default — nothing showed the
/// result wrong, so it stands: the worker is paid under the job's terms, and the poster gets
/// its bond (and any verifier forfeits) back. The poster cannot get the model free by
/// disputing, and the worker is not paid the poster's bond without a ruling.
#[event_cpi]
#[derive(Accounts)]
pub struct JobDisputeTimeout<'info> {
    /// The job's market; receives the fee.
    #[account(
        mut,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// The worker holding the job; paid.
    #[account(
        mut,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The disputed job, closed to the poster.
    #[account(
        mut,
        close = poster,
        has_one = market @ TensorgridError::MarketMismatch,
        has_one = poster @ TensorgridError::RecipientMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
    /// The job's escalated dispute, closed to the poster with its bond.
    #[account(
        mut,
        has_one = job @ TensorgridError::DisputeJobMismatch,
        seeds = [DISPUTE_SEED, job.key().as_ref()],
        bump = dispute.bump,
    )]
    pub dispute: Box<Account<'info, Dispute>>,
    /// The poster's account in this market (`["poster", market, poster]`): in a token market
    /// it is credited with what the job still holds for the poster (compensation, a refund, a
    /// returned bond), which the poster withdraws with `poster_withdraw`.
    /// CHECK: read only in a token market, as a `Poster` that must be the job's poster's in
    /// the job's market (`settle::credit_poster`); a SOL market does not use it.
    #[account(mut)]
    pub poster_account: UncheckedAccount<'info>,
    /// The job's poster; receives the bond, compensation and rent.
    /// CHECK: must equal `job.poster` (`has_one`).
    #[account(mut)]
    pub poster: UncheckedAccount<'info>,
}

impl JobDisputeTimeout<'_> {
    fn validate(&self) -> Result<()> {
        let job = &self.job;
        job.require_state(JobState::Disputed)?;
        self.dispute.require_phase(DisputePhase::Escalated)?;
        ensure!(
            Clock::get()?.unix_timestamp > job.dispute_ends_at,
            TensorgridError::DisputeNotExpired
        );
        job.require_assigned(&self.worker.key())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let a = &mut *ctx.accounts;
        let mut owed = PosterOwed::default();
        let worker = a.worker.key();
        let (payout, close) = pay_worker(&mut a.market, &mut a.worker, &a.job, &mut owed)?;
        a.worker.record.disputes_expired = checked_add(a.worker.record.disputes_expired, 1)?;
        let paid = paid_event(&a.job, worker, Settlement::DisputeExpired, payout, close);
        let poster_info = a.poster.to_account_info();
        let tokens = dispute_tokens(&a.dispute, 0, 0)?;
        let closed = close_dispute(&a.dispute, &a.job, None, &poster_info, &mut owed, tokens)?;
        credit_poster(&a.job, &a.poster_account.to_account_info(), owed)?;
        emit_event!(ctx, paid);
        emit_event!(ctx, closed);
        Ok(())
    }
}
