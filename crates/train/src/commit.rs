//! Commitments to the training state, so a result can be checked in pieces.
//!
//! Every `commit_every` steps (and at step 0 and the last step) the engine hashes the whole
//! training state: parameters, optimizer moments, the step (which fixes the data position and
//! every random draw: batches are a pure function of seed and step) and the metrics
//! accumulated so far. The manifest lists the hashes, so the on-chain result hash commits to
//! every one of them, and the state at the start of each segment is published beside the
//! result. Anyone can then load one state, re-run that one segment and compare the state it
//! reaches with the next committed hash: the engine resumes bit-identically, so an honest
//! segment matches to the bit on the same device class, and a result trained any other way
//! (on the evaluation rows, fewer steps, another seed) does not.

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commitments {
    /// Steps between committed states; the last segment may be shorter.
    pub every: u64,
    /// sha256 (hex) of the training state at steps 0, every, 2·every, … and at the last step.
    pub state_hashes: Vec<String>,
    /// The state at the start of each segment, in order, as files beside the manifest.
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
    checkpoint::restore(&ck, &built.params(), &mut opt)?;
    let mut meta = ck.meta;
    if meta.step != from || state_hash(&built.params(), &opt.state(), &meta)? != *start_hash {
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
    let segments = if c.every == 0 {
        0
    } else {
        total.div_ceil(c.every)
    };
    if c.every == 0 || c.state_hashes.len() as u64 != segments + 1 {
        out.push(format!(
            "commitments: {} state hashes for {total} steps every {}",
            c.state_hashes.len(),
            c.every
        ));
    }
    if c.states.len() + 1 != c.state_hashes.len() {
        out.push(format!(
            "commitments: {} state files for {} segments",
            c.states.len(),
            c.segments()
        ));
    }
    for (entry, hash) in c.states.iter().zip(&c.state_hashes) {
        if entry.path != state_file_name(hash) {
            out.push(format!(
                "commitments: {} is not named for its state",
                entry.path
            ));
        }
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
