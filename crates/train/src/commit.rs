//! Commitments to the training state, so a result can be checked in pieces.
//!
//! Every `commit_every` steps (and at step 0 and the last step) the engine hashes the whole
//! training state: parameters, optimizer moments, the step (which fixes the data position and
//! every random draw: batches are a pure function of seed and step) and the metrics
//! accumulated so far. The manifest lists the hashes, so the on-chain result hash commits to
//! every one of them, and each committed state is published beside the result. Verification
//! ties the chain's ends down: the first state must be the spec's initialisation, the last
//! must hold the published weights and metrics, and the step count and segment length must be
//! the spec's. Anyone can then load one state, re-run that one segment and compare the state
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
    manifest::FileEntry,
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
    pub state_hashes: Vec<String>,
    /// Each committed state, in order, as a file beside the manifest: segment `i` re-runs
    /// from `states[i]`; the last is the state the weights and metrics were written from.
    pub states: Vec<FileEntry>,
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
}

/// The file name of a committed state: named by its hash, which loading checks.
pub fn state_file_name(hash: &str) -> String {
    format!("state-{hash}.safetensors")
}

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// sha256 of the training state: step, metrics so far, and every parameter and optimizer
/// tensor by name (sorted), with its shape and f32 bytes.
pub fn state_hash(
    params: &BTreeMap<String, Var>,
    opt_state: &BTreeMap<String, Tensor>,
    meta: &Meta,
) -> Result<String> {
    let mut h = Sha256::new();
    put(&mut h, b"tensorgrid-state-v1");
    h.update(meta.step.to_le_bytes());
    h.update(meta.loss_sum.to_bits().to_le_bytes());
    h.update(meta.loss_n.to_le_bytes());
    put(
        &mut h,
        &serde_json::to_vec(&meta.records).expect("records serialise"),
    );
    let tensors = params
        .iter()
        .map(|(n, v)| (format!("param.{n}"), v.as_tensor()))
        .chain(opt_state.iter().map(|(n, t)| (n.clone(), t)))
        .collect::<BTreeMap<_, _>>();
    for (name, t) in tensors {
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
    Ok(hex::encode(h.finalize()))
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
    let entry = commitments
        .states
        .get(i)
        .ok_or_else(|| Error::Format(format!("no state file for segment {i}")))?;
    let start_hash = &commitments.state_hashes[i];
    if entry.path != state_file_name(start_hash) {
        check.problem = Some(format!(
            "segment {i} starts from {}, not the file of its committed state",
            entry.path
        ));
        return Ok(check);
    }
    let ck = match checkpoint::read_state(&dir.join(&entry.path), device) {
        Ok(ck) => ck,
        Err(e) => {
            check.problem = Some(e.to_string());
            return Ok(check);
        }
    };
    let built = Built::new(spec, data, device)?;
    let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params())?;
    if let Err(e) = checkpoint::restore(&ck, &built.params(), &mut opt) {
        check.problem = Some(format!("{}: {e}", entry.path));
        return Ok(check);
    }
    let mut meta = ck.meta;
    let start = state_hash(&built.params(), &opt.state(), &meta);
    if meta.step != from || start.as_ref().ok() != Some(start_hash) {
        check.problem = Some(format!(
            "{} is not the state committed at step {from}",
            entry.path
        ));
        return Ok(check);
    }
    let mut batches = trainer::Batches::new(spec, data, device)?;
    let per_epoch = batches.steps_per_epoch(spec.training.batch_size);
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

/// Structural problems of a manifest's commitments: counts that do not fit its steps, state
/// files not named for their hashes.
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
    if c.states.len() != c.state_hashes.len() {
        out.push(format!(
            "commitments: {} state files for {} states",
            c.states.len(),
            c.state_hashes.len()
        ));
    }
    for (entry, hash) in c.states.iter().zip(&c.state_hashes) {
        if !named_for(entry, hash) {
            out.push(format!(
                "commitments: {} is not named for its state",
                entry.path
            ));
        }
    }
    out
}

/// A state file listed under the name its hash (64 lowercase hex digits) gives it: never
/// another result file's name, never a path.
pub fn named_for(entry: &FileEntry, hash: &str) -> bool {
    hash.len() == 64
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && entry.path == state_file_name(hash)
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

/// Problems tying the chain's last state to the result: its file hashes to the last
/// commitment, is at the last step, and holds exactly the published weights and metrics.
pub fn final_state_problems(
    c: &Commitments,
    total: u64,
    weights: &BTreeMap<String, Tensor>,
    records: &[crate::trainer::MetricsRecord],
    dir: &Path,
) -> Vec<String> {
    let (Some(entry), Some(hash)) = (c.states.last(), c.state_hashes.last()) else {
        return vec!["commitments: no final state".into()];
    };
    let ck = match checkpoint::read_state(&dir.join(&entry.path), &Device::Cpu) {
        Ok(ck) => ck,
        Err(e) => return vec![format!("final state: {e}")],
    };
    let mut out = Vec::new();
    if ck.meta.step != total {
        out.push(format!(
            "final state is at step {}, not {total}",
            ck.meta.step
        ));
    }
    if ck.meta.records != records {
        out.push("final state's metrics differ from metrics.jsonl".into());
    }
    let bits = |t: &Tensor| -> Option<Vec<u32>> {
        let v = t.flatten_all().ok()?.to_vec1::<f32>().ok()?;
        Some(v.iter().map(|x| x.to_bits()).collect())
    };
    let params: BTreeMap<&str, &Tensor> = ck
        .tensors
        .iter()
        .filter_map(|(k, t)| k.strip_prefix("param.").map(|n| (n, t)))
        .collect();
    let weights_match = params.len() == weights.len()
        && weights.iter().all(|(n, w)| {
            params
                .get(n.as_str())
                .is_some_and(|p| p.shape() == w.shape() && bits(p).is_some() && bits(p) == bits(w))
        });
    if !weights_match {
        out.push("the published weights are not the final committed state's".into());
    }
    // The file's own hash: its tensors as committed.
    let opt_state: BTreeMap<String, Tensor> = ck
        .tensors
        .iter()
        .filter(|(k, _)| k.starts_with("opt."))
        .map(|(k, t)| (k.clone(), t.clone()))
        .collect();
    let vars: Result<BTreeMap<String, Var>> = params
        .iter()
        .map(|(n, t)| Ok((n.to_string(), Var::from_tensor(t)?)))
        .collect();
    match vars.and_then(|v| state_hash(&v, &opt_state, &ck.meta)) {
        Ok(h) if h == *hash => {}
        Ok(_) => out.push(format!("{} is not the last committed state", entry.path)),
        Err(e) => out.push(format!("final state: {e}")),
    }
    out
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
