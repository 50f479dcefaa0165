//! Checking a result: hashes, spec, and the model re-evaluated on the held-out split.

use std::path::Path;

use candle_core::Device;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    data::Split,
    manifest::{self, FileEntry},
    sample::{sample, Sample},
    spec::JobSpec,
    trainer::{evaluate, Built},
    Result,
};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// sha256 of `manifest.json` (compare with the on-chain `result_hash`).
    pub result_hash: String,
    /// Everything that does not match; empty when the files are consistent.
    pub problems: Vec<String>,
    /// The metric the manifest claims and the one measured now.
    pub claimed: f64,
    pub measured: f64,
    pub threshold: f64,
    pub meets_threshold: bool,
    /// For a language model: text it writes from held-out text, drawn here from the weights
    /// just checked. `null` for other models.
    pub sample: Option<Sample>,
}

impl Report {
    /// Consistent files and a model that meets the spec's threshold.
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.meets_threshold
    }
}

fn check_file(dir: &Path, e: &FileEntry, problems: &mut Vec<String>) {
    match std::fs::read(dir.join(&e.path)) {
        Ok(bytes) => {
            let actual = hex::encode(Sha256::digest(&bytes));
            if actual != e.sha256 {
                problems.push(format!(
                    "{}: sha256 {actual}, manifest says {}",
                    e.path, e.sha256
                ));
            }
        }
        Err(err) => problems.push(format!("{}: {err}", e.path)),
    }
}

/// A `gpt2` result is published in Hugging Face's layout (`model.safetensors`), and every
/// result lists exactly the extra files its spec and data give (`config.json`,
/// `tokenizer.json`), byte for byte.
fn layout_problems(
    spec: &JobSpec,
    data: &Split,
    dir: &Path,
    m: &manifest::Manifest,
) -> Vec<String> {
    let mut out = Vec::new();
    let dtype = crate::precision::manifest_name(&spec.training, &m.device);
    if m.compute_dtype != dtype {
        out.push(format!(
            "the result says its steps computed in {}, this spec's on {} in {}",
            m.compute_dtype.as_deref().unwrap_or("f32"),
            m.device,
            dtype.as_deref().unwrap_or("f32")
        ));
    }
    if spec.model.transformer().is_some_and(|t| t.gpt2) {
        if m.weights.path != crate::hf::WEIGHTS_FILE {
            out.push(format!(
                "weights are {}, a gpt2 result's are {}",
                m.weights.path,
                crate::hf::WEIGHTS_FILE
            ));
        } else if !crate::hf::has_pt_metadata(&dir.join(crate::hf::WEIGHTS_FILE)) {
            // The tensors are checked against the commitments; the header's metadata is what
            // transformers reads before them.
            out.push(format!(
                "{} does not carry the metadata {{\"format\": \"pt\"}} transformers needs",
                crate::hf::WEIGHTS_FILE
            ));
        }
    }
    let want = crate::hf::extra_files(spec, data);
    let listed: Vec<&str> = m.extra.iter().map(|e| e.path.as_str()).collect();
    let names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    if listed != names {
        out.push(format!(
            "the result lists {listed:?} beside its weights; this spec's lists {names:?}"
        ));
        return out;
    }
    for (name, bytes) in want {
        if std::fs::read(dir.join(name)).ok().as_deref() != Some(bytes.as_slice()) {
            out.push(format!("{name} is not the one this spec and its data give"));
        }
    }
    out
}

/// The run the spec describes, as the spec and data fix it: its step count and segment
/// length. A manifest's own figures are the worker's word.
pub fn run_shape(spec: &JobSpec, data: &Split) -> Result<(u64, u64)> {
    let rows = data.train_rows();
    let total = spec.total_steps(rows);
    Ok((total, spec.commit_every(total)?))
}

/// What is wrong with the manifest's commitments: the step count and segment length against
/// the spec's, the list's shape, the first state against the spec's initialisation, and the
/// last against the published weights and metrics. Reads no state file.
pub fn commitment_problems(
    spec: &JobSpec,
    data: &Split,
    dir: &Path,
    m: &manifest::Manifest,
    device: &Device,
) -> Result<Vec<String>> {
    let c = &m.commitments;
    if m.version < manifest::MANIFEST_VERSION {
        return Ok(vec![format!(
            "manifest version {}: this engine checks version {} results (committed training states, published on request)",
            m.version,
            manifest::MANIFEST_VERSION
        )]);
    }
    let (total, every) = run_shape(spec, data)?;
    let mut out = Vec::new();
    if m.steps != total || c.every != every {
        out.push(format!(
            "manifest says {} steps committed every {}; the spec makes {total} every {every}",
            m.steps, c.every
        ));
        return Ok(out);
    }
    out.extend(crate::commit::problems(c, total));
    if !out.is_empty() {
        return Ok(out);
    }
    if crate::commit::initial_hash(spec, data, device)? != c.state_hashes[0] {
        out.push("the first committed state is not the spec's initialisation".into());
    }
    let weights_path = dir.join(&m.weights.path);
    let weights: std::collections::BTreeMap<String, candle_core::Tensor> =
        match candle_core::safetensors::load(&weights_path, &Device::Cpu) {
            Ok(w) => w.into_iter().collect(),
            Err(e) => return Ok(vec![format!("{}: {e}", m.weights.path)]),
        };
    let text = match std::fs::read_to_string(dir.join(&m.metrics.path)) {
        Ok(text) => text,
        Err(e) => return Ok(vec![format!("{}: {e}", m.metrics.path)]),
    };
    // Every line is a record: one that does not read is reported, never skipped.
    let mut records: Vec<crate::trainer::MetricsRecord> = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(e) => return Ok(vec![format!("{} line {}: {e}", m.metrics.path, n + 1)]),
        }
    }
    out.extend(crate::commit::final_state_problems(
        c, total, &weights, &records,
    ));
    Ok(out)
}

