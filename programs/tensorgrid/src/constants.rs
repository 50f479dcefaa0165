//! PDA seeds and the bounds the program puts on every market parameter, shared with clients.

use anchor_lang::prelude::*;

/// `Market` PDA: `[MARKET_SEED, authority, market_id.to_le_bytes()]`.
#[constant]
pub const MARKET_SEED: &[u8] = b"market";
/// `Worker` PDA: `[WORKER_SEED, market, operator]`.
#[constant]
pub const WORKER_SEED: &[u8] = b"worker";
/// `Job` PDA: `[JOB_SEED, market, poster, job_id.to_le_bytes()]`; the poster chooses `job_id`,
/// so nobody else can take or shift the address of a job the poster has prepared. Ids only
/// grow (`Poster::next_job_id`), so an address names one job forever.
#[constant]
pub const JOB_SEED: &[u8] = b"job";
/// `Poster` PDA: `[POSTER_SEED, market, wallet]`; holds the poster's next job id.
#[constant]
pub const POSTER_SEED: &[u8] = b"poster";

/// A token market's vault, the one token account that holds every amount of the market (what
/// each party is owed is recorded in its own account): `[VAULT_SEED, market]`, owned by the
/// market PDA.
#[constant]
pub const VAULT_SEED: &[u8] = b"vault";

/// `Dispute` PDA: `[DISPUTE_SEED, job]`; a job is disputed at most once (it closes after).
#[constant]
pub const DISPUTE_SEED: &[u8] = b"dispute";
/// `VerifierPool` PDA: `[VERIFIER_POOL_SEED, market]`; the workers that serve as verifiers.
#[constant]
pub const VERIFIER_POOL_SEED: &[u8] = b"verifier_pool";

/// Basis-point denominator: 10_000 bps = 100 %.
#[constant]
pub const BPS_DENOMINATOR: u16 = 10_000;
/// Highest market fee: 20 % of a reward.
#[constant]
pub const MAX_FEE_BPS: u16 = 2_000;
/// Highest collateral a claim may lock: 5 × the job's reward.
#[constant]
pub const MAX_COLLATERAL_BPS: u16 = 50_000;
/// Highest share of a deadline slash paid to the cranker: the poster always gets at least half.
#[constant]
pub const MAX_CRANK_BOUNTY_BPS: u16 = 5_000;
/// Longest challenge window, dispute-resolution window and claim duration: 30 days.
#[constant]
pub const MAX_WINDOW_S: i64 = 30 * 24 * 3_600;
/// Seconds after an abandon or a reclaim during which nobody may claim the job, so its poster
/// sees it open and can cancel (otherwise two colluding workers could pass it back and forth).
#[constant]
pub const REOPEN_COOLDOWN_S: i64 = 600;
/// Workers a job remembers as barred (each abandoned it or missed its deadline); the oldest
/// is forgotten when a ninth is added. (`usize` constants cannot go in the IDL; it appears
/// there as the length of `Job::barred_workers`.)
pub const BARRED_WORKERS: usize = 8;
/// Longest `spec_uri` / `result_uri`, in bytes. (`usize` constants cannot go in the IDL; the
/// limit appears there as the `max_len` of the account fields.)
pub const MAX_URI_LEN: usize = 200;
/// Longest worker hardware label, in bytes.
pub const MAX_LABEL_LEN: usize = 32;
/// Verifiers drawn for a dispute; two matching reveals are a majority.
#[constant]
pub const VERIFIER_SEATS: u8 = 3;
/// Workers a market's verifier pool holds; a joiner with more stake than the smallest entry
/// takes its place. (Appears in the IDL as the length of `VerifierPool::entries`.)
pub const POOL_SIZE: usize = 32;
/// Highest dispute bond: the reward itself.
#[constant]
pub const MAX_BOND_BPS: u16 = 10_000;
