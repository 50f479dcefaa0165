//! The result manifest: what a worker publishes and what its on-chain `result_hash` commits
//! to (the sha256 of `manifest.json`). It lists the weights and the metrics log with their
//! own hashes, the spec hash, the device, CPU ISA class and software versions. No timestamps: two runs of
//! the same spec on the same kind of machine produce the same bytes.

use std::{collections::BTreeMap, io::Write, path::Path};

use candle_core::Device;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{device, spec::JobSpec, trainer::MetricsRecord, Error, Result};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const METRICS_FILE: &str = "metrics.jsonl";
/// 2: the manifest commits to the training state's hashes (`commitments`); 3: the states are
/// published on request, and the last one is checked from the weights and `commitments.last`.
pub const MANIFEST_VERSION: u32 = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMetric {
    pub metric: crate::spec::Metric,
    pub value: f64,
    pub threshold: f64,
    pub meets_threshold: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub spec_sha256: String,
    pub weights: FileEntry,
    pub metrics: FileEntry,
    pub result: FinalMetric,
    pub steps: u64,
    pub device: String,
    /// The device's class: on the CPU its ISA class (FMA changes rounding), on a GPU its
    /// model, architecture and SM count ([`device::accelerator_class`]). Bits are reproducible
    /// within a class and across thread counts, so the thread count is not recorded.
    pub cpu_isa: String,
    /// The type the training steps computed in when not f32 (`bf16`, `f16`): the spec's
    /// `training.mixed_precision` on an accelerator ([`crate::precision`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_dtype: Option<String>,
    pub software: BTreeMap<String, String>,
    /// The training state's hash every `every` steps: the result hash commits to the whole
    /// run, not only its end. Empty in a version 1 manifest, which verification reports.
    #[serde(default)]
    pub commitments: crate::commit::Commitments,
    /// Files published beside the weights and the metrics ([`crate::hf::extra_files`]): a
    /// `gpt2` result's Hugging Face `config.json`, a trained BPE's `tokenizer.json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<FileEntry>,
    /// A fine-tune's starting weights (`model.init`): their sha256, which the spec hash
    /// already commits to, said here so a reader of the result sees what it grew from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_sha256: Option<String>,
}

impl Manifest {
    /// The files the manifest lists (not itself): what is published with it.
    pub fn files(&self) -> Vec<&str> {
        [&self.weights, &self.metrics]
            .into_iter()
            .chain(&self.extra)
            .map(|e| e.path.as_str())
            .collect()
    }
}

pub(crate) fn entry(dir: &Path, name: &str) -> Result<FileEntry> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
    Ok(FileEntry {
        path: name.into(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes: bytes.len() as u64,
    })
}

/// Writes weights, metrics log and manifest into `dir`.
#[allow(clippy::too_many_arguments)]
pub fn write(
    spec: &JobSpec,
    spec_bytes: &[u8],
    data: &crate::data::Split,
    varmap: &VarMap,
    records: &[MetricsRecord],
    dev: &Device,
    steps: u64,
    commitments: crate::commit::Commitments,
    dir: &Path,
) -> Result<Manifest> {
    // A gpt2 model is published as Hugging Face lays it out; the others as candle saves them.
    let weights_file = if spec.model.transformer().is_some_and(|t| t.gpt2) {
        crate::hf::save_weights(varmap, &dir.join(crate::hf::WEIGHTS_FILE))?;
        crate::hf::WEIGHTS_FILE
    } else {
        varmap.save(dir.join(WEIGHTS_FILE))?;
        WEIGHTS_FILE
    };
    let mut extra = Vec::new();
    for (name, bytes) in crate::hf::extra_files(spec, data) {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(Error::io(&path))?;
        extra.push(entry(dir, name)?);
    }
    let metrics_path = dir.join(METRICS_FILE);
    let mut f = std::fs::File::create(&metrics_path).map_err(Error::io(&metrics_path))?;
    for r in records {
        writeln!(
            f,
            "{}",
            serde_json::to_string(r).expect("record serialises")
        )
        .map_err(Error::io(&metrics_path))?;
    }
    let last = records
        .last()
        .ok_or_else(|| Error::Format("no evaluation was recorded".into()))?;
    let metric = spec.evaluation.metric;
    let value = last.metric(metric);
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        spec_sha256: hex::encode(JobSpec::hash_bytes(spec_bytes)),
        weights: entry(dir, weights_file)?,
        metrics: entry(dir, METRICS_FILE)?,
        result: FinalMetric {
            metric,
            value,
            threshold: spec.evaluation.threshold,
            meets_threshold: metric.meets(value, spec.evaluation.threshold),
        },
        steps,
        device: device::name(dev).into(),
        cpu_isa: device::accelerator_class(dev),
        compute_dtype: crate::precision::manifest_name(&spec.training, device::name(dev)),
        software: BTreeMap::from([
            (
                "tensorgrid-train".into(),
                crate::checkpoint::ENGINE_VERSION.into(),
            ),
            ("candle-core".into(), "0.11.1".into()),
        ]),
        commitments,
        extra,
        init_sha256: spec.model.init().map(|f| f.sha256.to_ascii_lowercase()),
    };
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&manifest).expect("manifest serialises"),
    )
    .map_err(Error::io(&path))?;
    Ok(manifest)
}

/// sha256 of the manifest file in `dir`.
pub fn result_hash(dir: &Path) -> Result<[u8; 32]> {
    let path = dir.join(MANIFEST_FILE);
    Ok(Sha256::digest(std::fs::read(&path).map_err(Error::io(&path))?).into())
}

pub fn read(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    serde_json::from_slice(&std::fs::read(&path).map_err(Error::io(&path))?)
        .map_err(|e| Error::Format(format!("{}: {e}", path.display())))
}
