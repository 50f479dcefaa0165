//! What a verifier reveals for a disputed segment: the one rule every honest verifier
//! follows, so that all of them reveal the same hash.
//!
//! - The dispute must quote the segment's start and end states exactly as the result's
//!   manifest (which the on-chain result hash commits to) lists them; a dispute that does not
//!   is upheld for the worker: the verifier reveals the dispute's own end hash.
//! - A result whose commitments do not tie down (steps or segment length other than the
//!   spec's, a malformed list, a first state that is not the spec's initialisation, a last one
//!   that is not the published weights and metrics), or whose segment cannot be re-run from
//!   the committed state (missing, altered), is a fraud: the verifier reveals all zeros.
//! - Otherwise the verifier re-runs the segment and reveals the state hash it reaches.
//!
//! A verifier of another device class cannot judge (bits agree only within one) and says so.

use std::path::Path;

use candle_core::Device;

use crate::{checkpoint, commit, data::Split, manifest::Manifest, spec::JobSpec, Error, Result};

/// The device kind the disputed worker's account registers (on chain: `DeviceKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputedDevice {
    Cpu,
    Cuda,
    Metal,
}

impl DisputedDevice {
    /// The name a manifest records for this kind (`device::name`).
    pub fn name(self) -> &'static str {
        match self {
            DisputedDevice::Cpu => "cpu",
            DisputedDevice::Cuda => "cuda",
            DisputedDevice::Metal => "metal",
        }
    }
}

/// What re-running a disputed segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentVerdict {
    /// The dispute does not quote the result's commitments: upheld for the worker.
    Misquoted,
    /// The result cannot be re-run, or does not tie to the spec and its weights.
    Broken(String),
    /// The re-run reached this state hash (hex).
    Reached(String),
}

impl SegmentVerdict {
    /// The 32 bytes a verifier reveals: the dispute's end hash when misquoted, zeros for a
    /// broken result, else the state reached.
    pub fn vote(&self, dispute_end: &[u8; 32]) -> [u8; 32] {
        match self {
            SegmentVerdict::Misquoted => *dispute_end,
            SegmentVerdict::Broken(_) => [0; 32],
            SegmentVerdict::Reached(hash) => hex::decode(hash)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .unwrap_or([0; 32]),
        }
    }
}

/// Judges segment `segment` of the result in `dir` (its manifest, weights, metrics, last
/// state and the segment's start state already there), disputed as running from `start` to
/// `end` (hex), the worker's account registering `disputed_device`. Errors only when this
/// machine cannot judge (another device class, a re-run that fails here) or the spec's own
/// data cannot be built: none of those is a verdict.
#[allow(clippy::too_many_arguments)]
pub fn segment_verdict(
    spec: &JobSpec,
    data: &Split,
    dir: &Path,
    m: &Manifest,
    segment: usize,
    start: &str,
    end: &str,
    disputed_device: DisputedDevice,
    device: &Device,
) -> Result<SegmentVerdict> {
    let hashes = &m.commitments.state_hashes;
    let quoted = hashes.get(segment).map(String::as_str) == Some(start)
        && hashes.get(segment + 1).map(String::as_str) == Some(end);
    if !quoted {
        return Ok(SegmentVerdict::Misquoted);
    }
    if let Some(first) = crate::verify::commitment_problems(spec, data, dir, m, device)?
        .into_iter()
        .next()
    {
        return Ok(SegmentVerdict::Broken(first));
    }
    // The worker writes its manifest: a device kind other than the one its account registers
    // (which decided who was drawn) is a result that cannot be judged by anyone it was
    // disputed before, so it counts against it.
    if m.device != disputed_device.name() {
        return Ok(SegmentVerdict::Broken(format!(
            "the manifest says it was trained on {}, the worker is registered with {}",
            m.device,
            disputed_device.name()
        )));
    }
    if let Some(why) = checkpoint::cannot_rerun(m, device) {
        return Err(Error::Device(why));
    }
    let (total, _) = crate::verify::run_shape(spec, data)?;
    let check = commit::check_segment(spec, data, dir, &m.commitments, total, segment, device)?;
    if check.rerun_failed {
        // This machine's failure (memory, a device error), not the result's: no verdict.
        return Err(Error::Checkpoint(format!(
            "the re-run failed here: {}",
            check.problem.unwrap_or_default()
        )));
    }
    Ok(match (check.problem, check.reached) {
        (None, Some(reached)) => SegmentVerdict::Reached(reached),
        (Some(problem), _) => SegmentVerdict::Broken(problem),
        (None, None) => SegmentVerdict::Broken("the re-run reached no state".into()),
    })
}
