use anchor_lang::prelude::*;

use super::{check_backed, checked_add, checked_sub, Hardware};
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
    /// Disputes the authority resolved for the poster.
    pub disputes_lost: u64,
    /// Disputes that timed out unresolved (refunded without a slash).
    pub disputes_expired: u64,
    /// Lamports earned in rewards, net of fees.
    pub total_earned: u64,
    /// Lamports of stake lost to penalties and slashes.
    pub total_slashed: u64,
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

    pub fn require_registered(&self) -> Result<()> {
        ensure!(self.registered, TensorgridError::WorkerDeregistered);
        Ok(())
    }

    /// The account's lamports cover rent, stake and earnings; a deregistered worker holds
    /// nothing and no job.
    pub fn invariant(&self, info: &AccountInfo) -> Result<()> {
        self.hardware
            .validate()
            .map_err(|_| crate::errors::fail(TensorgridError::InvariantViolated))?;
        ensure!(
            self.registered || (self.stake == 0 && self.active().is_none()),
            TensorgridError::InvariantViolated
        );
        check_backed(info, checked_add(self.stake, self.earnings)?)
    }

    pub fn start_job(&mut self, job: Pubkey) {
        self.active_job = job;
    }

    /// Paid `amount` (lamports already moved into this account); the job is done.
    pub fn record_paid(&mut self, amount: u64) -> Result<()> {
        self.active_job = Pubkey::default();
        self.earnings = checked_add(self.earnings, amount)?;
        self.record.jobs_completed = checked_add(self.record.jobs_completed, 1)?;
        self.record.total_earned = checked_add(self.record.total_earned, amount)?;
        Ok(())
    }

    /// `amount` of stake left this account as a penalty (the caller moves the lamports).
    fn lose_stake(&mut self, amount: u64) -> Result<()> {
        self.stake = checked_sub(self.stake, amount)?;
        self.record.total_slashed = checked_add(self.record.total_slashed, amount)?;
        self.active_job = Pubkey::default();
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

    pub fn record_dispute_expired(&mut self) -> Result<()> {
        self.active_job = Pubkey::default();
        self.record.disputes_expired = checked_add(self.record.disputes_expired, 1)?;
        Ok(())
    }
}
