//! The money movements that end a submitted or disputed job, shared by `job_accept`,
//! `job_finalize`, `job_resolve`, `job_dispute_timeout` and `dispute_settle`. Every one of them
//! pays only program-owned accounts (the worker, the market, in a token market the poster
//! account) or the poster's wallet through the job account's close, so no settlement depends
//! on a third account's balance or on a token account someone could close or freeze.

use anchor_lang::prelude::*;

use crate::{
    errors::TensorgridError,
    events::{DisputeClosed, JobPaid, Settlement},
    state::{
        check_backed, checked_add, checked_sub, rent_exempt_minimum, shift, Dispute, Job, Market,
        Payout, Poster, Unit, Worker,
    },
};

/// What the poster gets back when the job account closes.
pub(crate) struct Closing {
    /// Penalties paid into the escrow by earlier abandons and reclaims.
    pub compensation: u64,
    /// The job account's rent.
    pub rent_refunded: u64,
}

pub(crate) fn closing(job: &Account<Job>) -> Result<Closing> {
    let held = job.to_account_info().lamports();
    let rent_refunded = match job.unit() {
        Unit::Lamports => checked_sub(held, job.escrowed()?)?,
        // A token market's job holds only its rent; its amounts are in the vault.
        Unit::Token => held,
    };
    Ok(Closing {
        compensation: job.compensation,
        rent_refunded,
    })
}

/// What a settlement owes the poster in a token market (what the closing job and dispute still
/// hold for it), credited to its poster account once, at the end (`credit_poster`). In a SOL
/// market the lamports go to the poster's wallet with the accounts' closes instead.
#[derive(Default)]
pub(crate) struct PosterOwed(u64);

impl PosterOwed {
    pub fn add(&mut self, unit: Unit, tokens: u64) -> Result<()> {
        if unit == Unit::Token {
            self.0 = checked_add(self.0, tokens)?;
        }
        Ok(())
    }
}

/// In a token market, credits `owed` to the poster account `account`, which must be `job`'s
/// poster's in `job`'s market; the poster withdraws it with `poster_withdraw`. A SOL market
/// does not read the account (its refunds went to the wallet), so it costs nothing there.
pub(crate) fn credit_poster(job: &Job, account: &AccountInfo, owed: PosterOwed) -> Result<()> {
    if job.unit() == Unit::Lamports {
        return Ok(());
    }
    // What `Account<Poster>` checks: this program's account, of the `Poster` type (its
    // discriminator), and writable.
    ensure!(
        account.owner == &crate::ID && account.is_writable,
        TensorgridError::PosterAccountMismatch
    );
    let mut data = account.try_borrow_mut_data()?;
    let mut poster = Poster::try_deserialize(&mut &data[..])
        .map_err(|_| crate::errors::fail(TensorgridError::PosterAccountMismatch))?;
    ensure!(
        poster.market == job.market && poster.wallet == job.poster,
        TensorgridError::PosterAccountMismatch
    );
    poster.credit(owed.0)?;
    poster.try_serialize(&mut &mut data[..])
}

/// Pays the reward under the job's own terms: reward − fee into the worker's earnings, the fee
/// into the market. The rest (rent, compensation) goes to the poster when the job closes (in a
/// token market the compensation is credited to the poster account).
pub(crate) fn pay_worker(
    market: &mut Account<Market>,
    worker: &mut Account<Worker>,
    job: &Account<Job>,
    owed: &mut PosterOwed,
) -> Result<(Payout, Closing)> {
    let close = closing(job)?;
    let payout = job.terms.payout(job.reward)?;
    let (job_info, worker_info, market_info) = (
        job.to_account_info(),
        worker.to_account_info(),
        market.to_account_info(),
    );
    let unit = job.unit();
    shift(unit, &job_info, &worker_info, payout.to_worker)?;
    shift(unit, &job_info, &market_info, payout.fee)?;
    market.accrue_fee(payout.fee)?;
    // Only the fee balance: re-validating the market's current parameters here would let a
    // future tightening of the bounds block the settlement of jobs already posted.
    check_backed(&market_info, market.fees_unclaimed, unit)?;
    worker.record_paid(payout.to_worker)?;
    worker.invariant(&worker_info, unit)?;
    owed.add(unit, close.compensation)?;
    Ok((payout, close))
}

/// The event for a paid job.
pub(crate) fn paid_event(
    job: &Account<Job>,
    worker: Pubkey,
    settlement: Settlement,
    payout: Payout,
    close: Closing,
) -> JobPaid {
    JobPaid {
        job: job.key(),
        job_id: job.job_id,
        worker,
        poster: job.poster,
        settlement,
        payout: payout.to_worker,
        fee: payout.fee,
        compensation: close.compensation,
        rent_refunded: close.rent_refunded,
    }
}

/// The poster won the dispute: the slash share of the job's collateral moves from the worker
/// into the escrow; everything in the escrow (reward, compensation, slash) goes to the poster
/// when the job closes. Returns the slashed amount.
pub(crate) fn refund_with_slash(
    worker: &mut Account<Worker>,
    job: &Account<Job>,
    owed: &mut PosterOwed,
) -> Result<(u64, Closing)> {
    let close = closing(job)?;
    let slashed = job.terms.slash(job.collateral)?;
    let worker_info = worker.to_account_info();
    shift(job.unit(), &worker_info, &job.to_account_info(), slashed)?;
    worker.record_dispute_lost(slashed)?;
    worker.invariant(&worker_info, job.unit())?;
    owed.add(job.unit(), checked_add(job.escrowed()?, slashed)?)?;
    Ok((slashed, close))
}

/// What a dispute holds for someone, in a token market: the bond, anything moved in (a fraud
/// slash, forfeits) less what was paid out of it (verifier fees).
pub(crate) fn dispute_tokens(dispute: &Dispute, moved_in: u64, paid_out: u64) -> Result<u64> {
    checked_sub(
        checked_add(checked_add(dispute.bond, dispute.forfeits)?, moved_in)?,
        paid_out,
    )
}

/// Closes a decided dispute to the poster. What it holds above rent (the bond and forfeits,
/// less any fees paid, plus the rest of a fraud slash) goes to `worker`'s earnings when given
/// (the dispute was wrong), else back to the poster with the rent (in a token market, to the
/// poster account). `tokens` is what it holds in a token market (`dispute_tokens`); a SOL
/// dispute's lamports say it.
pub(crate) fn close_dispute<'info>(
    dispute: &Account<'info, Dispute>,
    job: &Account<'info, Job>,
    worker: Option<&mut Account<'info, Worker>>,
    poster: &AccountInfo<'info>,
    owed: &mut PosterOwed,
    tokens: u64,
) -> Result<DisputeClosed> {
    let info = dispute.to_account_info();
    let rent = rent_exempt_minimum(info.data_len())?;
    let unit = job.unit();
    let (above, rent_refunded) = match unit {
        Unit::Lamports => (checked_sub(info.lamports(), rent)?, rent),
        Unit::Token => (tokens, info.lamports()),
    };
    let to_worker = match worker {
        Some(worker) => {
            let worker_info = worker.to_account_info();
            shift(unit, &info, &worker_info, above)?;
            worker.record_compensated(above)?;
            worker.invariant(&worker_info, unit)?;
            above
        }
        None => 0,
    };
    owed.add(unit, checked_sub(above, to_worker)?)?;
    dispute.close(poster.clone())?;
    Ok(DisputeClosed {
        job: job.key(),
        dispute: dispute.key(),
        worker: dispute.worker,
        bond: dispute.bond,
        to_worker,
        to_poster: checked_sub(above, to_worker)?,
        rent_refunded,
    })
}
