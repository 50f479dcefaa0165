use anchor_lang::prelude::*;

use super::{checked_add, checked_sub, rent_exempt_minimum, Hardware};
use crate::errors::TensorgridError;

/// A compute provider registered in one market. Its stake is held as lamports in this account,
/// above the rent-exempt minimum.
#[account]
#[derive(InitSpace, Debug)]
pub struct Worker {
    pub market: Pubkey,
    pub operator: Pubkey,
    /// Lamports at stake (excludes rent).
    pub stake: u64,
    pub hardware: Hardware,
    /// Id of the job this worker holds (claimed, submitted or disputed), if any.
    pub active_job: Option<u64>,
    pub jobs_completed: u64,
    pub jobs_abandoned: u64,
    pub jobs_slashed: u64,
    /// Lamports earned in rewards, net of fees.
    pub total_earned: u64,
    pub registered_at: i64,
    pub bump: u8,
}

impl Worker {
    pub const SPACE: usize = 8 + Worker::INIT_SPACE;

    /// The account's lamports must cover rent plus the recorded stake.
    pub fn invariant(&self, info: &AccountInfo) -> Result<()> {
        self.hardware
            .validate()
            .map_err(|_| error!(TensorgridError::InvariantViolated))?;
        let needed = checked_add(rent_exempt_minimum(info.data_len())?, self.stake)?;
        require!(
            info.lamports() >= needed,
            TensorgridError::InvariantViolated
        );
        Ok(())
    }

    /// Takes `amount` from the recorded stake (the caller moves the lamports).
    pub fn take_stake(&mut self, amount: u64) -> Result<()> {
        self.stake = checked_sub(self.stake, amount)?;
        Ok(())
    }
}
