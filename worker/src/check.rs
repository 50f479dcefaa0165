//! The check before claiming. Everything that could make a job fail for its poster's reasons
//! is tried here, where failing costs nothing: the spec (fetched, hash-checked, validated),
//! the terms against the operator's policy, the dataset (downloaded into the cache training
//! will read, hash-checked, parsed), the memory the job needs against the device's, and a few
//! real training steps on the device, whose pace gives the time estimate. Only a job that
//! passes is claimed; one that fails is refused with its reason and remembered.
//!
//! A check never holds the worker: the spec is small and has a short timeout, a dataset must
//! arrive at a minimum rate, and the parse and the steps run on a blocking thread where a
//! panic comes back as a refusal (see `crashguard` for what a panic cannot cover).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sha2::{Digest, Sha256};
use tensorgrid_artifacts::{fetch, fetch_to_file, probe_size, ArtifactError};
use tensorgrid_client::{anchor_lang::prelude::Pubkey, state::Job};
use tensorgrid_train::{data, memory, rehearsal, spec::JobSpec};
use tokio::sync::Semaphore;

use crate::{
    crashguard,
    estimate::Throughput,
    pipeline::Worker,
    precheck::{is_permanent, precheck, Offer},
    refusals::Kind,
    resources,
};

/// Largest spec file read (specs are a few hundred bytes).
pub const MAX_SPEC_BYTES: u64 = 64 << 10;
/// A spec is small: a server that cannot deliver it in this time is not worth waiting for.
pub const SPEC_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace before a dataset download must keep [`MIN_RATE`].
const DOWNLOAD_GRACE: Duration = Duration::from_secs(15);
/// Least average download rate of a dataset, in bytes per second: a server that trickles
/// (a byte every few seconds) is given up on within the grace period, not after hours.
const MIN_RATE: u64 = 256 << 10;
/// Longest any dataset download may take before claiming.
const MAX_DOWNLOAD: Duration = Duration::from_secs(15 * 60);
/// Longest one training step may take here (by the estimate from the device's measured
/// speed): a job whose single step would take longer is not rehearsed, and not taken.
const MAX_STEP_SECS: f64 = 60.0;
/// Training steps run before claiming: at least 3, more (up to 30) while they take under
/// half a second (a longer rehearsal would lose the race for the job to faster workers).
pub const REHEARSAL_STEPS: rehearsal::Steps = rehearsal::Steps {
    min: 3,
    max: 30,
    budget: Duration::from_millis(500),
};
/// Largest feature magnitude (after the spec's scale) a job's dataset may have.
const MAX_FEATURE_ABS: f32 = 1e6;
/// Share of the device's memory a job may plan to use (the rest for the allocator's slack
/// and everything else on the machine).
const MEMORY_SHARE: f64 = 0.8;

/// A job worth claiming: its spec as checked and how long it should take here.
#[derive(Debug, Clone)]
pub struct Plan {
    pub job: Pubkey,
    pub spec: JobSpec,
    pub spec_bytes: Vec<u8>,
    /// The job as read for the check: what the claim agrees to.
    pub account: Job,
    pub estimated_secs: f64,
    /// Peak memory the job needs, in bytes.
    pub memory_bytes: u64,
}

/// The outcome of a check.
#[derive(Debug)]
pub enum Verdict {
    Take(Box<Plan>),
    /// Not this job (remembered with its kind).
    Refuse(Kind, String),
    /// Not now: a network fault, a server that may come back; looked at again later.
    Later(String),
    /// This worker cannot take any job now (its disk is full): claiming pauses, the job is
    /// looked at again later, and nothing counts against its poster.
    Paused(String),
}

fn refuse_for(reason: String) -> Verdict {
    let kind = if is_permanent(&reason) {
        Kind::Poster
    } else {
        Kind::Settings
    };
    Verdict::Refuse(kind, reason)
}

fn from_artifact(what: &str, e: ArtifactError) -> Verdict {
    match e {
        ArtifactError::Io { .. } => Verdict::Paused(format!("{what}: {e}")),
        // Over this worker's own cap (the server did not say the size beforehand): a
        // setting, not the poster's fault.
        ArtifactError::TooLarge { .. } => Verdict::Refuse(Kind::Settings, format!("{what}: {e}")),
        e if e.is_transient() => Verdict::Later(format!("{what}: {e}")),
        e => Verdict::Refuse(Kind::Poster, format!("{what}: {e}")),
    }
}

