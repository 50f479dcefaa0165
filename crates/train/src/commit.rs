//! Commitments to the training state, so a result can be checked in pieces.
//!
//! Every `commit_every` steps (and at step 0 and the last step) the engine hashes the whole
//! training state: parameters, optimizer moments, the step (which fixes the data position and
//! every random draw: batches are a pure function of seed and step) and the metrics
//! accumulated so far. The manifest lists the hashes, so the on-chain result hash commits to
//! every one of them. The states themselves stay with the worker, which publishes one beside
//! the result when it is asked for (a spot-check's request, a dispute of its segment): the
//! result costs a few kilobytes of hashes, not fifty copies of the model. Verification ties
//! the chain's ends down without any state file: the first hash must be the spec's
//! initialisation, the last must be the published weights and metrics (with the optimizer's
//! digest and loss accumulator the manifest gives), and the step count and segment length must
//! be the spec's. Anyone can then load one state, re-run that one segment and compare the state
//! it reaches with the next committed hash: the engine resumes bit-identically, so an honest
//! segment matches to the bit on the same device class. A chain with one faked segment among
//! S is caught by a check of N random segments with probability N/S; a result trained on
//! other data throughout (the evaluation rows, another seed) fails every segment.

use std::{collections::BTreeMap, path::Path};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    checkpoint::{self, Meta},
    data::Split,
    optim::Optimizer,
    spec::JobSpec,
    trainer::{self, Built},
    Error, Result,
};

/// Segments in a run unless the spec says otherwise: each re-run costs 2 % of the job.
pub const DEFAULT_SEGMENTS: u64 = 50;
/// The most segments a run may have (the manifest lists a hash and a file for each).
pub const MAX_SEGMENTS: u64 = 1_000;

/// What the manifest commits to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Commitments {
    /// Steps between committed states; the last segment may be shorter.
    pub every: u64,
    /// sha256 (hex) of the training state at steps 0, every, 2·every, … and at the last step.
    /// The state behind hash `i` is kept by the worker as [`state_file_name`] and published
    /// beside the manifest on request (a spot-check's, or a dispute of segment `i`).
    pub state_hashes: Vec<String>,
    /// What the last state holds besides the published weights and metrics, so that anyone
    /// ties the chain to the weights without downloading a state.
    pub last: LastState,
}

/// The parts of the last committed state that are not published as files: the training-loss
/// accumulator and the optimizer's moments (by digest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastState {
    /// `loss_sum` as its f64 bits (exact, and NaN-safe in JSON).
    pub loss_sum_bits: u64,
    pub loss_n: u64,
    /// [`tensors_digest`] (hex) of the optimizer's state.
    pub optimizer_sha256: String,
}

impl Commitments {
    pub fn segments(&self) -> usize {
        self.state_hashes.len().saturating_sub(1)
    }

    /// Segment `i`'s steps: `[from, to)`.
    pub fn segment(&self, i: usize, total: u64) -> (u64, u64) {
        let from = self.every.saturating_mul(i as u64).min(total);
        (from, from.saturating_add(self.every).min(total))
    }

    /// The file segment `i` re-runs from (`None` past the list).
    pub fn start_file(&self, i: usize) -> Option<String> {
        self.state_hashes.get(i).map(|h| state_file_name(h))
    }
}

/// The file name of a committed state: named by its hash, which loading checks.
pub fn state_file_name(hash: &str) -> String {
    format!("state-{hash}.safetensors")
}

/// The most a committed state's file may be for a result whose weights and metrics log are
/// `weights_bytes` and `metrics_bytes`: the parameters and at most two optimizer moments each
/// (AdamW; SGD keeps one), the metrics records so far in its metadata, and a MiB for names and
/// headers. An honest state is never larger; a larger file is not fetched.
pub fn max_state_bytes(weights_bytes: u64, metrics_bytes: u64) -> u64 {
    weights_bytes
        .saturating_mul(3)
        .saturating_add(metrics_bytes.saturating_mul(2))
        .saturating_add(1 << 20)
}

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// sha256 of named tensors (sorted by name): each name, shape and f32 bytes.
pub fn tensors_digest<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
) -> Result<[u8; 32]> {
    let sorted: BTreeMap<&str, &Tensor> = tensors.into_iter().collect();
    let mut h = Sha256::new();
    for (name, t) in sorted {
        put(&mut h, name.as_bytes());
        let dims = t.dims();
        h.update((dims.len() as u64).to_le_bytes());
        for d in dims {
            h.update((*d as u64).to_le_bytes());
        }
        let values: Vec<f32> = t.flatten_all()?.to_vec1()?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        put(&mut h, &bytes);
    }
    Ok(h.finalize().into())
}

