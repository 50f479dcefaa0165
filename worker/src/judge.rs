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
    state::{DeviceKind, Dispute, Job},
};
use tensorgrid_train::{
    commit, data,
    dispute::{segment_verdict, DisputedDevice, SegmentVerdict},
    manifest::{self, Manifest},
    memory,
    spec::JobSpec,
};

use crate::{check, pipeline::Worker, resources};

/// The most a spec may be.
const MAX_SPEC_BYTES: u64 = 1 << 20;
/// The most a result (weights, metrics, a state) may be.
const MAX_RESULT_BYTES: u64 = 4 << 30;
/// In a dispute's directory while its segment is re-run.
const RERUNNING: &str = "rerunning";

/// What to reveal, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub vote: [u8; 32],
    pub why: String,
}

/// Whose files a transient failure was about: past the middle of the commit window, a party
/// that still does not serve its files loses the vote on them (withholding must not stall a
/// dispute into "no majority").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The result: the worker's to keep published.
    Worker,
    /// The spec and the dataset: the poster's.
    Poster,
    /// Neither: this machine's own trouble (its disk, a re-run that failed here).
    Local,
}

#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// Try again later (a network failure, a store's 5xx, a local fault).
    #[error("{1}")]
    Transient(Side, String),
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

/// A fetch failure: transient (retried; `side`'s to answer for if it lasts), this machine's
/// own (its disk: retried, never held against anyone), or definitive (`decided`).
fn transient_or(
    side: Side,
    e: ArtifactError,
    decided: impl FnOnce(String) -> Judgement,
) -> Result<Judgement, JudgeError> {
    match e {
        ArtifactError::Io { .. } | ArtifactError::Config(_) => {
            Err(JudgeError::Transient(Side::Local, e.to_string()))
        }
        e if e.is_transient() => Err(JudgeError::Transient(side, e.to_string())),
        e => Ok(decided(e.to_string())),
    }
}

