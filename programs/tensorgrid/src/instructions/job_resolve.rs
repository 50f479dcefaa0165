use anchor_lang::prelude::*;

use super::settle::{
    close_dispute, credit_poster, dispute_tokens, paid_event, pay_worker, refund_with_slash,
    PosterOwed,
};
use crate::{
    constants::{DISPUTE_SEED, JOB_SEED, MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::{JobRefunded, RefundReason, Settlement},
    state::{Dispute, DisputePhase, Job, JobState, Market, Worker},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct JobResolveArgs {
    /// true: the result stands and the worker is paid under the job's terms, with the
    /// dispute's bond and forfeits. false: the poster is refunded with its bond and the
    /// forfeits, and the slash share of the job's collateral moves to the poster.
    pub worker_wins: bool,
}

#[event_cpi]
#[derive(Accounts)]
pub struct JobResolve<'info> {
    /// The market's authority, the arbiter.
    pub authority: Signer<'info>,
    /// The job's market; receives the fee if the worker wins.
    #[account(
        mut,
        has_one = authority @ TensorgridError::NotMarketAuthority,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// The worker holding the job.
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
    /// The job's dispute, which the verifiers could not settle; closed to the poster.
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
    /// The job's poster; receives rent, compensation and any refund.
    /// CHECK: must equal `job.poster` (`has_one`).
    #[account(mut)]
    pub poster: UncheckedAccount<'info>,
}

impl JobResolve<'_> {
    fn validate(&self) -> Result<()> {
        let job = &self.job;
        job.require_state(JobState::Disputed)?;
        self.dispute.require_phase(DisputePhase::Escalated)?;
        ensure!(
            Clock::get()?.unix_timestamp <= job.dispute_ends_at,
            TensorgridError::DisputeExpired
        );
        job.require_assigned(&self.worker.key())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>, args: JobResolveArgs) -> Result<()> {
        let a = &mut *ctx.accounts;
        let mut owed = PosterOwed::default();
        let (job, job_id, worker, poster, reward) = (
            a.job.key(),
            a.job.job_id,
            a.worker.key(),
            a.poster.key(),
            a.job.reward,
        );
        if args.worker_wins {
            let (payout, close) = pay_worker(&mut a.market, &mut a.worker, &a.job, &mut owed)?;
            let event = paid_event(&a.job, worker, Settlement::ResolvedForWorker, payout, close);
            let poster_info = a.poster.to_account_info();
            let tokens = dispute_tokens(&a.dispute, 0, 0)?;
            let closed = close_dispute(
                &a.dispute,
                &a.job,
                Some(&mut a.worker),
                &poster_info,
                &mut owed,
                tokens,
            )?;
            credit_poster(&a.job, &a.poster_account.to_account_info(), owed)?;
            emit_event!(ctx, event);
            emit_event!(ctx, closed);
        } else {
            let (slashed, close) = refund_with_slash(&mut a.worker, &a.job, &mut owed)?;
            let poster_info = a.poster.to_account_info();
            let tokens = dispute_tokens(&a.dispute, 0, 0)?;
            let closed = close_dispute(&a.dispute, &a.job, None, &poster_info, &mut owed, tokens)?;
            credit_poster(&a.job, &a.poster_account.to_account_info(), owed)?;
            let event = JobRefunded {
                job,
                job_id,
                worker,
                poster,
                reason: RefundReason::DisputeLost,
                reward_refunded: reward,
                slashed,
                compensation: close.compensation,
                rent_refunded: close.rent_refunded,
            };
            emit_event!(ctx, event);
            emit_event!(ctx, closed);
        }
        Ok(())
    }
}