/// The result's weights loaded into the spec's model, and its metric on `data`'s evaluation
/// split.
fn measure(
    spec: &JobSpec,
    data: &Split,
    dir: &Path,
    m: &manifest::Manifest,
    device: &Device,
) -> Result<(Built, f64)> {
    let mut built = Built::new(spec, data, device)?;
    built.varmap.load(dir.join(&m.weights.path))?;
    let (loss, accuracy) = evaluate(&built.model, data, device)?;
    let record = crate::trainer::MetricsRecord {
        step: m.steps,
        epoch: None,
        train_loss: 0.0,
        eval_loss: loss,
        eval_accuracy: accuracy,
    };
    Ok((built, record.metric(spec.evaluation.metric)))
}

/// Verifies the result in `dir` against the spec and its (already fetched and split) data.
pub fn verify(
    spec: &JobSpec,
    spec_bytes: &[u8],
    data: &Split,
    dir: &Path,
    device: &Device,
) -> Result<Report> {
    let m = manifest::read(dir)?;
    let mut problems = Vec::new();
    let spec_hash = hex::encode(JobSpec::hash_bytes(spec_bytes));
    if m.spec_sha256 != spec_hash {
        problems.push(format!(
            "manifest is for spec {}, this spec is {spec_hash}",
            m.spec_sha256
        ));
    }
    let init = spec.model.init().map(|f| f.sha256.to_ascii_lowercase());
    if m.init_sha256 != init {
        problems.push(format!(
            "manifest says the initial weights were {}, the spec names {}",
            m.init_sha256.as_deref().unwrap_or("the seed's"),
            init.as_deref().unwrap_or("the seed's")
        ));
    }
    check_file(dir, &m.weights, &mut problems);
    check_file(dir, &m.metrics, &mut problems);
    for e in &m.extra {
        check_file(dir, e, &mut problems);
    }
    problems.extend(layout_problems(spec, data, dir, &m));
    problems.extend(commitment_problems(spec, data, dir, &m, device)?);
    let (built, measured) = measure(spec, data, dir, &m, device)?;
    // An illustration, not a check: a failure to draw it costs the sample, not the verdict.
    let sample = match (built.model.transformer(), data) {
        // Not for the poster's own token ids: they cannot be turned back into text here.
        (Some(model), Split::Text { eval, vocab, .. }) => {
            sample(model, eval, vocab, spec.training.seed, device)
                .map_err(|e| tracing::warn!("no text sample: {e}"))
                .ok()
                .flatten()
        }
        _ => None,
    };
    // Same weights, same eval split: only float summation order can differ across devices.
    if (measured - m.result.value).abs() > 1e-4 * m.result.value.abs().max(1.0) {
        problems.push(format!(
            "claimed {} = {}, measured {measured}",
            serde_json::to_string(&m.result.metric).unwrap_or_default(),
            m.result.value
        ));
    }
    Ok(Report {
        result_hash: hex::encode(manifest::result_hash(dir)?),
        problems,
        claimed: m.result.value,
        measured,
        threshold: spec.evaluation.threshold,
        meets_threshold: spec
            .evaluation
            .metric
            .meets(measured, spec.evaluation.threshold),
        sample,
    })
}

/// The model measured on the poster's own held-out data ([`crate::data::private_eval`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrivateEval {
    /// Samples (rows, or characters of text) evaluated.
    pub samples: usize,
    pub measured: f64,
    pub threshold: f64,
    pub meets_threshold: bool,
}

/// Loads the result's weights from `dir` and evaluates them on `private` (a split whose
/// evaluation part is the poster's own data).
pub fn evaluate_private(
    spec: &JobSpec,
    private: &Split,
    dir: &Path,
    device: &Device,
) -> Result<PrivateEval> {
    let m = manifest::read(dir)?;
    let (_, measured) = measure(spec, private, dir, &m, device)?;
    let samples = match private {
        Split::Table { eval, .. } => eval.rows(),
        Split::Text { eval, .. } => eval.len(),
    };
    Ok(PrivateEval {
        samples,
        measured,
        threshold: spec.evaluation.threshold,
        meets_threshold: spec
            .evaluation
            .metric
            .meets(measured, spec.evaluation.threshold),
    })
}
