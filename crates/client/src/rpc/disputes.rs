//! Disputes over RPC: reading them, and the draw a client sends (its seats computed here the
//! way the program computes them).

use anchor_lang::{prelude::Pubkey, Discriminator};
use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};

use super::{ChainClient, ChainError};
use crate::{
    draw, instructions as ix, layout, pda,
    state::{Dispute, DisputePhase, Job, VerifierPool},
};

/// A dispute found by a scan.
#[derive(Debug, Clone)]
pub struct DisputeEntry {
    pub pubkey: Pubkey,
    pub dispute: Dispute,
}

/// What a draw can do now.
#[derive(Debug, Clone)]
pub enum Draw {
    /// Send this instruction.
    Ready(ix::Instruction),
    /// No slot after the dispute's has a hash yet: try again shortly.
    TooEarly,
    /// Already drawn (or escalated).
    Done,
}

impl ChainClient {
    /// Every dispute of the program, or those in `phase`, sorted by address.
    pub async fn disputes(
        &self,
        phase: Option<DisputePhase>,
    ) -> Result<Vec<DisputeEntry>, ChainError> {
        let mut filters = vec![RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
            0,
            Dispute::DISCRIMINATOR.to_vec(),
        ))];
        if let Some(p) = phase {
            filters.push(RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                layout::dispute::PHASE,
                vec![p as u8],
            )));
        }
        let mut out = Vec::new();
        for (pubkey, data) in self.program_accounts(filters, None).await? {
            let dispute =
                crate::decode_account::<Dispute>(&data).map_err(|e| ChainError::Decode {
                    pubkey,
                    expected: "Dispute",
                    reason: e.to_string(),
                })?;
            out.push(DisputeEntry { pubkey, dispute });
        }
        out.sort_by_key(|d| d.pubkey);
        Ok(out)
    }

    /// Disputes in their voting phase where `worker` holds a seat.
    pub async fn seats_of(&self, worker: &Pubkey) -> Result<Vec<DisputeEntry>, ChainError> {
        Ok(self
            .disputes(Some(DisputePhase::Voting))
            .await?
            .into_iter()
            .filter(|d| d.dispute.seats.iter().any(|s| s.worker == *worker))
            .collect())
    }

    /// The dispute of `job`, if any.
    pub async fn dispute_of(&self, job: &Pubkey) -> Result<Option<Dispute>, ChainError> {
        self.fetch::<Dispute>(&pda::dispute(job)).await
    }

    /// The `dispute_draw` for `job`'s dispute as the chain stands now, with the seats the
    /// program will draw.
    pub async fn draw(&self, job_key: &Pubkey) -> Result<Draw, ChainError> {
        let Some(dispute) = self.dispute_of(job_key).await? else {
            return Ok(Draw::Done);
        };
        if dispute.phase != DisputePhase::Drawing {
            return Ok(Draw::Done);
        }
        let job: Job = self.require(job_key).await?;
        let pool: Option<VerifierPool> = self.fetch(&pda::verifier_pool(&job.market)).await?;
        let slot_hashes = self
            .account(&crate::tensorgrid::instructions::SLOT_HASHES_ID)
            .await?
            .map(|a| a.data)
            .unwrap_or_default();
        match draw::expected_seats(pool.as_ref(), &dispute, &job, job_key, &slot_hashes) {
            Err(draw::TooEarly) => Ok(Draw::TooEarly),
            Ok(seats) => Ok(Draw::Ready(ix::dispute_draw(
                job.market,
                *job_key,
                seats.as_ref().map(|s| &s[..]).unwrap_or(&[]),
            ))),
        }
    }
}
