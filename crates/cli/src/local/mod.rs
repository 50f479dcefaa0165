//! Commands that run on this machine only: train a spec, verify a result directory, benchmark.

pub mod bench;
pub mod shard;
pub mod train;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use tensorgrid_artifacts::{fetch, sha256_hex, ReadPolicy};
use tensorgrid_train::{
    data,
    device::{self, DeviceChoice},
    spec::JobSpec,
};

#[derive(Args)]
pub struct Common {
    /// The job spec (JSON).
    #[arg(long)]
    pub spec: PathBuf,
    /// auto (CUDA, then Metal, then CPU), cpu, cuda or metal.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Cache for downloaded datasets, keyed by sha256.
    #[arg(long, env = "TENSORGRID_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Reads, validates and loads a spec and its dataset.
pub fn load(c: &Common) -> Result<(JobSpec, Vec<u8>, data::Split, tensorgrid_train::Device)> {
    let bytes = std::fs::read(&c.spec).with_context(|| format!("reading {}", c.spec.display()))?;
    let mut spec = JobSpec::from_json(&bytes).map_err(|e| spec_error(&c.spec, e))?;
    let base = c.spec.parent().map(Path::to_path_buf).unwrap_or_default();
    let cache = c.cache_dir.as_deref();
    for (role, f) in spec.files_mut() {
        let bytes = if f.uri.starts_with("s3://") {
            fetch_s3(&f.uri, f.bytes)?
        } else {
            data::fetch::fetch(&f.uri, &f.sha256, f.bytes, &base, cache)?
        };
        f.attach(role, bytes).with_context(|| role.to_string())?;
    }
    let split = if spec.dataset.uri.starts_with("s3://") {
        let d = &spec.dataset;
        let bytes = fetch_s3(&d.uri, spec.limits.max_dataset_bytes)?;
        let actual = sha256_hex(&bytes);
        if actual != d.sha256.to_ascii_lowercase() {
            bail!(
                "dataset {}: sha256 is {actual}, the spec says {}",
                d.uri,
                d.sha256
            );
        }
        data::split_with(&spec, &bytes, Some(shards(&base, cache)))?
    } else {
        data::split_with(
            &spec,
            &data::fetch::fetch(
                &spec.dataset.uri,
                &spec.dataset.sha256,
                spec.limits.max_dataset_bytes,
                &base,
                cache,
            )?,
            Some(shards(&base, cache)),
        )?
    };
    let dev = device::select(c.device)?;
    Ok((spec, bytes, split, dev))
}

/// A spec that does not parse or validate, on one line with every problem listed.
pub fn spec_error(path: &Path, e: tensorgrid_train::Error) -> anyhow::Error {
    match e {
        tensorgrid_train::Error::InvalidSpec(problems) => anyhow!(
            "{}: invalid job spec ({} problem{}): {}",
            path.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("; ")
        ),
        other => anyhow!("{}: {other}", path.display()),
    }
}

/// Where a sharded dataset's shards come from here: S3 as [`fetch_s3`], the rest as a spec's
/// local or HTTP files.
fn shards(base: &Path, cache: Option<&Path>) -> std::sync::Arc<dyn data::ShardStore> {
    struct Here(data::shards::LocalStore);
    impl data::ShardStore for Here {
        fn get(&self, s: &data::shards::Shard) -> tensorgrid_train::Result<Vec<u8>> {
            if s.uri.starts_with("s3://") {
                fetch_s3(&s.uri, s.bytes).map_err(|e| tensorgrid_train::Error::Fetch {
                    uri: s.uri.clone(),
                    reason: format!("{e:#}"),
                })
            } else {
                self.0.get(s)
            }
        }
    }
    std::sync::Arc::new(Here(data::shards::LocalStore {
        base_dir: base.to_path_buf(),
        cache_dir: cache.map(Path::to_path_buf),
    }))
}

/// An `s3://` object of at most `limit` bytes, through the artifact store's client.
fn fetch_s3(uri: &str, limit: u64) -> Result<Vec<u8>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt
        .block_on(fetch(uri, limit, &ReadPolicy::default()))?
        .to_vec())
}
