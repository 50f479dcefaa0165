use anchor_lang::prelude::*;

use crate::{constants::BPS_DENOMINATOR, errors::TensorgridError};

/// Tunable economics of a market, set by its authority.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketParams {
    /// Share of each reward paid to the treasury.
    pub fee_bps: u16,
    /// Least stake, in lamports, a worker must hold to register and to claim.
    pub min_stake: u64,
    /// Share of a worker's stake taken on a missed deadline or a lost dispute.
    pub slash_bps: u16,
    /// Share of a worker's stake taken when it abandons a claimed job.
    pub abandon_penalty_bps: u16,
    /// Share of a deadline slash paid to whoever cranks `job_reclaim`; the rest goes to the poster.
    pub crank_bounty_bps: u16,
    /// Seconds after a submission during which the poster may dispute.
    pub challenge_window_s: i64,
    /// Longest `max_duration_s` a job may ask for.
    pub max_claim_s: i64,
}

impl MarketParams {
    pub fn validate(&self) -> Result<()> {
        for bps in [
            self.fee_bps,
            self.slash_bps,
            self.abandon_penalty_bps,
            self.crank_bounty_bps,
        ] {
            require!(bps <= BPS_DENOMINATOR, TensorgridError::InvalidBps);
        }
        require!(
            self.challenge_window_s > 0 && self.max_claim_s > 0,
            TensorgridError::InvalidWindow
        );
        Ok(())
    }
}

#[account]
#[derive(InitSpace, Debug)]
pub struct Market {
    pub authority: Pubkey,
    pub market_id: u64,
    /// Receives the fee share of every paid reward.
    pub treasury: Pubkey,
    pub params: MarketParams,
    /// Number of jobs ever posted; the next job's id.
    pub job_count: u64,
    /// Blocks new posts and claims; everything in flight can still finish.
    pub paused: bool,
    pub bump: u8,
}

impl Market {
    pub fn invariant(&self) -> Result<()> {
        self.params
            .validate()
            .map_err(|_| error!(TensorgridError::InvariantViolated))
    }
}