impl Judgement {
    /// What a party that has not served its files by the middle of the commit window gets.
    pub fn for_withheld(side: Side, d: &Dispute, why: &str) -> Option<Self> {
        match side {
            Side::Worker => Some(Self::fraud(format!("the result was not served: {why}"))),
            Side::Poster => Some(Self::upheld(
                d,
                format!("the job's files were not served: {why}"),
            )),
            Side::Local => None,
        }
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
        Err(e) => {
            return transient_or(Side::Poster, e, |e| {
                Judgement::upheld(dispute, format!("the spec: {e}"))
            })
        }
    };
    if sha256_hex(&spec_bytes) != hex::encode(job.spec_hash) {
        return Ok(Judgement::upheld(
            dispute,
            "the spec is not the one the job names",
        ));
    }
    let mut spec = match JobSpec::from_json(&spec_bytes) {
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
        Err(e) => {
            return transient_or(Side::Worker, e, |e| {
                Judgement::fraud(format!("the result: {e}"))
            })
        }
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
    // The segment's start state, which the disputed worker publishes once it sees the
    // dispute: not there yet is its to answer for only past the middle of the commit window
    // (the withheld rule), as a store that does not answer.
    if let Err(e) =
        fetch_start_state(&job.result_uri, &m, dispute.segment as usize, &dir, &policy).await
    {
        start_state_unavailable(e)?;
    }
    // The poster's dataset: gone or altered, the worker is not at fault.
    let cap = spec
        .limits
        .max_dataset_bytes
        .min(w.config.max_dataset_bytes);
    let data_bytes = match fetch(&spec.dataset.uri, cap, &policy).await {
        Ok(b) => b,
        Err(e) => {
            return transient_or(Side::Poster, e, |e| {
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
    // Its tokenizer and initial weights, as its dataset: the poster's to serve. Held to this
    // worker's cap (they are read into memory; the re-run's footprint below counts them).
    if let Some((role, f)) = spec
        .files()
        .into_iter()
        .find(|(_, f)| f.bytes > w.config.max_dataset_bytes)
    {
        return Err(JudgeError::CannotJudge(format!(
            "the {role} is {} bytes, over this worker's cap of {}",
            f.bytes, w.config.max_dataset_bytes
        )));
    }
    match crate::files::fetch_files(&mut spec, &policy).await {
        Ok(()) => {}
        Err(crate::files::FileError::Fetch { role, source }) => {
            return transient_or(Side::Poster, source, |e| {
                Judgement::upheld(dispute, format!("the {role}: {e}"))
            })
        }
        Err(e @ crate::files::FileError::Mismatch { .. }) => {
            return Ok(Judgement::upheld(
                dispute,
                format!("not the file the spec names: {e}"),
            ))
        }
    }
    let disputed = match dispute.device {
        DeviceKind::Cpu => DisputedDevice::Cpu,
        DeviceKind::Cuda => DisputedDevice::Cuda,
        DeviceKind::Metal => DisputedDevice::Metal,
    };
    // A re-run that kills the process (memory, a native abort) must not do so again at every
    // start: a marker left by the last run means this segment crashed it, and this worker
    // does not judge it again (a restart in the middle of the re-run counts too: rare, and it
    // costs only this seat's fee).
    let marker = dir.join(RERUNNING);
    if marker.exists() {
        return Err(JudgeError::CannotJudge(
            "the last re-run of this segment stopped the worker".into(),
        ));
    }
    std::fs::write(&marker, b"")
        .map_err(|e| JudgeError::Transient(Side::Local, format!("{}: {e}", marker.display())))?;
    let (device, d, dir2) = (w.device.clone(), dispute.clone(), dir.clone());
    // The memory the re-run needs against what this worker has for a job, as a claim checks
    // it: a job too large for this machine is not judged here (and cannot kill the daemon).
    let budget = resources::job_memory(&w.hardware, w.config.max_job_memory).map(check::share);
    // Each shard within its own time (its size at a minimum rate): one that trickles is not
    // served, the poster's to answer for.
    let store = crate::shards::Shards::new(tokio::runtime::Handle::current(), policy.clone())
        .stopping(w.cancel.clone(), None);
    let run = tokio::task::spawn_blocking(move || {
        let split = data::split_with(&spec, &data_bytes, Some(std::sync::Arc::new(store)))?;
        let needs = memory::footprint_on(&spec, &split, &device).bytes;
        if let Some(b) = budget.filter(|b| needs > *b) {
            return Err(tensorgrid_train::Error::Device(format!(
                "the re-run needs about {} MiB, this worker has {} MiB for a job",
                needs >> 20,
                b >> 20
            )));
        }
        segment_verdict(
            &spec,
            &split,
            &dir2,
            &m,
            d.segment as usize,
            &hex::encode(d.start_hash),
            &hex::encode(d.end_hash),
            disputed,
            &device,
        )
    })
    .await;
    // The process survived the re-run; a panic keeps the marker (it would panic again).
    if run.is_ok() {
        let _ = std::fs::remove_file(&marker);
    }
    let run = run.map_err(|e| JudgeError::CannotJudge(format!("the re-run stopped: {e}")))?;
    let verdict = match run {
        Ok(v) => v,
        Err(tensorgrid_train::Error::Device(e)) => return Err(JudgeError::CannotJudge(e)),
        // Shutting down mid-fetch: nobody's doing.
        Err(e @ tensorgrid_train::Error::Cancelled(_)) => {
            return Err(JudgeError::Transient(Side::Local, e.to_string()))
        }
        // A shard of the poster's dataset gone or altered (the index itself was checked
        // above): as the dataset, not the worker's doing.
        Err(
            e @ (tensorgrid_train::Error::HashMismatch { .. }
            | tensorgrid_train::Error::Unavailable { .. }
            | tensorgrid_train::Error::TooLarge { .. }),
        ) => return Ok(Judgement::upheld(dispute, format!("a dataset shard: {e}"))),
        // A shard not served (yet): the poster's to answer for, as the dataset is, so a
        // withheld shard cannot stall the dispute.
        Err(e @ tensorgrid_train::Error::Fetch { .. }) => {
            return Err(JudgeError::Transient(Side::Poster, e.to_string()))
        }
        // Anything else failing here (memory, the data not building on this machine) says
        // nothing about either party: tried again, never voted on.
        Err(e) => return Err(JudgeError::Transient(Side::Local, e.to_string())),
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

/// What a start state that could not be fetched means: not published (yet), or a store that
/// does not answer, is the worker's to answer for once the withheld rule applies; this
/// machine's disk is nobody's; a file larger than an honest state can be
/// ([`commit::max_state_bytes`]) is left to the re-run, which finds no state (the worker's
/// doing).
fn start_state_unavailable(e: ArtifactError) -> Result<(), JudgeError> {
    match e {
        ArtifactError::Io { .. } => Err(JudgeError::Transient(Side::Local, e.to_string())),
        // A store answers a missing key with 403 when the reader may not list the bucket.
        ArtifactError::NotFound { .. } | ArtifactError::Denied { .. } => {
            Err(JudgeError::Transient(
                Side::Worker,
                format!("the disputed segment's start state is not published: {e}"),
            ))
        }
        e if e.is_transient() => Err(JudgeError::Transient(Side::Worker, e.to_string())),
        e => {
            tracing::info!(error = %e, "the disputed segment's start state");
            Ok(())
        }
    }
}

/// Downloads the disputed segment's start state, only under the name its hash gives it and no
/// larger than such a state can be for the published weights.
async fn fetch_start_state(
    result_uri: &str,
    m: &Manifest,
    segment: usize,
    dir: &Path,
    policy: &tensorgrid_artifacts::ReadPolicy,
) -> Result<(), ArtifactError> {
    let Some(hash) = m
        .commitments
        .state_hashes
        .get(segment)
        .filter(|h| commit::is_hash(h))
    else {
        return Ok(());
    };
    let name = commit::state_file_name(hash);
    if dir.join(&name).exists() {
        return Ok(());
    }
    let cap = commit::max_state_bytes(m.weights.bytes, m.metrics.bytes);
    result::download_beside(result_uri, &name, cap, dir, policy).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorgrid_client::state::{DisputePhase, Seat, VoteState};

    fn dispute() -> Dispute {
        let seat = Seat {
            worker: Pubkey::default(),
            reserve: 0,
            vote: VoteState::Drawn,
            commitment: [0; 32],
            revealed: [0; 32],
        };
        Dispute {
            job: Pubkey::default(),
            poster: Pubkey::default(),
            worker: Pubkey::default(),
            segment: 0,
            start_hash: [1; 32],
            end_hash: [2; 32],
            device: DeviceKind::Cpu,
            pool_frozen: true,
            bond: 0,
            forfeits: 0,
            verifier_fee: 0,
            disputed_slot: 0,
            drawn_slot: 0,
            phase: DisputePhase::Voting,
            commit_ends_at: 0,
            reveal_ends_at: 0,
            seats: [seat; 3],
            bump: 0,
        }
    }

    /// Review finding: a failure on the verifier's own machine became a vote. It is retried,
    /// never held against either party; a definitive answer about a party's file decides
    /// against that party, and a lasting transient one does so only past the middle of the
    /// commit window (withholding must not stall the dispute).
    #[test]
    fn whose_failure_it_is_decides_the_vote() {
        let d = dispute();
        let unreachable = || ArtifactError::Unreachable {
            uri: "s3://b/k".into(),
            reason: "timeout".into(),
        };
        let local = ArtifactError::Io {
            path: "/work".into(),
            source: std::io::Error::other("disk full"),
        };
        let never = |_: String| -> Judgement { panic!("not a verdict") };
        assert!(matches!(
            transient_or(Side::Worker, local, never),
            Err(JudgeError::Transient(Side::Local, _))
        ));
        assert!(matches!(
            transient_or(Side::Worker, unreachable(), never),
            Err(JudgeError::Transient(Side::Worker, _))
        ));
        let gone = ArtifactError::NotFound {
            uri: "s3://b/k".into(),
        };
        let v = transient_or(Side::Worker, gone, Judgement::fraud).unwrap();
        assert_eq!(v.vote, [0; 32]);
        assert_eq!(
            Judgement::for_withheld(Side::Worker, &d, "503")
                .unwrap()
                .vote,
            [0; 32]
        );
        assert_eq!(
            Judgement::for_withheld(Side::Poster, &d, "503")
                .unwrap()
                .vote,
            d.end_hash
        );
        assert!(Judgement::for_withheld(Side::Local, &d, "disk").is_none());
    }

    /// The start state is published on request: not there yet is the worker's to answer for
    /// (a fraud only once the withheld rule applies), never an immediate verdict.
    #[test]
    fn a_start_state_not_yet_published_is_waited_for() {
        let gone = ArtifactError::NotFound {
            uri: "s3://b/results/j/state-x.safetensors".into(),
        };
        assert!(matches!(
            start_state_unavailable(gone),
            Err(JudgeError::Transient(Side::Worker, _))
        ));
        let disk = ArtifactError::Io {
            path: "/work".into(),
            source: std::io::Error::other("disk full"),
        };
        assert!(matches!(
            start_state_unavailable(disk),
            Err(JudgeError::Transient(Side::Local, _))
        ));
        let huge = ArtifactError::TooLarge {
            uri: "s3://b/k".into(),
            limit: 1,
        };
        assert!(start_state_unavailable(huge).is_ok());
    }
}
