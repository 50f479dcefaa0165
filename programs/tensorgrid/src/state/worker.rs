use anchor_lang::prelude::*;

use super::{check_backed, checked_add, checked_sub, Hardware, Unit};
use crate::errors::TensorgridError;

/// A worker's record of outcomes: what posters rely on to judge it. It survives
/// deregistration (the account stays, only its lamports above rent go back).
#[derive(
    AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub struct WorkerRecord {
    /// Jobs paid (accepted, finalized or resolved for the worker).
    pub jobs_completed: u64,
    /// Jobs the worker abandoned.
    pub jobs_abandoned: u64,
    /// Jobs reclaimed after a missed deadline.
    pub deadlines_missed: u64,
    /// Disputes lost: the verifiers found the result a fraud, or the authority ruled for the
    /// poster.
    pub disputes_lost: u64,
    /// Disputes neither the verifiers nor the authority settled in time (the result stood and
    /// was paid; also counted in `jobs_completed`).
    pub disputes_expired: u64,
    /// Earned in rewards, net of fees, in the market's unit (a running total for readers:
    /// it saturates rather than fail a settlement).
    pub total_earned: u64,
    /// Stake lost to penalties, slashes and verifier forfeits, in the market's unit (saturates).
    pub total_slashed: u64,
    /// Dispute seats served with the majority (each paid a verifier fee).
    pub verifications: u64,
    /// Dispute seats not revealed or revealed against the majority (each forfeited a fee).
    pub verifications_failed: u64,
}

/// A compute provider in one market. Its stake and its unwithdrawn earnings are held as
/// lamports in this account above rent.
///
/// Layout: the hardware (whose label is variable) comes last, so every other field has a fixed
/// offset; see `tensorgrid_client::layout`.
#[account]
#[derive(InitSpace, Debug)]
pub struct Worker {
    /// The market the worker serves.
    pub market: Pubkey,
    /// The provider's wallet, which signs for the worker.
    pub operator: Pubkey,
    /// The job this worker holds (claimed, submitted or disputed); `Pubkey::default()` if none.
    pub active_job: Pubkey,
    /// Lamports at stake (excludes rent and earnings).
    pub stake: u64,
    /// Rewards paid to this worker and not yet withdrawn by the operator, in lamports.
    pub earnings: u64,
    /// False after `worker_deregister`; `worker_register` makes it true again.
    pub registered: bool,
    /// Unix time of the first registration.
    pub registered_at: i64,
    /// Outcomes so far.
    pub record: WorkerRecord,
    /// Stake pledged to the market's verifier pool (its weight there, and what its seats'
    /// forfeits come out of). No claim's collateral may use it and no withdrawal take it until
    /// the worker leaves the pool; so nothing but a forfeit lowers it. 0 outside the pool.
    pub pooled_stake: u64,
    /// Collateral the active job's claim put at risk (0 when idle).
    pub locked_collateral: u64,
    /// Part of the pledge reserved for the forfeits of the verifier seats held (each seat
    /// reserves its dispute's fee, as far as the pledge goes).
    pub seat_reserve: u64,
    /// Verifier seats this worker holds in disputes not yet settled; while any is open the
    /// worker may not withdraw stake, leave the pool or deregister.
    pub open_seats: u32,
    /// The PDA's bump.
    pub bump: u8,
    /// The worker's device (its label is the last, variable-length field).
    pub hardware: Hardware,
}

impl Worker {
    pub const SPACE: usize = 8 + Worker::INIT_SPACE;

    pub fn active(&self) -> Option<Pubkey> {
        (self.active_job != Pubkey::default()).then_some(self.active_job)
    }

    pub fn require_idle(&self) -> Result<()> {
        ensure!(self.active().is_none(), TensorgridError::WorkerHasActiveJob);
        Ok(())
    }

    /// No verifier seat open and no stake pledged to the pool: free to leave with its stake.
    pub fn require_unpledged(&self) -> Result<()> {
        ensure!(self.open_seats == 0, TensorgridError::VerifierSeated);
        ensure!(self.pooled_stake == 0, TensorgridError::StakePledged);
        Ok(())
    }

    pub fn require_registered(&self) -> Result<()> {
        ensure!(self.registered, TensorgridError::WorkerDeregistered);
        Ok(())
    }

    /// The account's lamports cover rent, stake and earnings; a deregistered worker holds
    /// nothing and no job.
    pub fn invariant(&self, info: &AccountInfo, unit: Unit) -> Result<()> {
        self.hardware
            .validate()
            .map_err(|_| crate::errors::fail(TensorgridError::InvariantViolated))?;
        ensure!(
            self.registered
                || (self.stake == 0
                    && self.active().is_none()
                    && self.open_seats == 0
                    && self.pooled_stake == 0),
            TensorgridError::InvariantViolated
        );
        // The job's collateral and the pledge (out of which the seats' forfeits come) are
        // always backed by the stake, each by its own part of it.
        ensure!(
            self.stake >= checked_add(self.locked_collateral, self.pooled_stake)?
                && self.seat_reserve <= self.pooled_stake,
            TensorgridError::InvariantViolated
        );
        check_backed(info, checked_add(self.stake, self.earnings)?, unit)
    }

