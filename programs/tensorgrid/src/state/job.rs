use anchor_lang::prelude::*;

use super::{check_backed, checked_add, checked_add_i64, JobRequirements, JobTerms, Unit};
use crate::{
    constants::{BARRED_WORKERS, MAX_URI_LEN, REOPEN_COOLDOWN_S},
    errors::TensorgridError,
};

/// Where a job is in its lifecycle.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Posted, reward escrowed, waiting for a worker.
    Open,
    /// A worker holds it until `deadline`.
    Claimed,
    /// A result is in; the poster may dispute until `challenge_ends_at`.
    Submitted,
    /// The poster disputed a segment of the result: verifiers re-run it (see `Dispute`), and
    /// if they cannot settle it the market authority rules until `dispute_ends_at`.
    Disputed,
}

/// A training job. The reward (and any penalty owed to the poster) is escrowed as lamports in
/// this account above rent; the account is closed to the poster on every terminal path (paid,
/// cancelled, refunded), so the poster always gets rent and compensation back.
///
/// Layout: every fixed-size field comes before the two URIs, so clients can filter on fixed
/// offsets (`memcmp`) and read fields with `dataSlice`; see `tensorgrid_client::layout`.
#[account]
#[derive(InitSpace, Debug)]
pub struct Job {
    /// The market the job was posted in.
    pub market: Pubkey,
    /// The poster's wallet: receives refunds, rent and compensation.
    pub poster: Pubkey,
    /// The `Worker` account holding the job; `Pubkey::default()` while open.
    pub worker: Pubkey,
    /// Where the job is in its lifecycle.
    pub state: JobState,
    /// Chosen by the poster; unique per poster and market.
    pub job_id: u64,
    /// Lamports escrowed for the worker (fee included).
    pub reward: u64,
    /// Lamports of the worker's stake the current claim puts at risk (0 while open).
    pub collateral: u64,
    /// Penalties paid into this escrow for the poster by abandons and reclaims; returned to
    /// the poster with the rent when the job closes.
    pub compensation: u64,
    /// sha256 of the job-spec JSON at `spec_uri`.
    pub spec_hash: [u8; 32],
    /// sha256 of the result manifest (zero until submitted).
    pub result_hash: [u8; 32],
    /// Metric the worker reports, in millionths (e.g. accuracy 0.972 = 972_000).
    pub reported_metric: u64,
    /// What a worker's device must offer.
    pub requirements: JobRequirements,
    /// Money terms fixed when the job was posted.
    pub terms: JobTerms,
    /// Seconds a worker has, from its claim, to submit.
    pub max_duration_s: i64,
    /// Unix time of posting.
    pub created_at: i64,
    /// Unix time of the current claim (0 while open).
    pub claimed_at: i64,
    /// Unix time by which the claiming worker must submit.
    pub deadline: i64,
    /// Unix time of the submission.
    pub submitted_at: i64,
    /// Unix time until which the poster may dispute.
    pub challenge_ends_at: i64,
    /// Unix time until which the authority may rule on a dispute the verifiers could not
    /// settle; 0 until the dispute is escalated.
    pub dispute_ends_at: i64,
    /// Unix time of the last abandon or reclaim (0 if none); claims wait `REOPEN_COOLDOWN_S`.
    pub reopened_at: i64,
    /// Times the job was given back (abandoned) or reclaimed after a missed deadline.
    pub reopens: u32,
    /// The workers that abandoned the job or missed its deadline, none of which may claim it
    /// again: the latest is at `(reopens - 1) % 8`, and the eight latest are kept (a ninth
    /// replaces the oldest). Unused slots are `Pubkey::default()`.
    pub barred_workers: [Pubkey; 8],
    /// The PDA's bump.
    pub bump: u8,
    /// Where the job spec can be fetched (at most 200 bytes).
    #[max_len(200)]
    pub spec_uri: String,
    /// Where the result can be fetched (at most 200 bytes; empty until submitted).
    #[max_len(200)]
    pub result_uri: String,
}

/// What a worker agrees to by claiming a job: everything the poster fixed when posting that
/// decides the work and the money. A claim names it and is refused on any difference, so a
/// job cannot change between the worker reading it and the claim landing.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobOffer {
    /// Lamports escrowed for the worker, fee included.
    pub reward: u64,
    /// sha256 of the job spec.
    pub spec_hash: [u8; 32],
    /// What the worker's device must offer.
    pub requirements: JobRequirements,
    /// Seconds from the claim to the deadline.
    pub max_duration_s: i64,
    /// The job's money terms (fee, collateral, slash and penalty shares, windows).
    pub terms: JobTerms,
}

const _: () = assert!(BARRED_WORKERS == 8, "Job::barred_workers has 8 slots");

impl Job {
    pub const SPACE: usize = 8 + Job::INIT_SPACE;

    /// What a claim of this job agrees to.
    pub fn offer(&self) -> JobOffer {
        JobOffer {
            reward: self.reward,
            spec_hash: self.spec_hash,
            requirements: self.requirements,
            max_duration_s: self.max_duration_s,
            terms: self.terms,
        }
    }

    /// The job is still what `expected` says (see [`JobOffer`]).
    pub fn require_offer(&self, expected: &JobOffer) -> Result<()> {
        ensure!(self.offer() == *expected, TensorgridError::OfferChanged);
        Ok(())
    }

    /// Whether `worker` abandoned this job or missed its deadline (among the eight latest).
    pub fn is_barred(&self, worker: &Pubkey) -> bool {
        self.barred_workers.contains(worker)
    }

