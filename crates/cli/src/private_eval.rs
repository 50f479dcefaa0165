//! `--eval-data FILE`: the model measured on the poster's own held-out data, which nobody
//! else has seen (the job's evaluation split is public: a worker can fit its model to it).

use std::path::Path;

use anyhow::{bail, Context, Result};
use tensorgrid_train::{data, spec::JobSpec, verify, Device};

/// Reads `file` (the spec's dataset format, at most the spec's dataset size) and measures
/// the result in `dir` on it.
pub fn measure(
    spec: &JobSpec,
    split: &data::Split,
    file: &Path,
    dir: &Path,
    device: &Device,
) -> Result<verify::PrivateEval> {
    let len = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if len > spec.limits.max_dataset_bytes {
        bail!(
            "{}: {len} bytes, more than the spec's dataset limit ({})",
            file.display(),
            spec.limits.max_dataset_bytes
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let private = data::private_eval(spec, &bytes, split)
        .with_context(|| format!("--eval-data {}", file.display()))?;
    Ok(verify::evaluate_private(spec, &private, dir, device)?)
}

/// "accuracy 0.913 on 180 samples of your own data (threshold 0.9: met)".
pub fn describe(spec: &JobSpec, p: &verify::PrivateEval) -> String {
    format!(
        "{} {} on {} samples of your own data (threshold {}: {})",
        crate::plot::metric_name(spec.evaluation.metric),
        p.measured,
        p.samples,
        p.threshold,
        if p.meets_threshold { "met" } else { "NOT met" }
    )
}