    pub fn start_job(&mut self, job: Pubkey, collateral: u64) {
        self.active_job = job;
        self.locked_collateral = collateral;
    }

    fn end_job(&mut self) {
        self.active_job = Pubkey::default();
        self.locked_collateral = 0;
    }

    /// Stake that backs neither the active job's collateral nor the verifier pledge.
    pub fn free_stake(&self) -> u64 {
        self.stake
            .saturating_sub(self.locked_collateral)
            .saturating_sub(self.pooled_stake)
    }

    /// Paid `amount` (lamports already moved into this account); the job is done.
    pub fn record_paid(&mut self, amount: u64) -> Result<()> {
        self.end_job();
        self.earnings = checked_add(self.earnings, amount)?;
        self.record.jobs_completed = checked_add(self.record.jobs_completed, 1)?;
        self.record.total_earned = self.record.total_earned.saturating_add(amount);
        Ok(())
    }

    /// `amount` of stake left this account as a penalty (the caller moves the lamports).
    fn lose_stake(&mut self, amount: u64) -> Result<()> {
        self.stake = checked_sub(self.stake, amount)?;
        self.record.total_slashed = self.record.total_slashed.saturating_add(amount);
        self.end_job();
        Ok(())
    }

    pub fn record_abandon(&mut self, penalty: u64) -> Result<()> {
        self.lose_stake(penalty)?;
        self.record.jobs_abandoned = checked_add(self.record.jobs_abandoned, 1)?;
        Ok(())
    }

    pub fn record_missed_deadline(&mut self, slashed: u64) -> Result<()> {
        self.lose_stake(slashed)?;
        self.record.deadlines_missed = checked_add(self.record.deadlines_missed, 1)?;
        Ok(())
    }

    pub fn record_dispute_lost(&mut self, slashed: u64) -> Result<()> {
        self.lose_stake(slashed)?;
        self.record.disputes_lost = checked_add(self.record.disputes_lost, 1)?;
        Ok(())
    }

    /// Takes a verifier seat whose forfeit is `fee`: reserves it out of the pledge (as far as
    /// the pledge not yet reserved goes) and returns the reserve, the most the seat can
    /// forfeit. The stake behind its own job's collateral is never at risk for a seat.
    pub fn take_seat(&mut self, fee: u64) -> Result<u64> {
        let reserve = fee.min(self.pooled_stake.saturating_sub(self.seat_reserve));
        self.seat_reserve = checked_add(self.seat_reserve, reserve)?;
        self.open_seats = self
            .open_seats
            .checked_add(1)
            .ok_or(TensorgridError::ArithmeticOverflow)?;
        Ok(reserve)
    }

    /// `amount` (a verifier fee and any share of forfeits) was paid into this account for a
    /// seat that voted with the majority.
    pub fn record_verifier_fee(&mut self, amount: u64) -> Result<()> {
        self.earnings = checked_add(self.earnings, amount)?;
        self.record.total_earned = self.record.total_earned.saturating_add(amount);
        self.record.verifications = checked_add(self.record.verifications, 1)?;
        Ok(())
    }

    /// A seat whose reserve was `reserve` ended: `fee` lamports were paid into this account as
    /// earnings (the seat voted with the majority) or `forfeit` (at most the reserve) lamports
    /// of pledged stake left it (the caller moves the lamports).
    pub fn leave_seat(&mut self, reserve: u64, fee: u64, forfeit: u64) -> Result<()> {
        ensure!(forfeit <= reserve, TensorgridError::InvariantViolated);
        self.seat_reserve = checked_sub(self.seat_reserve, reserve)?;
        self.open_seats = self
            .open_seats
            .checked_sub(1)
            .ok_or(TensorgridError::ArithmeticOverflow)?;
        if fee > 0 {
            self.earnings = checked_add(self.earnings, fee)?;
            self.record.total_earned = self.record.total_earned.saturating_add(fee);
            self.record.verifications = checked_add(self.record.verifications, 1)?;
        }
        if forfeit > 0 {
            self.stake = checked_sub(self.stake, forfeit)?;
            self.pooled_stake = checked_sub(self.pooled_stake, forfeit)?;
            self.record.total_slashed = self.record.total_slashed.saturating_add(forfeit);
            self.record.verifications_failed = checked_add(self.record.verifications_failed, 1)?;
        }
        Ok(())
    }

    /// Compensation for a frivolous dispute (lamports already moved into this account).
    pub fn record_compensated(&mut self, amount: u64) -> Result<()> {
        self.earnings = checked_add(self.earnings, amount)?;
        self.record.total_earned = self.record.total_earned.saturating_add(amount);
        Ok(())
    }
}
