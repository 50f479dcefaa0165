use serde::Serialize;
use tensorgrid_client::{anchor_lang::prelude::Pubkey, state::Job};

use crate::{
    describe::{clean, metric, requirement_name, state_name},
    output::fields,
    units::{duration, money, when},
};

/// A job as the CLI reports it (JSON field names are stable; amounts in lamports, times in
/// unix seconds).
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub address: String,
    pub job_id: u64,
    pub market: String,
    pub poster: String,
    pub state: &'static str,
    pub reward: u64,
    pub fee: u64,
    pub worker_payout: u64,
    pub collateral: u64,
    pub compensation: u64,
    pub spec_uri: String,
    pub spec_hash: String,
    pub requires: String,
    pub max_duration_s: i64,
    pub created_at: i64,
    pub worker: Option<String>,
    /// Unix seconds; `null` until it applies.
    pub claimed_at: Option<i64>,
    /// Unix seconds; `null` until it applies.
    pub deadline: Option<i64>,
    pub result_uri: Option<String>,
    pub result_hash: Option<String>,
    pub reported_metric: Option<f64>,
    /// Unix seconds; `null` until it applies.
    pub submitted_at: Option<i64>,
    /// Unix seconds; `null` until it applies.
    pub challenge_ends_at: Option<i64>,
    /// Unix seconds; `null` until it applies.
    pub dispute_ends_at: Option<i64>,
}

/// A time the program leaves at 0 until it applies (no deadline before a claim).
fn set(t: i64) -> Option<i64> {
    (t != 0).then_some(t)
}

impl JobView {
    pub fn new(address: &Pubkey, job: &Job) -> Self {
        let payout = job.terms.payout(job.reward).ok();
        let submitted = job.result_hash != [0; 32];
        Self {
            address: address.to_string(),
            job_id: job.job_id,
            market: job.market.to_string(),
            poster: job.poster.to_string(),
            state: state_name(job.state),
            reward: job.reward,
            fee: payout.map_or(0, |p| p.fee),
            worker_payout: payout.map_or(0, |p| p.to_worker),
            collateral: job.collateral,
            compensation: job.compensation,
            spec_uri: job.spec_uri.clone(),
            spec_hash: hex::encode(job.spec_hash),
            requires: requirement_name(&job.requirements),
            max_duration_s: job.max_duration_s,
            created_at: job.created_at,
            worker: job.holder().map(|w| w.to_string()),
            claimed_at: set(job.claimed_at),
            deadline: set(job.deadline),
            result_uri: submitted.then(|| job.result_uri.clone()),
            result_hash: submitted.then(|| hex::encode(job.result_hash)),
            reported_metric: submitted.then(|| metric(job.reported_metric)),
            submitted_at: set(job.submitted_at),
            challenge_ends_at: set(job.challenge_ends_at),
            dispute_ends_at: set(job.dispute_ends_at),
        }
    }

    /// The fields a person needs, with times relative to the chain's `now`.
    pub fn display(&self, now: i64, worker_hardware: Option<String>) -> String {
        let mut rows = vec![
            ("job", format!("{} (id {})", self.address, self.job_id)),
            ("state", self.state.to_string()),
            (
                "reward",
                format!(
                    "{} ({} to the worker, fee {})",
                    money(self.reward),
                    money(self.worker_payout),
                    money(self.fee)
                ),
            ),
            ("poster", self.poster.clone()),
            ("market", self.market.clone()),
            (
                "spec",
                format!("{} (sha256 {})", self.spec_uri, self.spec_hash),
            ),
            (
                "requires",
                format!(
                    "{}, {} from claim to result",
                    self.requires,
                    duration(self.max_duration_s)
                ),
            ),
            ("posted", when(self.created_at, now)),
        ];
        if self.compensation > 0 {
            rows.push((
                "compensation",
                format!("{} owed to the poster", money(self.compensation)),
            ));
        }
        if let Some(w) = &self.worker {
            let hw = worker_hardware.map_or(String::new(), |h| format!(" — {h}"));
            rows.push(("worker", format!("{w}{hw}")));
            rows.push(("stake at risk", money(self.collateral)));
            rows.push(("claimed", when(self.claimed_at.unwrap_or(0), now)));
            if self.state == "claimed" {
                rows.push(("deadline", when(self.deadline.unwrap_or(0), now)));
            }
        }
        if let (Some(uri), Some(hash)) = (&self.result_uri, &self.result_hash) {
            rows.push(("result", format!("{} (sha256 {hash})", clean(uri))));
            if let Some(m) = self.reported_metric {
                rows.push(("reported metric", format!("{m}")));
            }
            rows.push(("submitted", when(self.submitted_at.unwrap_or(0), now)));
            if self.state == "submitted" {
                rows.push((
                    "dispute until",
                    when(self.challenge_ends_at.unwrap_or(0), now),
                ));
            }
        }
        if let (true, Some(t)) = (self.state == "disputed", self.dispute_ends_at) {
            rows.push(("ruling until", when(t, now)));
        }
        fields(&rows)
    }
}
