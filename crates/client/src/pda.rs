//! Program-derived addresses, from the seeds the program itself declares.

use anchor_lang::prelude::Pubkey;
use tensorgrid::constants::{
    DISPUTE_SEED, JOB_SEED, MARKET_SEED, POSTER_SEED, VERIFIER_POOL_SEED, WORKER_SEED,
};

use crate::program_id;

pub fn market(authority: &Pubkey, market_id: u64) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[MARKET_SEED, authority.as_ref(), &market_id.to_le_bytes()],
        &program_id(),
    )
}

pub fn worker(market: &Pubkey, operator: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[WORKER_SEED, market.as_ref(), operator.as_ref()],
        &program_id(),
    )
}

/// A poster's account in a market: its job-id counter.
pub fn poster(market: &Pubkey, wallet: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[POSTER_SEED, market.as_ref(), wallet.as_ref()],
        &program_id(),
    )
}

/// A job's address: the poster picks `job_id`, so the address is known before posting and
/// nobody else can take it.
pub fn job(market: &Pubkey, poster: &Pubkey, job_id: u64) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[
            JOB_SEED,
            market.as_ref(),
            poster.as_ref(),
            &job_id.to_le_bytes(),
        ],
        &program_id(),
    )
}

/// A job's dispute (a job is disputed at most once).
pub fn dispute(job: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[DISPUTE_SEED, job.as_ref()], &program_id()).0
}

/// A market's verifier pool.
pub fn verifier_pool(market: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[VERIFIER_POOL_SEED, market.as_ref()], &program_id()).0
}

/// Signer PDA Anchor uses for `emit_cpi!` self-invocations.
pub fn event_authority() -> Pubkey {
    Pubkey::find_program_address(&[b"__event_authority"], &program_id()).0
}
