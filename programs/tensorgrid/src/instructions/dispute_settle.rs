use anchor_lang::prelude::*;

use super::settle::{
    close_dispute, credit_poster, dispute_tokens, paid_event, pay_worker, PosterOwed,
};
use crate::{
    constants::{DISPUTE_SEED, JOB_SEED, MARKET_SEED, VERIFIER_POOL_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::{DisputeTallied, JobRefunded, RefundReason, Settlement},
    state::{checked_add, checked_sub, shift, Dispute, Job, Market, Tally, VerifierPool, Worker},
};

/// Permissionless crank once voting is over (every seat revealed, or the reveal window
/// closed). Seats of the majority earn the verifier fee and share the forfeits of the seats
/// outside it (without a majority, seats that did not reveal forfeit to whoever the authority
/// rules for); a forfeit comes out of the seat's pledge, and its pool weight falls with it.
/// Then:
/// - the majority reached the worker's committed end state: the worker is paid, the fees come
///   out of the poster's bond and the rest of the bond (with any forfeits) goes to the worker;
/// - the majority reached another state, or could not re-run the segment: the poster is
///   refunded with its bond, the worker loses the fraud share of its collateral, which pays
///   the fees, the rest going to the poster;
/// - no majority: the dispute goes to the market authority, which rules within the job's
///   `resolve_window_s` (`job_resolve`), after which the result stands (`job_dispute_timeout`).
#[event_cpi]
#[derive(Accounts)]
pub struct DisputeSettle<'info> {
    /// The job's market; receives the fee if the result stands.
    #[account(
        mut,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Box<Account<'info, Market>>,
    /// The worker whose result is disputed.
    #[account(
        mut,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Box<Account<'info, Worker>>,
    /// The disputed job; closed to the poster when the dispute is decided.
    #[account(
        mut,
        has_one = market @ TensorgridError::MarketMismatch,
        has_one = poster @ TensorgridError::RecipientMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Box<Account<'info, Job>>,
    /// The job's dispute; closed to the poster when decided.
    #[account(
        mut,
        has_one = job @ TensorgridError::DisputeJobMismatch,
        has_one = worker @ TensorgridError::NotAssignedWorker,
        seeds = [DISPUTE_SEED, job.key().as_ref()],
        bump = dispute.bump,
    )]
    pub dispute: Box<Account<'info, Dispute>>,
    /// The job's poster.
    /// CHECK: must equal `job.poster` (`has_one`).
    #[account(mut)]
    pub poster: UncheckedAccount<'info>,
    /// The poster's account in this market (`["poster", market, poster]`): in a token market
    /// it is credited with what the job still holds for the poster (compensation, a refund, a
    /// returned bond), which the poster withdraws with `poster_withdraw`.
    /// CHECK: read only in a token market, as a `Poster` that must be the job's poster's in
    /// the job's market (`settle::credit_poster`); a SOL market does not use it.
    #[account(mut)]
    pub poster_account: UncheckedAccount<'info>,
    /// The first seat's worker account.
    #[account(mut, address = dispute.seats[0].worker @ TensorgridError::SeatMismatch)]
    pub seat0: Box<Account<'info, Worker>>,
    /// The second seat's worker account.
    #[account(mut, address = dispute.seats[1].worker @ TensorgridError::SeatMismatch)]
    pub seat1: Box<Account<'info, Worker>>,
    /// The third seat's worker account.
    #[account(mut, address = dispute.seats[2].worker @ TensorgridError::SeatMismatch)]
    pub seat2: Box<Account<'info, Worker>>,
    /// The market's verifier pool: a forfeit lowers the seat's weight there.
    #[account(mut, seeds = [VERIFIER_POOL_SEED, job.market.as_ref()], bump)]
    pub pool: AccountLoader<'info, VerifierPool>,
}

/// What the seats were paid and forfeited.
struct SeatMoney {
    fees: [u64; 3],
    forfeits: [u64; 3],
    /// The fees alone (without the shares of forfeits), paid out of the fund.
    from_fund: u64,
}

