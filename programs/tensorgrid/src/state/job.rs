use anchor_lang::prelude::*;

use super::{checked_add, rent_exempt_minimum, JobRequirements};
use crate::{constants::MAX_URI_LEN, errors::TensorgridError};

#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Posted, reward escrowed, waiting for a worker.
    Open,
    /// A worker holds it until `deadline`.
    Claimed,
    /// A result is in; the poster may dispute until `challenge_ends_at`.
    Submitted,
    /// The poster disputed; the market authority decides.
    Disputed,
}

/// A training job. The reward is escrowed as lamports in this account above rent; the account
/// is closed on every terminal path (paid, cancelled, refunded).
#[account]
#[derive(InitSpace, Debug)]
pub struct Job {
    pub market: Pubkey,
    pub job_id: u64,
    pub poster: Pubkey,
    pub state: JobState,
    /// Lamports escrowed for the worker (fee included).
    pub reward: u64,
    /// sha256 of the job-spec JSON at `spec_uri`.
    pub spec_hash: [u8; 32],
    #[max_len(200)]
    pub spec_uri: String,
    pub requirements: JobRequirements,
    pub max_duration_s: i64,
    pub created_at: i64,
    /// The `Worker` account holding the job.
    pub worker: Option<Pubkey>,
    pub claimed_at: i64,
    pub deadline: i64,
    /// sha256 of the result manifest.
    pub result_hash: [u8; 32],
    #[max_len(200)]
    pub result_uri: String,
    /// Metric the worker reports, in millionths (e.g. accuracy 0.972 = 972_000).
    pub reported_metric: u64,
    pub submitted_at: i64,
    pub challenge_ends_at: i64,
    pub bump: u8,
}

impl Job {
    pub const SPACE: usize = 8 + Job::INIT_SPACE;

    /// Back to `Open` after an abandon or a reclaim: the escrow stays, the claim is erased.
    pub fn reopen(&mut self) {
        self.state = JobState::Open;
        self.worker = None;
        self.claimed_at = 0;
        self.deadline = 0;
    }

    pub fn invariant(&self, info: &AccountInfo) -> Result<()> {
        let ok_fields = self.reward > 0
            && self.spec_uri.len() <= MAX_URI_LEN
            && self.result_uri.len() <= MAX_URI_LEN;
        let ok_state = match self.state {
            JobState::Open => self.worker.is_none(),
            JobState::Claimed => self.worker.is_some() && self.deadline >= self.claimed_at,
            JobState::Submitted | JobState::Disputed => {
                self.worker.is_some()
                    && self.result_hash != [0; 32]
                    && self.challenge_ends_at >= self.submitted_at
            }
        };
        require!(ok_fields && ok_state, TensorgridError::InvariantViolated);
        // Escrow: the reward is always fully backed while the account lives.
        let needed = checked_add(rent_exempt_minimum(info.data_len())?, self.reward)?;
        require!(
            info.lamports() >= needed,
            TensorgridError::InvariantViolated
        );
        Ok(())
    }
}