/// What a check shares with the others running: slots for downloads, the device (used by one
/// rehearsal at a time, and by a job in training), and one download per dataset at a time.
#[derive(Clone)]
pub struct Gates {
    pub downloads: Arc<Semaphore>,
    pub device: Arc<Semaphore>,
    fetching: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Gates {
    pub fn new(parallel: u32) -> Self {
        Self {
            downloads: Arc::new(Semaphore::new(parallel.max(1) as usize)),
            device: Arc::new(Semaphore::new(1)),
            fetching: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The lock for downloading the dataset with this sha256.
    fn fetching(&self, sha: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut all = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, l| Arc::strong_count(l) > 1);
        all.entry(sha.to_string()).or_default().clone()
    }
}

/// Checks `job` (as `account` shows it) for `w`.
pub async fn check(
    w: &Worker,
    throughput: Throughput,
    gates: &Gates,
    job: Pubkey,
    account: Job,
) -> Verdict {
    let started = std::time::Instant::now();
    let policy = w.read_policy();
    let bytes = match tokio::time::timeout(
        SPEC_TIMEOUT,
        fetch(&account.spec_uri, MAX_SPEC_BYTES, &policy),
    )
    .await
    {
        Err(_) => {
            return Verdict::Refuse(
                Kind::Unreachable,
                format!(
                    "spec: no complete answer within {} s",
                    SPEC_TIMEOUT.as_secs()
                ),
            )
        }
        Ok(Err(e)) => return from_artifact("spec", e),
        Ok(Ok(b)) => b.to_vec(),
    };
    let offer = Offer::from_job(&account);
    let cheap = match precheck(&offer, &bytes, &w.hardware, &w.config, &w.money, |_| 0.0) {
        Ok(p) => p,
        Err(r) => return refuse_for(r.0),
    };
    let spec = cheap.spec;
    let cap = spec
        .limits
        .max_dataset_bytes
        .min(w.config.max_dataset_bytes);
    // A shard index is small: its own cap, whatever the dataset's.
    let sharded = matches!(
        spec.dataset.format,
        tensorgrid_train::spec::DatasetFormat::Shards { .. }
    );
    let cap = if sharded {
        cap.min(tensorgrid_train::spec::limits::MAX_INDEX_BYTES)
    } else {
        cap
    };
    let sha = spec.dataset.sha256.to_ascii_lowercase();
    let cached = w.work.dataset_path(&sha);
    // The most the spec's own word allows (more is the poster's fault; less, this worker's
    // setting).
    let poster_cap = if sharded {
        spec.limits
            .max_dataset_bytes
            .min(tensorgrid_train::spec::limits::MAX_INDEX_BYTES)
    } else {
        spec.limits.max_dataset_bytes
    };
    let poster_bound = cap >= poster_cap;
    let size = if cached.exists() {
        std::fs::metadata(&cached).map_or(cap, |m| m.len())
    } else {
        match probe_size(&spec.dataset.uri, &policy).await {
            Ok(Some(n)) if n > cap => {
                return Verdict::Refuse(
                    if poster_bound {
                        Kind::Poster
                    } else {
                        Kind::Settings
                    },
                    format!("the dataset is {n} bytes, over the cap of {cap}"),
                )
            }
            Ok(Some(n)) => n,
            Ok(None) => cap,
            // A web server that refuses HEAD (presigned GET-only URLs) may still serve the
            // file: the size is taken as the cap, enforced while downloading.
            Err(ArtifactError::Denied { .. } | ArtifactError::Store { .. })
                if spec.dataset.uri.starts_with("http") =>
            {
                cap
            }
            Err(e) => return from_artifact("dataset", e),
        }
    };
    // A tokenizer, initial weights: their sizes are stated, so held to the cap before any
    // download.
    if let Some((role, f)) = spec
        .files()
        .into_iter()
        .find(|(_, f)| f.bytes > w.config.max_dataset_bytes)
    {
        return Verdict::Refuse(
            Kind::Settings,
            format!(
                "{role} is {} bytes, over the cap of {}",
                f.bytes, w.config.max_dataset_bytes
            ),
        );
    }
    // An early estimate from the spec's size alone refuses what cannot fit in time or pay,
    // or whose single step would take too long to rehearse, before anything is downloaded.
    if let Err(r) = precheck(&offer, &bytes, &w.hardware, &w.config, &w.money, |s| {
        throughput.estimate_secs(s, size)
    }) {
        return refuse_for(r.0);
    }
    let step = throughput.step_secs(&spec, size);
    if step > MAX_STEP_SECS {
        return Verdict::Refuse(
            Kind::Settings,
            format!("one training step would take about {step:.0} s here (at most {MAX_STEP_SECS:.0} s)"),
        );
    }
    // Parsing happens in this machine's memory, training in the device's.
    let host = resources::host_memory(w.config.max_job_memory).map(share);
    let device = resources::job_memory(&w.hardware, w.config.max_job_memory).map(share);
    // A file besides the dataset is read whole, and initial weights once more as tensors.
    let others: u64 = spec
        .files()
        .iter()
        .map(|(_, f)| f.bytes.saturating_mul(2))
        .sum();
    let to_parse = memory::parse_bytes(&spec.dataset.format, size).saturating_add(others);
    if let Some(b) = host.filter(|b| to_parse > *b) {
        return Verdict::Refuse(
            Kind::Settings,
            format!(
                "loading the dataset needs about {} MiB, this worker has {} MiB for it",
                to_parse >> 20,
                b >> 20
            ),
        );
    }
    let dataset = Input {
        role: "dataset",
        uri: &spec.dataset.uri,
        sha: sha.clone(),
        cap,
        size,
        poster_bound,
    };
    if !cached.exists() {
        if let Err(v) = download(w, gates, &dataset, &cached).await {
            return v;
        }
    }
    // A sharded dataset: the index names the rest. Its evaluation shards and the first
    // training shard are fetched now (the rehearsal trains on them); the others as training
    // reaches them. The estimates count every shard.
    let (mut size, mut stream_secs) = (size, 0.0);
    if sharded {
        match shard_inputs(w, gates, &spec, &cached, host, others).await {
            Ok(s) => (size, stream_secs) = (s.total_bytes, s.stream_secs),
            Err(v) => return v,
        }
        if let Err(r) = precheck(&offer, &bytes, &w.hardware, &w.config, &w.money, |s| {
            throughput.estimate_secs(s, size)
        }) {
            return refuse_for(r.0);
        }
    }
    // A tokenizer, initial weights: sizes stated in the spec, each held to its own.
    let mut files = Vec::new();
    for (role, f) in spec.files() {
        let input = Input {
            role,
            uri: &f.uri,
            sha: f.sha256.to_ascii_lowercase(),
            cap: f.bytes,
            size: f.bytes,
            poster_bound: true,
        };
        let path = w.work.dataset_path(&input.sha);
        if !path.exists() {
            if let Err(v) = download(w, gates, &input, &path).await {
                return v;
            }
        }
        files.push(path);
    }

    // The parse, the memory the job needs and a few steps, on a blocking thread: a panic is
    // an error here, and the marker makes a crash that no unwinding catches a refusal at the
    // next start. The marker is cleared on that thread, so a shutdown during the steps does
    // not leave it.
    let Ok(_device) = gates.device.acquire().await else {
        return Verdict::Later("shutting down".into());
    };
    let (name, poster) = (job.to_string(), account.poster.to_string());
    if let Err(e) = crashguard::begin_check(&w.work, &name, &poster) {
        return Verdict::Paused(format!("work dir: {e}"));
    }
    let work = w.work.clone();
    let scratch = w.work.root().join("scratch").join(&name);
    let (mut spec2, path, dev) = (spec.clone(), cached.clone(), w.device.clone());
    let store = crate::shards::Shards::new(tokio::runtime::Handle::current(), w.read_policy())
        .cached(crate::shards::Cache {
            dir: w.work.datasets_dir(),
            max_bytes: crate::daemon::DATASET_CACHE_BYTES,
        })
        .stopping(
            w.cancel.clone(),
            Some(std::time::Instant::now() + MAX_DOWNLOAD),
        )
        .without_prefetch()
        .keeping();
    let tried = tokio::task::spawn_blocking(move || {
        let r = rehearse(
            &mut spec2,
            &path,
            &files,
            &dev,
            device,
            &scratch,
            Arc::new(store),
        );
        crashguard::end_check(&work);
        r
    })
    .await;
    let (rehearsal, footprint, data) = match tried {
        Err(e) if e.is_panic() => {
            crashguard::end_check(&w.work);
            return Verdict::Refuse(
                Kind::Crashed,
                format!("the job crashed its check: {}", panic_text(e)),
            );
        }
        Err(e) => return Verdict::Later(format!("check task: {e}")),
        Ok(Err(v)) => return v,
        Ok(Ok(r)) => r,
    };
    // Room for the committed states, the checkpoints and the result, besides the dataset
    // already here: a disk that fills mid-run would cost the stake.
    let room = resources::free_disk(w.work.root()).unwrap_or(u64::MAX);
    let output = rehearsal
        .disk_bytes(&spec)
        .saturating_add(data.shards().map_or(0, |s| stream_disk_bytes(&s.train)));
    if room < output.saturating_add(w.config.min_free_disk) {
        return Verdict::Paused(format!(
            "the work dir has {} MiB free; this job's committed states, checkpoints and result need about {} MiB plus the {} MiB kept free",
            room >> 20,
            output >> 20,
            w.config.min_free_disk >> 20
        ));
    }
    // Shards arrive while the model trains: the slower of the two.
    let estimated = rehearsal
        .estimate_secs(&spec, &data)
        .max(throughput.estimate_secs(&spec, size))
        .max(stream_secs);
    if let Err(r) = precheck(&offer, &bytes, &w.hardware, &w.config, &w.money, |_| {
        estimated
    }) {
        return refuse_for(r.0);
    }
    tracing::info!(
        %job,
        estimated_s = format!("{estimated:.0}"),
        step_ms = format!("{:.1}", rehearsal.secs_per_step * 1e3),
        memory_mib = footprint.bytes >> 20,
        dataset_bytes = size,
        check_ms = format!("{:.0}", started.elapsed().as_secs_f64() * 1e3),
        "worth claiming"
    );
    Verdict::Take(Box::new(Plan {
        job,
        spec,
        spec_bytes: bytes,
        account,
        estimated_secs: estimated,
        memory_bytes: footprint.bytes,
    }))
}

/// The part of a memory budget a job may plan to use.
pub(crate) fn share(bytes: u64) -> u64 {
    (bytes as f64 * MEMORY_SHARE) as u64
}

/// A file a check downloads: the dataset, a tokenizer, initial weights.
struct Input<'a> {
    role: &'a str,
    uri: &'a str,
    /// Lower-case hex.
    sha: String,
    /// Most bytes taken.
    cap: u64,
    /// Bytes expected (the cap when unknown).
    size: u64,
    /// The cap is the spec's own word (its limit, a file's stated size): more is the poster's
    /// fault, not this worker's setting.
    poster_bound: bool,
}

/// Downloads `input` into the cache at `path`: one download of a file at a time, into a file
/// of its own, renamed into the cache only once its bytes hash to the spec's sha256 (so the
/// cache only ever holds verified bytes, whoever else names the same hash).
async fn download(
    w: &Worker,
    gates: &Gates,
    input: &Input<'_>,
    path: &std::path::Path,
) -> Result<(), Verdict> {
    let Input {
        role,
        uri,
        ref sha,
        cap,
        size,
        poster_bound,
    } = *input;
    let lock = gates.fetching(sha);
    let _one = lock.lock().await;
    if path.exists() {
        // Another check brought it meanwhile.
        return Ok(());
    }
    let Ok(_slot) = gates.downloads.acquire().await else {
        return Err(Verdict::Later("shutting down".into()));
    };
    let room = resources::free_disk(w.work.root()).unwrap_or(u64::MAX);
    if room < size.saturating_add(w.config.min_free_disk) {
        return Err(Verdict::Paused(format!(
            "the work dir has {} MiB free; this job's {role} needs {} MiB plus the {} MiB kept free",
            room >> 20,
            size >> 20,
            w.config.min_free_disk >> 20
        )));
    }
    let Some(dir) = path.parent() else {
        return Err(Verdict::Paused("dataset cache: no directory".into()));
    };
    std::fs::create_dir_all(dir).map_err(|e| Verdict::Paused(format!("work dir: {e}")))?;
    let tmp = dir.join(format!(".{sha}.{}.download", std::process::id()));
    let allowed = (DOWNLOAD_GRACE + Duration::from_secs(size / MIN_RATE)).min(MAX_DOWNLOAD);
    let policy = w.read_policy();
    let fetched = tokio::select! {
        _ = w.cancel.cancelled() => Err(Verdict::Later("shutting down".into())),
        r = tokio::time::timeout(allowed, fetch_to_file(uri, cap, &policy, &tmp)) => Ok(r),
    };
    let outcome = match fetched {
        Err(v) => Err(v),
        Ok(Err(_)) => Err(Verdict::Refuse(
            Kind::Unreachable,
            format!(
                "{role}: slower than {} KiB/s ({size} bytes not in {} s)",
                MIN_RATE >> 10,
                allowed.as_secs()
            ),
        )),
        // Over the spec's own word (the binding limit): the poster's file does not keep it.
        Ok(Ok(Err(e @ ArtifactError::TooLarge { .. }))) if poster_bound => Err(Verdict::Refuse(
            Kind::Poster,
            format!("{role}: {e} (the size the spec states)"),
        )),
        Ok(Ok(Err(e))) => Err(from_artifact(role, e)),
        Ok(Ok(Ok(got))) if !got.eq_ignore_ascii_case(sha) => Err(Verdict::Refuse(
            Kind::Poster,
            format!("{role} sha256 is {got}, the spec says {sha}"),
        )),
        Ok(Ok(Ok(_))) => {
            std::fs::rename(&tmp, path).map_err(|e| Verdict::Paused(format!("dataset cache: {e}")))
        }
    };
    let _ = std::fs::remove_file(&tmp);
    outcome
}

/// Bytes a second assumed for shards when a check measured no download (8 MiB/s).
const UNMEASURED_RATE: f64 = 8.0 * 1_048_576.0;

/// What [`shard_inputs`] learned of a sharded dataset.
struct Sharded {
    /// Bytes of every shard.
    total_bytes: u64,
    /// Seconds to download what training streams, at the rate the check's own downloads
    /// came at ([`UNMEASURED_RATE`] when they were in the cache already).
    stream_secs: f64,
}

/// Disk a run's shards take beyond what the check fetched: the dataset cache's share of
/// them, and the shards arriving under temporary names.
fn stream_disk_bytes(train: &[data::shards::Shard]) -> u64 {
    let total = train.iter().fold(0u64, |a, s| a.saturating_add(s.bytes));
    let largest = train.iter().map(|s| s.bytes).max().unwrap_or(0);
    total
        .min(crate::daemon::DATASET_CACHE_BYTES)
        .saturating_add(largest.saturating_mul(2))
}

/// The shards a check of `spec` fetched and the claim needs kept: its evaluation shards and
/// the first training shard, by sha256 (none when the index is not in the cache).
pub(crate) fn checked_shards(work: &crate::WorkDir, spec: &JobSpec) -> Vec<String> {
    if !matches!(
        spec.dataset.format,
        tensorgrid_train::spec::DatasetFormat::Shards { .. }
    ) {
        return Vec::new();
    }
    let Ok(bytes) = std::fs::read(work.dataset_path(&spec.dataset.sha256)) else {
        return Vec::new();
    };
    let Ok(index) = data::shards::Index::parse(spec, &bytes) else {
        return Vec::new();
    };
    index
        .split(spec)
        .1
        .iter()
        .chain(index.first_training_shard(spec))
        .map(|s| s.sha256.to_ascii_lowercase())
        .collect()
}

/// A sharded dataset's index (at `index`, verified): parsed (the poster's fault if it does
/// not), its shards held in memory at once against this machine's (`host`, with `others`
/// bytes of job files), and its evaluation shards and first training shard downloaded into
/// the cache. Returns the bytes of every shard.
async fn shard_inputs(
    w: &Worker,
    gates: &Gates,
    spec: &JobSpec,
    index: &std::path::Path,
    host: Option<u64>,
    others: u64,
) -> Result<Sharded, Verdict> {
    let bytes = std::fs::read(index).map_err(|e| Verdict::Paused(format!("dataset cache: {e}")))?;
    if !hex::encode(Sha256::digest(&bytes)).eq_ignore_ascii_case(&spec.dataset.sha256) {
        let _ = std::fs::remove_file(index);
        return Err(Verdict::Later(
            "the cached shard index does not hash to its name; removed, fetched again".into(),
        ));
    }
    let index = data::shards::Index::parse(spec, &bytes)
        .map_err(|e| Verdict::Refuse(Kind::Poster, e.to_string()))?;
    // This worker's own limits: each shard is read whole, the evaluation shards together.
    let (train, eval) = index.split(spec);
    let cap = w.config.max_dataset_bytes;
    let eval_bytes = eval.iter().fold(0u64, |a, s| a.saturating_add(s.bytes));
    if let Some(s) = train.iter().find(|s| s.bytes > cap) {
        return Err(Verdict::Refuse(
            Kind::Settings,
            format!(
                "shard {} is {} bytes, over the cap of {cap}",
                s.uri, s.bytes
            ),
        ));
    }
    if eval_bytes > cap {
        return Err(Verdict::Refuse(
            Kind::Settings,
            format!("the evaluation shards are {eval_bytes} bytes, over the cap of {cap}"),
        ));
    }
    // Every shard where this worker reads (checked now, not when training reaches it).
    let allow_http = w.config.allow_http;
    if let Some(s) = index.shards.iter().find(|s| {
        !(s.uri.starts_with("s3://")
            || s.uri.starts_with("https://")
            || (allow_http && s.uri.starts_with("http://")))
    }) {
        return Err(Verdict::Refuse(
            Kind::Settings,
            format!(
                "shard URI {:?}: only s3:// and https://{} are fetched",
                s.uri,
                if allow_http { " (and http://)" } else { "" }
            ),
        ));
    }
    let resident = index.resident_bytes(spec);
    let to_parse = memory::parse_bytes(&spec.dataset.format, resident).saturating_add(others);
    if let Some(b) = host.filter(|b| to_parse > *b) {
        return Err(Verdict::Refuse(
            Kind::Settings,
            format!(
                "the shards held at once need about {} MiB, this worker has {} MiB for them",
                to_parse >> 20,
                b >> 20
            ),
        ));
    }
    let first = index.first_training_shard(spec);
    let (began, mut fetched) = (std::time::Instant::now(), 0u64);
    for (role, shard) in eval
        .iter()
        .map(|s| ("evaluation shard", s))
        .chain(first.map(|s| ("training shard", s)))
    {
        let input = Input {
            role,
            uri: &shard.uri,
            sha: shard.sha256.to_ascii_lowercase(),
            cap: shard.bytes,
            size: shard.bytes,
            poster_bound: true,
        };
        let path = w.work.dataset_path(&input.sha);
        if !path.exists() {
            download(w, gates, &input, &path).await?;
            fetched = fetched.saturating_add(shard.bytes);
        }
    }
    let train_bytes = train.iter().fold(0u64, |a, s| a.saturating_add(s.bytes));
    let samples = index.samples(spec).max(1);
    let positions = spec
        .total_steps(usize::try_from(samples).unwrap_or(usize::MAX))
        .saturating_mul(spec.training.batch_size as u64);
    // The share of the data the run reads (a fraction of an epoch, or several), all of it
    // once at most when the shards stay in the cache.
    let read = train_bytes as f64 * positions as f64 / samples as f64;
    let streamed = if train_bytes <= crate::daemon::DATASET_CACHE_BYTES {
        read.min(train_bytes as f64)
    } else {
        read
    };
    // At the rate measured on a megabyte or more; fewer bytes say little about it, and
    // shards already here none: then at a modest rate.
    let rate = if fetched >= 1 << 20 {
        fetched as f64 / began.elapsed().as_secs_f64().max(1e-3)
    } else {
        UNMEASURED_RATE
    };
    let stream_secs = streamed / rate;
    Ok(Sharded {
        total_bytes: index.total_bytes(),
        stream_secs,
    })
}

/// The blocking part: read (and hash again: the bytes parsed are the bytes checked), parse,
/// size, steps.
fn rehearse(
    spec: &mut JobSpec,
    path: &std::path::Path,
    files: &[std::path::PathBuf],
    device: &tensorgrid_train::Device,
    budget: Option<u64>,
    scratch: &std::path::Path,
    store: Arc<dyn data::ShardStore>,
) -> Result<(rehearsal::Rehearsal, memory::Footprint, data::Split), Verdict> {
    fault_point();
    let bytes = std::fs::read(path).map_err(|e| Verdict::Paused(format!("dataset cache: {e}")))?;
    if !hex::encode(Sha256::digest(&bytes)).eq_ignore_ascii_case(&spec.dataset.sha256) {
        let _ = std::fs::remove_file(path);
        return Err(Verdict::Later(
            "the cached dataset does not hash to its name; removed, fetched again".into(),
        ));
    }
    for ((role, f), file) in spec.files_mut().into_iter().zip(files) {
        let read =
            std::fs::read(file).map_err(|e| Verdict::Paused(format!("dataset cache: {e}")))?;
        if f.attach(role, read).is_err() {
            let _ = std::fs::remove_file(file);
            return Err(Verdict::Later(format!(
                "the cached {role} does not hash to its name; removed, fetched again"
            )));
        }
    }
    let spec = &*spec;
    let split = data::split_with(spec, &bytes, Some(store)).map_err(|e| match e.fault() {
        tensorgrid_train::Fault::Transient | tensorgrid_train::Fault::Stopped => {
            Verdict::Later(format!("dataset: {e}"))
        }
        _ => Verdict::Refuse(Kind::Poster, e.to_string()),
    })?;
    drop(bytes);
    // Finite but huge features (placed, say, only in the batches after the rehearsal's) can
    // make a loss overflow late in a run, a failure the steps here would not show: a dataset
    // that is not scaled to a sane range is not taken.
    if let data::Split::Table { train, eval, .. } = &split {
        // Shards not yet read hold pixel bytes up to 255, scaled.
        let unread = match (split.shards(), spec.dataset.format.each_file()) {
            (Some(_), tensorgrid_train::spec::DatasetFormat::Cifar { scale }) => {
                255.0 * scale.abs()
            }
            _ => 0.0,
        };
        let largest = train
            .features
            .iter()
            .chain(&eval.features)
            .fold(unread, |m, v| m.max(v.abs()));
        if largest > MAX_FEATURE_ABS {
            return Err(Verdict::Refuse(
                Kind::Settings,
                format!(
                    "features reach {largest:e} after scaling, beyond {MAX_FEATURE_ABS:e} (dataset.format.scale brings them in range)"
                ),
            ));
        }
    }
    let footprint = memory::footprint_on(spec, &split, device);
    if let Some(b) = budget.filter(|b| footprint.bytes > *b) {
        return Err(Verdict::Refuse(
            Kind::Settings,
            format!(
                "training needs about {} MiB ({} parameters), this worker has {} MiB for a job",
                footprint.bytes >> 20,
                footprint.params,
                b >> 20
            ),
        ));
    }
    let r = rehearsal::rehearse(spec, &split, device, REHEARSAL_STEPS, scratch).map_err(|e| {
        match e.fault() {
            tensorgrid_train::Fault::Poster => {
                Verdict::Refuse(Kind::Poster, format!("a training step failed: {e}"))
            }
            tensorgrid_train::Fault::Transient | tensorgrid_train::Fault::Stopped => {
                Verdict::Later(format!("rehearsal: {e}"))
            }
            // The engine or the device (another process filling the GPU, a bug): not the
            // poster's, looked at again after a restart.
            _ => Verdict::Refuse(Kind::Settings, format!("the rehearsal failed here: {e}")),
        }
    })?;
    Ok((r, footprint, split))
}

/// `TENSORGRID_WORKER_FAULT_IN_CHECK=panic|abort` makes the blocking part of every check
/// panic, or abort the process as an out-of-memory kill would: how the tests stand in for an
/// input that crashes the engine, now that the known ones are refused before they can.
fn fault_point() {
    match std::env::var("TENSORGRID_WORKER_FAULT_IN_CHECK").as_deref() {
        Ok("panic") => panic!("injected fault (TENSORGRID_WORKER_FAULT_IN_CHECK)"),
        Ok("abort") => {
            tracing::error!("aborting on purpose (TENSORGRID_WORKER_FAULT_IN_CHECK)");
            std::process::abort()
        }
        _ => {}
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