    /// The worker holding the job, if any.
    pub fn holder(&self) -> Option<Pubkey> {
        (self.worker != Pubkey::default()).then_some(self.worker)
    }

    pub fn require_state(&self, state: JobState) -> Result<()> {
        let err = match state {
            JobState::Open => TensorgridError::JobNotOpen,
            JobState::Claimed => TensorgridError::JobNotClaimed,
            JobState::Submitted => TensorgridError::JobNotSubmitted,
            JobState::Disputed => TensorgridError::JobNotDisputed,
        };
        if self.state != state {
            return Err(crate::errors::fail(err));
        }
        Ok(())
    }

    /// The job is held by `worker`.
    pub fn require_assigned(&self, worker: &Pubkey) -> Result<()> {
        ensure!(
            self.holder() == Some(*worker),
            TensorgridError::NotAssignedWorker
        );
        Ok(())
    }

    /// A claimed job whose deadline has not passed.
    pub fn require_before_deadline(&self, now: i64) -> Result<()> {
        ensure!(now <= self.deadline, TensorgridError::DeadlinePassed);
        Ok(())
    }

    /// An open job `worker` may claim at `now`: not one it abandoned or let expire, and not
    /// within the cooldown after a reopen (the poster's window to cancel).
    pub fn require_claimable_by(&self, worker: &Pubkey, now: i64) -> Result<()> {
        self.require_state(JobState::Open)?;
        ensure!(!self.is_barred(worker), TensorgridError::ClaimBarred);
        let cooled =
            self.reopened_at == 0 || now > checked_add_i64(self.reopened_at, REOPEN_COOLDOWN_S)?;
        ensure!(cooled, TensorgridError::JobCoolingDown);
        Ok(())
    }

    /// Open → Claimed by `worker`, which puts `collateral` at risk until `now + max_duration_s`.
    pub fn claim(&mut self, worker: Pubkey, collateral: u64, now: i64) -> Result<()> {
        self.require_claimable_by(&worker, now)?;
        self.state = JobState::Claimed;
        self.worker = worker;
        self.collateral = collateral;
        self.claimed_at = now;
        self.deadline = checked_add_i64(now, self.max_duration_s)?;
        Ok(())
    }

    /// Claimed → Submitted with the result; the challenge window starts.
    pub fn submit(&mut self, hash: [u8; 32], uri: String, metric: u64, now: i64) -> Result<()> {
        self.state = JobState::Submitted;
        self.result_hash = hash;
        self.result_uri = uri;
        self.reported_metric = metric;
        self.submitted_at = now;
        self.challenge_ends_at = checked_add_i64(now, self.terms.challenge_window_s)?;
        Ok(())
    }

    /// Submitted → Disputed, inside the challenge window; verifiers are drawn next.
    pub fn dispute(&mut self, now: i64) -> Result<()> {
        ensure!(
            now <= self.challenge_ends_at,
            TensorgridError::ChallengeWindowClosed
        );
        self.state = JobState::Disputed;
        self.dispute_ends_at = 0;
        Ok(())
    }

    /// The verifiers could not settle the dispute: the authority's window starts at `now`.
    pub fn escalate(&mut self, now: i64) -> Result<()> {
        self.dispute_ends_at = checked_add_i64(now, self.terms.resolve_window_s)?;
        Ok(())
    }

    /// Claimed → Open after an abandon or a reclaim at `now`. `penalty` lamports have been
    /// paid into this escrow for the poster; the worker that lost the job joins the barred
    /// ones (so no pair, or any group of up to eight, of workers can pass the job between
    /// them), and nobody may claim during the cooldown.
    pub fn reopen(&mut self, penalty: u64, now: i64) -> Result<()> {
        self.compensation = checked_add(self.compensation, penalty)?;
        self.reopened_at = now;
        let slot = self.reopens % 8;
        if let Some(barred) = self.barred_workers.get_mut(slot as usize) {
            *barred = self.worker;
        }
        self.reopens = self
            .reopens
            .checked_add(1)
            .ok_or(TensorgridError::ArithmeticOverflow)?;
        self.state = JobState::Open;
        self.worker = Pubkey::default();
        self.collateral = 0;
        self.claimed_at = 0;
        self.deadline = 0;
        Ok(())
    }

    /// What the job's amounts are counted in (its terms' mint).
    pub fn unit(&self) -> Unit {
        Unit::of(&self.terms.mint)
    }

    /// Held for someone (reward and compensation): above rent in a SOL market, in the vault
    /// in a token market.
    pub fn escrowed(&self) -> Result<u64> {
        checked_add(self.reward, self.compensation)
    }

    pub fn invariant(&self, info: &AccountInfo) -> Result<()> {
        let ok_fields = self.reward > 0
            && self.spec_uri.len() <= MAX_URI_LEN
            && self.result_uri.len() <= MAX_URI_LEN;
        let held = self.holder().is_some();
        let ok_state = match self.state {
            JobState::Open => !held && self.collateral == 0,
            JobState::Claimed => held && self.deadline >= self.claimed_at,
            JobState::Submitted => {
                held && self.result_hash != [0; 32] && self.challenge_ends_at >= self.submitted_at
            }
            JobState::Disputed => held && self.result_hash != [0; 32],
        };
        ensure!(ok_fields && ok_state, TensorgridError::InvariantViolated);
        check_backed(info, self.escrowed()?, self.unit())
    }
}