impl DisputeSettle<'_> {
    fn validate(&self) -> Result<()> {
        self.dispute
            .require_voting_over(Clock::get()?.unix_timestamp)?;
        self.job.require_assigned(&self.worker.key())
    }

    /// Moves each failing seat's forfeit (its reserve) out of its pledge into the dispute
    /// account; then pays each majority seat its fee out of `fund` lamports held there (capped
    /// by what is left of it) and an equal share of the forfeits (the rest of them, and
    /// everything without a majority, stays for the winner). Lowers forfeiting seats' pool
    /// weights.
    fn settle_seats(&mut self, mut fund: u64) -> Result<SeatMoney> {
        let dispute_info = self.dispute.to_account_info();
        let seats = self.dispute.seats;
        let forfeits = seats.map(|s| {
            if self.dispute.seat_forfeits(&s) {
                s.reserve
            } else {
                0
            }
        });
        let earners = seats.iter().filter(|s| self.dispute.seat_earns(s)).count() as u64;
        let forfeited: u64 = forfeits.iter().try_fold(0u64, |a, f| checked_add(a, *f))?;
        let share = forfeited.checked_div(earners).unwrap_or(0);
        let mut money = SeatMoney {
            fees: [0; 3],
            forfeits,
            from_fund: 0,
        };
        let unit = self.job.unit();
        let mut pool = self.pool.load_mut()?;
        // A forfeit changes a weight: not while a draw is pending. (Without one, a pending
        // draw cannot hold this settlement up.)
        if forfeited > 0 {
            pool.require_thawed()?;
        }
        for (i, seat_acct) in [&mut self.seat0, &mut self.seat1, &mut self.seat2]
            .into_iter()
            .enumerate()
        {
            let seat = seats.get(i).ok_or(TensorgridError::SeatMismatch)?;
            let forfeit = forfeits.get(i).copied().unwrap_or(0);
            let info = seat_acct.to_account_info();
            shift(unit, &info, &dispute_info, forfeit)?;
            self.dispute.forfeits = checked_add(self.dispute.forfeits, forfeit)?;
            seat_acct.leave_seat(seat.reserve, 0, forfeit)?;
            if forfeit > 0 {
                pool.reweigh(&seat.worker, seat_acct.pooled_stake);
            }
        }
        for (i, seat_acct) in [&mut self.seat0, &mut self.seat1, &mut self.seat2]
            .into_iter()
            .enumerate()
        {
            let seat = seats.get(i).ok_or(TensorgridError::SeatMismatch)?;
            if !self.dispute.seat_earns(seat) {
                continue;
            }
            let fee = self.dispute.verifier_fee.min(fund);
            fund = checked_sub(fund, fee)?;
            money.from_fund = checked_add(money.from_fund, fee)?;
            let paid = checked_add(fee, share)?;
            self.dispute.forfeits = checked_sub(self.dispute.forfeits, share)?;
            let info = seat_acct.to_account_info();
            shift(unit, &dispute_info, &info, paid)?;
            seat_acct.record_verifier_fee(paid)?;
            if let Some(f) = money.fees.get_mut(i) {
                *f = paid;
            }
        }
        for seat_acct in [&self.seat0, &self.seat1, &self.seat2] {
            seat_acct.invariant(&seat_acct.to_account_info(), unit)?;
        }
        Ok(money)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let tally = ctx.accounts.dispute.tally();
        let a = &mut *ctx.accounts;
        let (job_key, dispute_key, worker_key) = (a.job.key(), a.dispute.key(), a.worker.key());
        let mut slashed = 0;
        let money = match tally {
            Tally::Upheld => {
                // The fees come out of the bond.
                let bond = a.dispute.bond;
                a.settle_seats(bond)?
            }
            Tally::Fraud => {
                slashed = a.job.terms.dispute.fraud_slash(a.job.collateral)?;
                let (worker_info, dispute_info) =
                    (a.worker.to_account_info(), a.dispute.to_account_info());
                shift(a.job.unit(), &worker_info, &dispute_info, slashed)?;
                a.worker.record_dispute_lost(slashed)?;
                a.worker.invariant(&worker_info, a.job.unit())?;
                a.settle_seats(slashed)?
            }
            Tally::Undecided => {
                let money = a.settle_seats(0)?;
                a.dispute.escalate();
                a.job.escalate(now)?;
                money
            }
        };
        let tallied = DisputeTallied {
            job: job_key,
            dispute: dispute_key,
            tally,
            seats: a.dispute.seats.map(|s| s.worker),
            seat_fees: money.fees,
            seat_forfeits: money.forfeits,
            dispute_ends_at: a.job.dispute_ends_at,
        };
        emit_event!(ctx, tallied);
        let a = &mut *ctx.accounts;
        let mut owed = PosterOwed::default();
        match tally {
            Tally::Upheld => {
                let (payout, close) = pay_worker(&mut a.market, &mut a.worker, &a.job, &mut owed)?;
                let paid = paid_event(
                    &a.job,
                    worker_key,
                    Settlement::UpheldByVerifiers,
                    payout,
                    close,
                );
                // Everything left in the dispute (bond less fees, forfeits) compensates the
                // worker for a dispute that was wrong.
                let tokens = dispute_tokens(&a.dispute, 0, money.from_fund)?;
                let closed = close_dispute(
                    &a.dispute,
                    &a.job,
                    Some(&mut a.worker),
                    &a.poster.to_account_info(),
                    &mut owed,
                    tokens,
                )?;
                credit_poster(&a.job, &a.poster_account.to_account_info(), owed)?;
                a.job.close(a.poster.to_account_info())?;
                emit_event!(ctx, paid);
                emit_event!(ctx, closed);
            }
            Tally::Fraud => {
                let close = super::settle::closing(&a.job)?;
                let refunded = JobRefunded {
                    job: job_key,
                    job_id: a.job.job_id,
                    worker: worker_key,
                    poster: a.poster.key(),
                    reason: RefundReason::FraudFound,
                    reward_refunded: a.job.reward,
                    slashed,
                    compensation: close.compensation,
                    rent_refunded: close.rent_refunded,
                };
                owed.add(a.job.unit(), a.job.escrowed()?)?;
                let tokens = dispute_tokens(&a.dispute, slashed, money.from_fund)?;
                let closed = close_dispute(
                    &a.dispute,
                    &a.job,
                    None,
                    &a.poster.to_account_info(),
                    &mut owed,
                    tokens,
                )?;
                credit_poster(&a.job, &a.poster_account.to_account_info(), owed)?;
                a.job.close(a.poster.to_account_info())?;
                emit_event!(ctx, refunded);
                emit_event!(ctx, closed);
            }
            Tally::Undecided => {
                a.job.invariant(&a.job.to_account_info())?;
                a.dispute
                    .invariant(&a.dispute.to_account_info(), a.job.unit())?;
            }
        }
        Ok(())
    }
}
