//! The verifiers `dispute_draw` seats, computed off-chain the way the program computes them,
//! so a client can pass their accounts (the program checks them against its own draw).

use anchor_lang::prelude::Pubkey;
use tensorgrid::state::{
    draw_seats, draw_seed, slot_hash_after, Dispute, Job, SlotDraw, VerifierPool,
};

/// What the draw at the current `SlotHashes` gives: `Ok(None)` when fewer than three verifiers
/// are eligible or the draw's slot has left the sysvar (the dispute then goes to the
/// authority: pass no seats), `Err` when no slot after the dispute's has a hash yet (draw
/// again in a later slot).
pub fn expected_seats(
    pool: Option<&VerifierPool>,
    dispute: &Dispute,
    job: &Job,
    job_key: &Pubkey,
    slot_hashes: &[u8],
) -> Result<Option<[Pubkey; 3]>, TooEarly> {
    let hash = match slot_hash_after(slot_hashes, dispute.disputed_slot) {
        Some(SlotDraw::Hash(_, hash)) => hash,
        Some(SlotDraw::Expired) => return Ok(None),
        Some(SlotDraw::TooEarly) | None => return Err(TooEarly),
    };
    // A pool created after the dispute is not the dispute's to draw from.
    let entries = match pool {
        Some(p) if dispute.pool_frozen => p.entries.to_vec(),
        _ => Vec::new(),
    };
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
