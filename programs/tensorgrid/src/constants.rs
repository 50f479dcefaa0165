//! PDA seeds and limits shared by the program and its clients.

use anchor_lang::prelude::*;

/// `Market` PDA: `[MARKET_SEED, authority, market_id.to_le_bytes()]`.
#[constant]
pub const MARKET_SEED: &[u8] = b"market";
/// `Worker` PDA: `[WORKER_SEED, market, operator]`.
#[constant]
pub const WORKER_SEED: &[u8] = b"worker";
/// `Job` PDA: `[JOB_SEED, market, job_id.to_le_bytes()]`.
#[constant]
pub const JOB_SEED: &[u8] = b"job";

/// Basis-point denominator: 10_000 bps = 100 %.
#[constant]
pub const BPS_DENOMINATOR: u16 = 10_000;
/// Longest `spec_uri` / `result_uri`, in bytes. (`usize` constants cannot go in the IDL; the
/// limit appears there as the `max_len` of the account fields.)
pub const MAX_URI_LEN: usize = 200;
/// Longest worker hardware label, in bytes.
pub const MAX_LABEL_LEN: usize = 32;
