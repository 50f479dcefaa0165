//! The committed training states of a submitted result. The manifest commits to each state's
//! hash; the states themselves stay in the job's work directory and one is published beside
//! the result only when somebody asks for it, so a result costs its weights and a few
//! kilobytes of hashes rather than fifty copies of the model:
//! - a request memo (`tensorgrid_client::state_requests`) in the poster's recent history,
//!   read while the job can still be disputed (`job verify --spot-check` sends one);
//! - a dispute of segment `i`, whose verifiers need state `i`: a worker that does not serve
//!   it by the middle of the commit window is voted a fraud.
//!
//! Each state is published once; a failure is tried again at the next pass.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use tensorgrid_artifacts::result;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    state::{Job, JobState},
    state_requests,
};
use tensorgrid_train::manifest;

use crate::pipeline::{out_dir, Worker};

/// How many of the poster's latest transactions are read for requests at each pass.
const HISTORY: usize = 200;

/// The states published so far, by job (forgotten when the job closes).
#[derive(Debug, Default)]
pub struct Served(Mutex<BTreeMap<Pubkey, BTreeSet<usize>>>);

impl Served {
    fn has(&self, job: &Pubkey, segment: usize) -> bool {
        self.0
            .lock()
            .expect("served lock")
            .get(job)
            .is_some_and(|s| s.contains(&segment))
    }

    fn add(&self, job: Pubkey, segment: usize) {
        self.0
            .lock()
            .expect("served lock")
            .entry(job)
            .or_default()
            .insert(segment);
    }

    pub fn forget(&self, job: &Pubkey) {
        self.0.lock().expect("served lock").remove(job);
    }

    /// Segments of `job` published so far.
    pub fn of(&self, job: &Pubkey) -> Vec<usize> {
        self.0
            .lock()
            .expect("served lock")
            .get(job)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Publishes every state asked for of `job` (submitted or disputed, held by this worker):
/// those its poster's recent memos name and the disputed segment's. Best effort: what fails
/// is tried again at the next pass.
pub async fn serve(w: &Worker, job: Pubkey, account: &Job) {
    if !matches!(account.state, JobState::Submitted | JobState::Disputed) {
        return;
    }
    let out = out_dir(&w.work, &job);
    let Ok(m) = manifest::read(&out) else {
        // Work directory wiped: nothing to serve (a dispute then finds the state withheld).
        tracing::debug!(%job, "no result here to serve states from");
        return;
    };
    let segments = m.commitments.segments();
    let mut wanted = BTreeSet::new();
    match w.chain.memos_for(&account.poster, HISTORY).await {
        Ok(memos) => {
            for memo in memos {
                wanted.extend(state_requests::requested(&memo, &job, segments));
            }
        }
        Err(e) => tracing::debug!(%job, error = %e, "reading state requests"),
    }
    if account.state == JobState::Disputed {
        match w.chain.dispute_of(&job).await {
            Ok(Some(d)) if (d.segment as usize) < segments => {
                wanted.insert(d.segment as usize);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(%job, error = %e, "reading the dispute"),
        }
    }
    for segment in wanted {
        if w.states.has(&job, segment) {
            continue;
        }
        let Some(name) = m.commitments.start_file(segment) else {
            continue;
        };
        match result::publish_beside(&w.store, &format!("results/{job}"), &out, &name).await {
            Ok(uri) => {
                w.states.add(job, segment);
                tracing::info!(%job, segment, %uri, "published a committed state asked for");
            }
            Err(e) => {
                tracing::warn!(%job, segment, error = %e, "publishing a committed state asked for")
            }
        }
    }
}