/// The optimizer's state digest ([`LastState::optimizer_sha256`]).
pub fn optimizer_digest(opt_state: &BTreeMap<String, Tensor>) -> Result<[u8; 32]> {
    tensors_digest(opt_state.iter().map(|(n, t)| (n.as_str(), t)))
}

/// The state hash from its parts: step, the loss accumulator, the metrics records, and the
/// digests of the parameters (by name, as the weights file names them) and of the optimizer
/// state. Two digests, so the last state can be checked from the published weights.
fn hash_of(
    step: u64,
    loss_sum_bits: u64,
    loss_n: u64,
    records: &[crate::trainer::MetricsRecord],
    params: &[u8; 32],
    optimizer: &[u8; 32],
) -> String {
    let mut h = Sha256::new();
    put(&mut h, b"tensorgrid-state-v2");
    h.update(step.to_le_bytes());
    h.update(loss_sum_bits.to_le_bytes());
    h.update(loss_n.to_le_bytes());
    put(
        &mut h,
        &serde_json::to_vec(records).expect("records serialise"),
    );
    h.update(params);
    h.update(optimizer);
    hex::encode(h.finalize())
}

/// sha256 of the training state: step, metrics so far, and every parameter and optimizer
/// tensor by name, with its shape and f32 bytes.
pub fn state_hash(
    params: &BTreeMap<String, Var>,
    opt_state: &BTreeMap<String, Tensor>,
    meta: &Meta,
) -> Result<String> {
    let p = tensors_digest(params.iter().map(|(n, v)| (n.as_str(), v.as_tensor())))?;
    Ok(hash_of(
        meta.step,
        meta.loss_sum.to_bits(),
        meta.loss_n,
        &meta.records,
        &p,
        &optimizer_digest(opt_state)?,
    ))
}

/// What re-running one segment showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentCheck {
    pub segment: usize,
    /// Steps `[from, to)`.
    pub from: u64,
    pub to: u64,
    /// The committed hash at `to`, and the one the re-run reached (`None` when it could not
    /// start: a missing or altered state file).
    pub expected: String,
    pub reached: Option<String>,
    pub problem: Option<String>,
    /// The re-run itself failed here (out of memory, a device error): the machine that
    /// re-ran it cannot judge, which says nothing of the result.
    #[serde(skip)]
    pub rerun_failed: bool,
}

impl SegmentCheck {
    pub fn ok(&self) -> bool {
        self.problem.is_none() && self.reached.as_deref() == Some(self.expected.as_str())
    }
}

/// Re-runs segment `i` of the result in `dir` (its state file already there) and compares
/// the state it reaches with the committed one.
pub fn check_segment(
    spec: &JobSpec,
    data: &Split,
    dir: &Path,
    commitments: &Commitments,
    total: u64,
    i: usize,
    device: &Device,
) -> Result<SegmentCheck> {
    let (from, to) = commitments.segment(i, total);
    let expected = commitments
        .state_hashes
        .get(i + 1)
        .cloned()
        .ok_or_else(|| Error::Format(format!("no segment {i}")))?;
    let mut check = SegmentCheck {
        segment: i,
        from,
        to,
        expected,
        reached: None,
        problem: None,
        rerun_failed: false,
    };
    let start_hash = &commitments.state_hashes[i];
    let file = state_file_name(start_hash);
    let ck = match checkpoint::read_state(&dir.join(&file), device) {
        Ok(ck) => ck,
        Err(e) => {
            check.problem = Some(e.to_string());
            return Ok(check);
        }
    };
    let built = Built::new(spec, data, device)?;
    let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params())?;
    if let Err(e) = checkpoint::restore(&ck, &built.params(), &mut opt) {
        check.problem = Some(format!("{file}: {e}"));
        return Ok(check);
    }
    let mut meta = ck.meta;
    let start = state_hash(&built.params(), &opt.state(), &meta);
    if meta.step != from || start.as_ref().ok() != Some(start_hash) {
        check.problem = Some(format!("{file} is not the state committed at step {from}"));
        return Ok(check);
    }
    let mut batches = trainer::Batches::new(spec, data, device)?;
    let per_epoch = batches.steps_per_epoch(spec.training.batch_size);
    // The segment's shards only: none past its end fetched ahead.
    batches.end_at_step(to, spec.training.batch_size);
    for step in from..to {
        let stepped = trainer::train_step(
            spec,
            data,
            device,
            &built,
            &mut opt,
            &mut batches,
            &mut meta,
            per_epoch,
            total,
            step,
        );
        if let Err(e) = stepped {
            check.problem = Some(format!("the re-run failed at step {step}: {e}"));
            check.rerun_failed = true;
            return Ok(check);
        }
    }
    meta.step = to;
    check.reached = Some(state_hash(&built.params(), &opt.state(), &meta)?);
    Ok(check)
}

