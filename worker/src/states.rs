//! The committed training states of a submitted result. The manifest commits to each state's
//! hash; the states themselves stay in the job's work directory and one is published beside
//! the result only when somebody asks for it, so a result costs its weights and a few
//! kilobytes of hashes rather than fifty copies of the model:
//! - a dispute of segment `i`, whose verifiers need state `i`: a worker that does not serve
//!   it by the middle of the commit window is voted a fraud, so it is published first, on its
//!   own, at every pass until it is;
//! - a request memo (`tensorgrid_client::state_requests`) in the poster's history, read
//!   while the job can still be disputed (`job verify --spot-check` sends one): a few per
//!   pass, so a flood of requests cannot hold up the rest of the worker's loop.
//!
//! Each state is published once (one already in the store is not uploaded again after a
//! restart); a failure is tried again at the next pass.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use tensorgrid_artifacts::result;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    rpc::Signature,
    state::{Dispute, Job, JobState},
    state_requests,
};
use tensorgrid_train::manifest::{self, Manifest};

use crate::pipeline::{out_dir, Worker};

/// How many of the poster's transactions are read for requests at once (one RPC page; later
/// reads start where the last one ended).
const HISTORY: usize = 1_000;
/// Requested states uploaded per pass (the disputed one comes on top).
const PER_PASS: usize = 4;

/// What is known of one job's states.
#[derive(Debug, Default)]
struct JobStates {
    published: BTreeSet<usize>,
    /// Asked for, not yet published.
    pending: BTreeSet<usize>,
    /// The newest of the poster's transactions read so far.
    read_until: Option<Signature>,
    /// Said once that the result is not here to serve from.
    said_missing: bool,
}

/// The states published and asked for, by job (forgotten when the job closes).
#[derive(Debug, Default)]
pub struct Served(Mutex<BTreeMap<Pubkey, JobStates>>);

impl Served {
    fn with<T>(&self, job: &Pubkey, f: impl FnOnce(&mut JobStates) -> T) -> T {
        f(self.0.lock().expect("served lock").entry(*job).or_default())
    }

    pub fn forget(&self, job: &Pubkey) {
        self.0.lock().expect("served lock").remove(job);
    }
}

/// Publishes what is asked for of `job` (submitted or disputed, held by this worker): the
/// state of `dispute`'s segment first, then a few of those its poster's memos name. Best effort:
/// what fails is tried again at the next pass.
pub async fn serve(w: &Worker, job: Pubkey, account: &Job, dispute: Option<&Dispute>) {
    if !matches!(account.state, JobState::Submitted | JobState::Disputed) {
        return;
    }
    let out = out_dir(&w.work, &job);
    let Ok(m) = manifest::read(&out) else {
        // Work directory wiped: nothing to serve (a dispute then finds the state withheld).
        // Said once per job, not at every pass.
        if !w
            .states
            .with(&job, |s| std::mem::replace(&mut s.said_missing, true))
        {
            tracing::warn!(%job, "no result here to serve committed states from");
        }
        return;
    };
    if let Some(d) = dispute {
        publish(w, &job, &m, d.segment as usize).await;
    }
    read_requests(w, &job, &account.poster, m.commitments.segments()).await;
    let next: Vec<usize> = w
        .states
        .with(&job, |s| s.pending.iter().take(PER_PASS).copied().collect());
    for segment in next {
        publish(w, &job, &m, segment).await;
    }
}

/// Adds the segments the poster's transactions since the last read ask for.
async fn read_requests(w: &Worker, job: &Pubkey, poster: &Pubkey, segments: usize) {
    let until = w.states.with(job, |s| s.read_until);
    match w.chain.memos_for(poster, HISTORY, until.as_ref()).await {
        Ok((memos, newest)) => w.states.with(job, |s| {
            for memo in &memos {
                for i in state_requests::requested(memo, job, segments) {
                    if !s.published.contains(&i) {
                        s.pending.insert(i);
                    }
                }
            }
            if newest.is_some() {
                s.read_until = newest;
            }
        }),
        Err(e) => tracing::debug!(%job, error = %e, "reading state requests"),
    }
}

/// Publishes segment `segment`'s start state beside the result, once.
async fn publish(w: &Worker, job: &Pubkey, m: &Manifest, segment: usize) {
    if w.states.with(job, |s| s.published.contains(&segment)) {
        return;
    }
    let Some(name) = m.commitments.start_file(segment) else {
        w.states.with(job, |s| s.pending.remove(&segment));
        return;
    };
    let prefix = format!("results/{job}");
    let done = |s: &mut JobStates| {
        s.pending.remove(&segment);
        s.published.insert(segment);
    };
    // Published before a restart: not uploaded again.
    if let Ok(Some(_)) = w.store.size(&format!("{prefix}/{name}")).await {
        w.states.with(job, done);
        return;
    }
    match result::publish_beside(&w.store, &prefix, &out_dir(&w.work, job), &name).await {
        Ok(uri) => {
            w.states.with(job, done);
            tracing::info!(%job, segment, %uri, "published a committed state asked for");
        }
        Err(e) => {
            tracing::warn!(%job, segment, error = %e, "publishing a committed state asked for")
        }
    }
}
