//! The money movements that end a submitted or disputed job, shared by `job_accept`,
//! `job_finalize`, `job_resolve` and `job_dispute_timeout`. Every one of them pays only
//! program-owned accounts (the worker, the market) or the poster through the job account's
//! close, so no settlement depends on a third account's balance.

use anchor_lang::prelude::*;

use crate::{
    events::{JobPaid, Settlement},
    state::{check_backed, checked_sub, move_lamports, Job, Market, Payout, Worker},
};

/// What the poster gets back when the job account closes.
pub(crate) struct Closing {
    /// Penalties paid into the escrow by earlier abandons and reclaims.
    pub compensation: u64,
    /// The job account's rent.
    pub rent_refunded: u64,
}

fn closing(job: &Account<Job>) -> Result<Closing> {
    let held = job.to_account_info().lamports();
    Ok(Closing {
        compensation: job.compensation,
        rent_refunded: checked_sub(held, job.escrowed()?)?,
    })
}

/// Pays the reward under the job's own terms: reward − fee into the worker's earnings, the fee
/// into the market. The rest (rent, compensation) goes to the poster when the job closes.
pub(crate) fn pay_worker(
    market: &mut Account<Market>,
    worker: &mut Account<Worker>,
    job: &Account<Job>,
) -> Result<(Payout, Closing)> {
    let close = closing(job)?;
    let payout = job.terms.payout(job.reward)?;
    let (job_info, worker_info, market_info) = (
        job.to_account_info(),
        worker.to_account_info(),
        market.to_account_info(),
    );
    move_lamports(&job_info, &worker_info, payout.to_worker)?;
    move_lamports(&job_info, &market_info, payout.fee)?;
    market.accrue_fee(payout.fee)?;
    // Only the fee balance: re-validating the market's current parameters here would let a
    // future tightening of the bounds block the settlement of jobs already posted.
    check_backed(&market_info, market.fees_unclaimed)?;
    worker.record_paid(payout.to_worker)?;
    worker.invariant(&worker_info)?;
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
/// into the escrow; everything in the escrow goes to the poster when the job closes.
/// Returns the slashed amount.
pub(crate) fn refund_with_slash(
    worker: &mut Account<Worker>,
    job: &Account<Job>,
) -> Result<(u64, Closing)> {
    let close = closing(job)?;
    let slashed = job.terms.slash(job.collateral)?;
    let worker_info = worker.to_account_info();
    move_lamports(&worker_info, &job.to_account_info(), slashed)?;
    worker.record_dispute_lost(slashed)?;
    worker.invariant(&worker_info)?;
    Ok((slashed, close))
}

/// Nobody resolved the dispute in time: the poster gets the escrow back, the worker keeps its
/// stake, and no fee is charged.
pub(crate) fn refund_without_slash(
    worker: &mut Account<Worker>,
    job: &Account<Job>,
) -> Result<Closing> {
    let close = closing(job)?;
    worker.record_dispute_expired()?;
    worker.invariant(&worker.to_account_info())?;
    Ok(close)
}