/// Re-runs `segments` of a result and sums up what it cost and found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpotCheck {
    /// Segments in the run.
    pub of: usize,
    pub checked: Vec<SegmentCheck>,
    /// Steps re-run, and their share of the job's.
    pub steps: u64,
    pub share_of_job: f64,
    pub mismatches: usize,
    pub wall_time_s: f64,
}

impl SpotCheck {
    /// "3 of 40 segments, 2.1 % of the job, 0 mismatches".
    pub fn summary(&self) -> String {
        format!(
            "{} of {} segments, {:.1} % of the job, {} mismatch{}",
            self.checked.len(),
            self.of,
            100.0 * self.share_of_job,
            self.mismatches,
            if self.mismatches == 1 { "" } else { "es" }
        )
    }
}

/// Structural problems of a manifest's commitments: counts that do not fit its steps, hashes
/// that are not 64 lowercase hex digits (each names a file, so nothing else may pass).
pub fn problems(c: &Commitments, total: u64) -> Vec<String> {
    let mut out = Vec::new();
    let segments = total.checked_div(c.every).map(|_| total.div_ceil(c.every));
    if segments.is_none_or(|s| s > MAX_SEGMENTS || c.state_hashes.len() as u64 != s + 1) {
        out.push(format!(
            "commitments: {} state hashes for {total} steps every {}",
            c.state_hashes.len(),
            c.every
        ));
    }
    if let Some(bad) = c.state_hashes.iter().find(|h| !is_hash(h)) {
        out.push(format!("commitments: {bad:?} is not a sha256 in hex"));
    }
    if !is_hash(&c.last.optimizer_sha256) {
        out.push("commitments: the last state's optimizer digest is not a sha256 in hex".into());
    }
    out
}

/// 64 lowercase hex digits: safe in a file name.
pub fn is_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn start_meta() -> Meta {
    Meta {
        spec_sha256: String::new(),
        engine: String::new(),
        device: String::new(),
        cpu_isa: String::new(),
        step: 0,
        records: Vec::new(),
        loss_sum: 0.0,
        loss_n: 0,
        train_secs: 0.0,
        commitments: Vec::new(),
    }
}

/// The hash of the spec's initial state: the weights its seed gives, zero optimizer moments,
/// step 0, no metrics. The same on every device (initialisation is computed on the host).
pub fn initial_hash(spec: &JobSpec, data: &Split, device: &Device) -> Result<String> {
    let built = Built::new(spec, data, device)?;
    let opt = Optimizer::new(spec.training.optimizer.clone(), built.params())?;
    state_hash(&built.params(), &opt.state(), &start_meta())
}

/// Problems tying the chain's last state to the result: the published weights and metrics,
/// at the last step, with the manifest's loss accumulator and optimizer digest, hash to the
/// last commitment. No state file is needed.
pub fn final_state_problems(
    c: &Commitments,
    total: u64,
    weights: &BTreeMap<String, Tensor>,
    records: &[crate::trainer::MetricsRecord],
) -> Vec<String> {
    let Some(last) = c.state_hashes.last() else {
        return vec!["commitments: no final state".into()];
    };
    let mut optimizer = [0u8; 32];
    if hex::decode_to_slice(&c.last.optimizer_sha256, &mut optimizer).is_err() {
        return vec!["commitments: the last state's optimizer digest is not hex".into()];
    }
    let params = match tensors_digest(weights.iter().map(|(n, t)| (n.as_str(), t))) {
        Ok(p) => p,
        Err(e) => return vec![format!("the published weights: {e}")],
    };
    let reached = hash_of(
        total,
        c.last.loss_sum_bits,
        c.last.loss_n,
        records,
        &params,
        &optimizer,
    );
    if reached == *last {
        Vec::new()
    } else {
        vec!["the published weights and metrics are not the final committed state's".into()]
    }
}

/// Re-runs the given segments (their state files in `dir`).
pub fn spot_check(
    spec: &JobSpec,
    data: &Split,
    dir: &Path,
    commitments: &Commitments,
    total: u64,
    segments: &[usize],
    device: &Device,
) -> Result<SpotCheck> {
    let started = std::time::Instant::now();
    let mut checked = Vec::new();
    for &i in segments {
        if i >= commitments.segments() {
            return Err(Error::Format(format!(
                "segment {i} does not exist: the run has {} (0..{})",
                commitments.segments(),
                commitments.segments()
            )));
        }
        checked.push(check_segment(
            spec,
            data,
            dir,
            commitments,
            total,
            i,
            device,
        )?);
    }
    let steps = checked.iter().map(|c| c.to - c.from).sum();
    Ok(SpotCheck {
        of: commitments.segments(),
        mismatches: checked.iter().filter(|c| !c.ok()).count(),
        share_of_job: steps as f64 / total.max(1) as f64,
        steps,
        checked,
        wall_time_s: started.elapsed().as_secs_f64(),
    })
}
