//! The money movements that end a submitted or disputed job, shared by `job_accept`,
//! `job_finalize`, `job_resolve` and `job_dispute_timeout`. Every one of them pays only
//! program-owned accounts (the worker, the market) or the poster through the job account's
//! close, so no settlement depends on a third account's balance.

use anchor_lang::prelude::*;

use crate::{
    events::{DisputeClosed, JobPaid, Settlement},
    state::{
        check_backed, checked_sub, move_lamports, rent_exempt_minimum, Dispute, Job, Market,
        Payout, Worker,
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

/// Closes a decided dispute to the poster. What it holds above rent (the bond and forfeits,
/// less any fees paid, plus the rest of a fraud slash) goes to `worker`'s earnings when given
/// (the dispute was wrong), else back to the poster with the rent.
pub(crate) fn close_dispute<'info>(
    dispute: &Account<'info, Dispute>,
    job: &Account<'info, Job>,
    worker: Option<&mut Account<'info, Worker>>,
    poster: &AccountInfo<'info>,
) -> Result<DisputeClosed> {
    let info = dispute.to_account_info();
    let rent = rent_exempt_minimum(info.data_len())?;
    let above = checked_sub(info.lamports(), rent)?;
    let to_worker = match worker {
        Some(worker) => {
            let worker_info = worker.to_account_info();
            move_lamports(&info, &worker_info, above)?;
            worker.record_compensated(above)?;
            worker.invariant(&worker_info)?;
            above
        }
        None => 0,
    };
    dispute.close(poster.clone())?;
    Ok(DisputeClosed {
        job: job.key(),
        dispute: dispute.key(),
        worker: dispute.worker,
        bond: dispute.bond,
        to_worker,
        to_poster: checked_sub(above, to_worker)?,
        rent_refunded: rent,
    })
}
