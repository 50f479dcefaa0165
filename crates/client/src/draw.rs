//! The verifiers `dispute_draw` seats, computed off-chain the way the program computes them,
//! so a client can pass their accounts (the program checks them against its own draw).

use anchor_lang::prelude::Pubkey;
use tensorgrid::state::{draw_seats, draw_seed, slot_hash_after, Dispute, Job, VerifierPool};

/// What the draw at the current `SlotHashes` gives: `Ok(None)` when fewer than three verifiers
/// are eligible (the dispute then goes to the authority: pass no seats), `Err` when no slot
/// after the dispute's has a hash yet (draw again in a later slot).
pub fn expected_seats(
    pool: Option<&VerifierPool>,
    dispute: &Dispute,
    job: &Job,
    job_key: &Pubkey,
    slot_hashes: &[u8],
) -> Result<Option<[Pubkey; 3]>, TooEarly> {
    let (_, hash) = slot_hash_after(slot_hashes, dispute.disputed_slot).ok_or(TooEarly)?;
    let entries = pool.map(|p| p.entries.to_vec()).unwrap_or_default();
    let seed = draw_seed(&hash, job_key);
    Ok(draw_seats(
        &entries,
        dispute.device,
        &dispute.worker,
        &job.poster,
        &seed,
    ))
}

/// No slot after the dispute's has a hash in `SlotHashes` yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooEarly;

impl std::fmt::Display for TooEarly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no slot after the dispute's has a hash yet: draw in a later slot")
    }
}

impl std::error::Error for TooEarly {}
