use anchor_lang::prelude::*;

use crate::{
    constants::{DISPUTE_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::DisputeVoted,
    state::{Dispute, Worker},
};

/// A seated verifier's vote: first a commitment, then, once every seat has committed or the
/// commit window has closed, the reveal.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub enum DisputeVoteArgs {
    /// `vote_commitment(hash, salt, worker)`: sha256 of the end-state hash the verifier
    /// reached re-running the segment (all zeros if it could not: the committed start state
    /// was missing or did not hash to its commitment, or the manifest did not hold the
    /// dispute's hashes), a secret 32-byte salt, and its worker account.
    Commit { commitment: [u8; 32] },
    /// The hash and salt committed to.
    Reveal { hash: [u8; 32], salt: [u8; 32] },
}

#[event_cpi]
#[derive(Accounts)]
pub struct DisputeVote<'info> {
    /// The seated verifier's operator.
    pub operator: Signer<'info>,
    /// The seated verifier.
    #[account(
        has_one = operator @ TensorgridError::NotOperator,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The dispute, in its voting phase.
    #[account(
        mut,
        seeds = [DISPUTE_SEED, dispute.job.as_ref()],
        bump = dispute.bump,
    )]
    pub dispute: Account<'info, Dispute>,
}

impl DisputeVote<'_> {
    pub fn handler(ctx: Context<Self>, args: DisputeVoteArgs) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let worker = ctx.accounts.worker.key();
        let dispute = &mut ctx.accounts.dispute;
        let revealed = match args {
            DisputeVoteArgs::Commit { commitment } => {
                dispute.commit(&worker, commitment, now)?;
                None
            }
            DisputeVoteArgs::Reveal { hash, salt } => {
                dispute.reveal(&worker, hash, salt, now)?;
                Some(hash)
            }
        };
        let event = DisputeVoted {
            job: dispute.job,
            dispute: dispute.key(),
            worker,
            revealed,
        };
        emit_event!(ctx, event);
        Ok(())
    }
}
