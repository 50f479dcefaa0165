//! A verifier's judgement of a disputed segment: fetch what the on-chain result commits to,
//! re-run the one segment off the async runtime, and decide the hash to reveal by the rule in
//! `tensorgrid_train::dispute` (the same for every honest verifier).
//!
//! Who is at fault for what cannot be fetched decides the vote: the result (manifest, state
//! files) is the worker's to keep published, so a result that is gone or altered is a fraud
//! (zeros); the spec and the dataset are the poster's, so when they are gone or altered the
//! worker is upheld (the dispute's own end hash). A network failure decides nothing: it is
//! retried.

use std::path::{Path, PathBuf};

use tensorgrid_artifacts::{fetch, result, sha256_hex, ArtifactError};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    state::{Dispute, Job},
};
use tensorgrid_train::{
    commit, data,
    dispute::{segment_verdict, SegmentVerdict},
    manifest::{self, Manifest},
    spec::JobSpec,
};

use crate::pipeline::Worker;

/// The most a spec may be.
const MAX_SPEC_BYTES: u64 = 1 << 20;
/// The most a result (weights, metrics, two states) may be.
const MAX_RESULT_BYTES: u64 = 4 << 30;

/// What to reveal, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub vote: [u8; 32],
    pub why: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// Try again later (a network failure, a store's 5xx).
    #[error("{0}")]
    Transient(String),
    /// This machine cannot judge this result (another device class): it must not vote.
    #[error("cannot judge here: {0}")]
    CannotJudge(String),
}

impl Judgement {
    fn upheld(d: &Dispute, why: impl Into<String>) -> Self {
        Self {
            vote: d.end_hash,
            why: why.into(),
        }
    }

    fn fraud(why: impl Into<String>) -> Self {
        Self {
            vote: [0; 32],
            why: why.into(),
        }
    }
}

/// Where a dispute's files are kept while it is judged.
pub fn dispute_dir(w: &Worker, dispute: &Pubkey) -> PathBuf {
    w.work.root().join("disputes").join(dispute.to_string())
}

fn transient_or(
    e: ArtifactError,
    decided: impl FnOnce(String) -> Judgement,
) -> Result<Judgement, JudgeError> {
    if e.is_transient() {
        Err(JudgeError::Transient(e.to_string()))
    } else {
        Ok(decided(e.to_string()))
    }
}

/// Judges `dispute` of `job` as this worker's device re-runs it.
pub async fn judge(
    w: &Worker,
    dispute_key: &Pubkey,
    job: &Job,
    dispute: &Dispute,
) -> Result<Judgement, JudgeError> {
    let policy = w.read_policy();
    let dir = dispute_dir(w, dispute_key);
    // The poster's spec: gone or altered, the worker is not at fault.
    let spec_bytes = match fetch(&job.spec_uri, MAX_SPEC_BYTES, &policy).await {
        Ok(b) => b,
        Err(e) => return transient_or(e, |e| Judgement::upheld(dispute, format!("the spec: {e}"))),
    };
    if sha256_hex(&spec_bytes) != hex::encode(job.spec_hash) {
        return Ok(Judgement::upheld(
            dispute,
            "the spec is not the one the job names",
        ));
    }
    let spec = match JobSpec::from_json(&spec_bytes) {
        Ok(s) => s,
        Err(e) => return Ok(Judgement::upheld(dispute, format!("the spec: {e}"))),
    };
    // The worker's result: gone or altered, it is a fraud.
    let committed = hex::encode(job.result_hash);
    let got = match result::download(
        &job.result_uri,
        &dir,
        MAX_RESULT_BYTES,
        Some(&committed),
        &policy,
    )
    .await
    {
        Ok(g) => g,
        Err(e) => return transient_or(e, |e| Judgement::fraud(format!("the result: {e}"))),
    };
    if !got.complete {
        return Ok(Judgement::fraud(
            "the manifest at the result URI is not the one the result hash commits to",
        ));
    }
    let m = match manifest::read(&dir) {
        Ok(m) => m,
        Err(e) => return Ok(Judgement::fraud(format!("the manifest: {e}"))),
    };
    if let Err(e) = fetch_states(&job.result_uri, &m, dispute.segment as usize, &dir, &policy).await
    {
        if e.is_transient() {
            return Err(JudgeError::Transient(e.to_string()));
        }
        // A state file that is not there fails the re-run below, which says so.
        tracing::info!(error = %e, "a committed state of the disputed result");
    }
    // The poster's dataset: gone or altered, the worker is not at fault.
    let cap = spec
        .limits
        .max_dataset_bytes
        .min(w.config.max_dataset_bytes);
    let data_bytes = match fetch(&spec.dataset.uri, cap, &policy).await {
        Ok(b) => b,
        Err(e) => {
            return transient_or(e, |e| {
                Judgement::upheld(dispute, format!("the dataset: {e}"))
            })
        }
    };
    if sha256_hex(&data_bytes) != spec.dataset.sha256.to_ascii_lowercase() {
        return Ok(Judgement::upheld(
            dispute,
            "the dataset is not the one the spec names",
        ));
    }
    let (device, d, dir2) = (w.device.clone(), dispute.clone(), dir.clone());
    let run = tokio::task::spawn_blocking(move || {
        let split = data::split(&spec, &data_bytes)?;
        segment_verdict(
            &spec,
            &split,
            &dir2,
            &m,
            d.segment as usize,
            &hex::encode(d.start_hash),
            &hex::encode(d.end_hash),
            &device,
        )
    })
    .await
    .map_err(|e| JudgeError::CannotJudge(format!("the re-run stopped: {e}")))?;
    let verdict = match run {
        Ok(v) => v,
        Err(tensorgrid_train::Error::Device(e)) => return Err(JudgeError::CannotJudge(e)),
        // The spec's own data does not build: the poster's doing.
        Err(e) => return Ok(Judgement::upheld(dispute, format!("the job's data: {e}"))),
    };
    let why = match &verdict {
        SegmentVerdict::Misquoted => "the dispute does not quote the result's commitments".into(),
        SegmentVerdict::Broken(p) => format!("the result cannot be re-run: {p}"),
        SegmentVerdict::Reached(h) if h == &hex::encode(dispute.end_hash) => {
            "the segment re-ran to the committed state".into()
        }
        SegmentVerdict::Reached(h) => format!("the segment re-ran to {h}, not the committed state"),
    };
    Ok(Judgement {
        vote: verdict.vote(&dispute.end_hash),
        why,
    })
}

/// Downloads the disputed segment's start state and the last state (which ties the chain to
/// the weights), each only under the name its hash gives it.
async fn fetch_states(
    result_uri: &str,
    m: &Manifest,
    segment: usize,
    dir: &Path,
    policy: &tensorgrid_artifacts::ReadPolicy,
) -> Result<(), ArtifactError> {
    let c = &m.commitments;
    let wanted = [segment, c.states.len().saturating_sub(1)];
    for i in wanted {
        let (Some(e), Some(h)) = (c.states.get(i), c.state_hashes.get(i)) else {
            continue;
        };
        if !commit::named_for(e, h) || dir.join(&e.path).exists() {
            continue;
        }
        let entry = result::Entry {
            path: e.path.clone(),
            sha256: e.sha256.clone(),
            bytes: e.bytes,
        };
        result::download_listed(result_uri, &entry, dir, policy).await?;
    }
    Ok(())
}
