//! One event per state change, emitted with `emit_cpi!` so that clients read them back from the
//! transaction's inner instructions (logs can be truncated; inner instructions cannot).

use anchor_lang::prelude::*;

use crate::state::{Hardware, JobRequirements, MarketParams};

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketInitialized {
    pub market: Pubkey,
    pub authority: Pubkey,
    pub market_id: u64,
    pub treasury: Pubkey,
    pub params: MarketParams,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketUpdated {
    pub market: Pubkey,
    pub treasury: Pubkey,
    pub params: MarketParams,
    pub paused: bool,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRegistered {
    pub market: Pubkey,
    pub worker: Pubkey,
    pub operator: Pubkey,
    pub stake: u64,
    pub hardware: Hardware,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerUpdated {
    pub worker: Pubkey,
    pub stake: u64,
    pub hardware: Hardware,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerDeregistered {
    pub worker: Pubkey,
    pub operator: Pubkey,
    /// Stake plus rent returned to the operator.
    pub returned: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPosted {
    pub market: Pubkey,
    pub job: Pubkey,
    pub job_id: u64,
    pub poster: Pubkey,
    pub reward: u64,
    pub spec_hash: [u8; 32],
    pub spec_uri: String,
    pub requirements: JobRequirements,
    pub max_duration_s: i64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCancelled {
    pub job: Pubkey,
    pub job_id: u64,
    /// Reward plus rent returned to the poster.
    pub refunded: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobClaimed {
    pub job: Pubkey,
    pub job_id: u64,
    pub worker: Pubkey,
    pub deadline: i64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAbandoned {
    pub job: Pubkey,
    pub job_id: u64,
    pub worker: Pubkey,
    /// Stake moved to the poster.
    pub penalty: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSubmitted {
    pub job: Pubkey,
    pub job_id: u64,
    pub worker: Pubkey,
    pub result_hash: [u8; 32],
    pub result_uri: String,
    pub reported_metric: u64,
    pub challenge_ends_at: i64,
}

/// How a job reached `Paid`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    AcceptedByPoster,
    FinalizedAfterWindow,
    ResolvedForWorker,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPaid {
    pub job: Pubkey,
    pub job_id: u64,
    pub worker: Pubkey,
    pub settlement: Settlement,
    /// Reward minus fee, to the worker's operator.
    pub payout: u64,
    /// Fee, to the treasury.
    pub fee: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDisputed {
    pub job: Pubkey,
    pub job_id: u64,
    pub worker: Pubkey,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRefunded {
    pub job: Pubkey,
    pub job_id: u64,
    pub worker: Pubkey,
    /// Reward plus rent returned to the poster.
    pub refunded: u64,
    /// Stake moved from the worker to the poster.
    pub slashed: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReclaimed {
    pub job: Pubkey,
    pub job_id: u64,
    pub worker: Pubkey,
    pub cranker: Pubkey,
    /// Stake moved to the poster.
    pub to_poster: u64,
    /// Stake moved to the cranker.
    pub bounty: u64,
}
