//! Datasets larger than memory ([`DatasetFormat::Shards`]): a hashed index of shards, each
//! fetched through a [`ShardStore`], verified and parsed on its own while training streams
//! through them.
//!
//! The order is a pure function of (seed, position): epoch `e` visits the training shards in
//! the permutation drawn for `e`, and each shard's samples in a permutation drawn for
//! (`e`, shard). A step's batch is the samples at its positions in that stream, so any step
//! can be computed without the steps before it: a run resumed mid-shard, or a verifier
//! re-running one segment, reads exactly the shards that segment touches.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{formats, Table};
use crate::{
    rng,
    spec::{limits, DatasetFormat, JobSpec, TokenDtype, CIFAR_RECORD},
    Error, Result,
};

/// One shard of an index: where it is, its sha256 and its exact size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// As written in the index; [`Index::parse`] makes a relative one absolute.
    pub uri: String,
    pub sha256: String,
    pub bytes: u64,
}

/// A shard index file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub shards: Vec<Shard>,
}

/// Gets a shard's bytes. The stream checks their size and sha256 itself: a store is trusted
/// with nothing but moving bytes.
pub trait ShardStore: Send + Sync {
    /// The bytes at `shard.uri` (absolute), at most `shard.bytes` of them.
    fn get(&self, shard: &Shard) -> Result<Vec<u8>>;

    /// The stream has moved on from `shard` for now: a cache may let it go.
    fn release(&self, _shard: &Shard) {}
}

/// What a shard holds, as the spec's `shard_format` says.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Tokens {
        dtype: TokenDtype,
        vocab: usize,
        /// Ids a training window reads: the model's context + 1.
        window: usize,
    },
    Cifar {
        scale: f32,
        classes: usize,
    },
}

impl Kind {
    fn of(spec: &JobSpec) -> Result<Self> {
        let DatasetFormat::Shards {
            shard_format,
            classes,
            ..
        } = &spec.dataset.format
        else {
            return Err(Error::Internal("not a sharded dataset".into()));
        };
        match **shard_format {
            DatasetFormat::Tokens {
                dtype, vocab_size, ..
            } => {
                let context = spec
                    .model
                    .transformer()
                    .map(|t| t.context)
                    .ok_or_else(|| Error::Format("token shards need a transformer".into()))?;
                Ok(Kind::Tokens {
                    dtype,
                    vocab: vocab_size as usize,
                    window: context + 1,
                })
            }
            DatasetFormat::Cifar { scale } => Ok(Kind::Cifar {
                scale,
                classes: classes.unwrap_or(0) as usize,
            }),
            _ => Err(Error::Format(
                "dataset.format.shard_format must be tokens or cifar".into(),
            )),
        }
    }

    /// Bytes a shard of this kind must be a whole number of.
    fn unit(self) -> u64 {
        match self {
            Kind::Tokens { dtype, .. } => dtype.width() as u64,
            Kind::Cifar { .. } => CIFAR_RECORD as u64,
        }
    }

    /// Training samples in a shard of `bytes`: records, or non-overlapping windows of
    /// `context + 1` ids (consecutive windows share one id, the last target of one being the
    /// first input of the next).
    fn samples(self, bytes: u64) -> u64 {
        match self {
            Kind::Tokens { window, .. } => {
                (bytes / self.unit()).saturating_sub(1) / (window as u64 - 1)
            }
            Kind::Cifar { .. } => bytes / self.unit(),
        }
    }
}

impl Index {
    /// Parses and checks an index (`bytes`, verified against `dataset.sha256` by the caller)
    /// for `spec`, whose `dataset.uri` it was read from: every shard's URI (relative ones
    /// made absolute), hash and size, and that each holds at least one sample. Every problem
    /// is listed.
    pub fn parse(spec: &JobSpec, bytes: &[u8]) -> Result<Self> {
        let DatasetFormat::Shards { eval_shards, .. } = spec.dataset.format else {
            return Err(Error::Internal("not a sharded dataset".into()));
        };
        let kind = Kind::of(spec)?;
        let mut index: Index = serde_json::from_slice(bytes)
            .map_err(|e| Error::Format(format!("shard index: {e}")))?;
        let n = index.shards.len();
        if !(2..=limits::MAX_SHARDS).contains(&n) || eval_shards as usize >= n {
            return Err(Error::Format(format!(
                "shard index: {n} shards; it needs 2..={} of them, more than \
                 dataset.format.eval_shards ({eval_shards})",
                limits::MAX_SHARDS
            )));
        }
        let mut problems = Vec::new();
        let eval_from = n - eval_shards as usize;
        for (i, s) in index.shards.iter_mut().enumerate() {
            let name = format!("shard {i} ({})", s.uri);
            match resolve(&spec.dataset.uri, &s.uri) {
                Ok(uri) => s.uri = uri,
                Err(e) => problems.push(format!("{name}: {e}")),
            }
            if !(s.sha256.len() == 64 && s.sha256.chars().all(|c| c.is_ascii_hexdigit())) {
                problems.push(format!("{name}: sha256 must be 64 hex characters"));
            }
            let max = limits::MAX_SHARD_BYTES.min(spec.limits.max_dataset_bytes);
            if !(1..=max).contains(&s.bytes) {
                problems.push(format!("{name}: {} bytes; a shard is 1..={max}", s.bytes));
            } else if !s.bytes.is_multiple_of(kind.unit()) {
                problems.push(format!(
                    "{name}: {} bytes is not a whole number of {}-byte {}",
                    s.bytes,
                    kind.unit(),
                    match kind {
                        Kind::Tokens { .. } => "ids",
                        Kind::Cifar { .. } => "records",
                    }
                ));
            } else if i < eval_from && kind.samples(s.bytes) == 0 {
                problems.push(format!(
                    "{name}: too short for one training sample ({} ids a window)",
                    match kind {
                        Kind::Tokens { window, .. } => window,
                        Kind::Cifar { .. } => 1,
                    }
                ));
            }
        }
        let eval_bytes = index.shards[eval_from..]
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.bytes));
        if eval_bytes > spec.limits.max_dataset_bytes {
            problems.push(format!(
                "the {eval_shards} evaluation shards hold {eval_bytes} bytes, more than \
                 limits.max_dataset_bytes ({}): they are read whole",
                spec.limits.max_dataset_bytes
            ));
        }
        if problems.is_empty() {
            return Ok(index);
        }
        let shown = problems.len().min(20);
        let more = problems.len() - shown;
        let mut msg = format!("shard index: {}", problems[..shown].join("; "));
        if more > 0 {
            msg.push_str(&format!("; and {more} more"));
        }
        Err(Error::Format(msg))
    }

    /// The training shards and the evaluation shards (the last `eval_shards`).
    pub fn split(&self, spec: &JobSpec) -> (&[Shard], &[Shard]) {
        let eval = match spec.dataset.format {
            DatasetFormat::Shards { eval_shards, .. } => eval_shards as usize,
            _ => 0,
        };
        self.shards
            .split_at(self.shards.len() - eval.min(self.shards.len()))
    }

    /// Bytes of every shard together.
    pub fn total_bytes(&self) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.bytes))
    }

    /// Bytes of data a run holds at its peak: the evaluation shards, and the two largest
    /// training shards with a third arriving.
    pub fn resident_bytes(&self, spec: &JobSpec) -> u64 {
        let (train, eval) = self.split(spec);
        let largest = train.iter().map(|s| s.bytes).max().unwrap_or(0);
        eval.iter()
            .fold(0u64, |a, s| a.saturating_add(s.bytes))
            .saturating_add(largest.saturating_mul(3))
    }
}

/// The order epoch `epoch` visits `n` training shards in.
pub fn epoch_order(seed: u64, epoch: u64, n: usize) -> Vec<u32> {
    rng::permutation(seed, "shards", epoch, n)
}

/// `rel` made absolute against the index's URI: a URI with a scheme stays as it is; a relative
/// path (no `..`, no leading `/`) replaces the index URI's last segment.
fn resolve(index_uri: &str, rel: &str) -> std::result::Result<String, String> {
    if ["s3://", "https://", "http://"]
        .iter()
        .any(|s| rel.starts_with(s))
    {
        return Ok(rel.to_string());
    }
    if rel.starts_with("file:") {
        // An index read from a store must not point a worker at its own disk.
        return if index_uri.starts_with("file:") {
            Ok(rel.to_string())
        } else {
            Err("a file: shard in an index that is not itself a local file".into())
        };
    }
    let bad = rel.is_empty()
        || rel.len() > 1_024
        || rel.starts_with('/')
        || rel.contains(':')
        || rel.contains('\\')
        || rel
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || rel.chars().any(|c| c.is_control() || c == '?' || c == '#');
    if bad {
        return Err("not a URI (s3://, https://) nor a plain relative path".into());
    }
    let base = match index_uri.rfind('/') {
        // `file:x.json`: relative to the spec's directory, like the index.
        None => index_uri.find(':').map_or("", |i| &index_uri[..=i]),
        Some(i) => &index_uri[..=i],
    };
    Ok(format!("{base}{rel}"))
}

/// A shard's bytes, parsed.
enum Parsed {
    Tokens(Vec<u32>),
    Table(Table),
}

impl Parsed {
    fn values(&self) -> usize {
        match self {
            Parsed::Tokens(ids) => ids.len(),
            Parsed::Table(t) => t.features.len(),
        }
    }
}

/// Checks `bytes` against `shard` and parses them as `kind`.
fn parse(kind: Kind, shard: &Shard, bytes: &[u8]) -> Result<Parsed> {
    if bytes.len() as u64 != shard.bytes {
        return Err(Error::Format(format!(
            "shard {}: {} bytes, the index says {}",
            shard.uri,
            bytes.len(),
            shard.bytes
        )));
    }
    let actual = hex::encode(Sha256::digest(bytes));
    if !actual.eq_ignore_ascii_case(&shard.sha256) {
        return Err(Error::HashMismatch {
            uri: shard.uri.clone(),
            expected: shard.sha256.to_ascii_lowercase(),
            actual,
        });
    }
    let named = |e: Error| match e {
        Error::Format(m) => Error::Format(format!("shard {}: {m}", shard.uri)),
        e => e,
    };
    match kind {
        Kind::Tokens { dtype, vocab, .. } => formats::parse_tokens(bytes, dtype, vocab)
            .map(Parsed::Tokens)
            .map_err(named),
        Kind::Cifar { scale, classes } => {
            let mut t = formats::parse_cifar(bytes).map_err(named)?;
            if let Some(i) = t.labels.iter().position(|&l| l as usize >= classes) {
                return Err(Error::Format(format!(
                    "shard {}: record {i} has label {}, the spec has {classes} classes",
                    shard.uri, t.labels[i]
                )));
            }
            if scale != 1.0 {
                t.features.iter_mut().for_each(|v| *v *= scale);
            }
            Ok(Parsed::Table(t))
        }
    }
}

/// The training shards of a job, streamed, and its evaluation shards' data.
pub struct ShardSet {
    pub train: Vec<Shard>,
    pub eval: Vec<Shard>,
    kind: Kind,
    /// Training samples in each training shard.
    samples: Vec<u64>,
    total: u64,
    store: Arc<dyn ShardStore>,
    /// Shards fetched so far (a test's and a benchmark's view of the streaming).
    fetched: Mutex<Vec<usize>>,
}

impl std::fmt::Debug for ShardSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSet")
            .field("train", &self.train.len())
            .field("eval", &self.eval.len())
            .field("samples", &self.total)
            .finish()
    }
}

/// The evaluation data of a sharded dataset.
pub enum Eval {
    Tokens(Vec<u32>),
    Table(Table),
}

impl ShardSet {
    /// The set for `spec` from its checked index, and its evaluation shards read whole
    /// through `store`.
    pub fn open(spec: &JobSpec, index: &Index, store: Arc<dyn ShardStore>) -> Result<(Self, Eval)> {
        let kind = Kind::of(spec)?;
        let (train, eval) = index.split(spec);
        let samples: Vec<u64> = train.iter().map(|s| kind.samples(s.bytes)).collect();
        let total = samples.iter().fold(0u64, |a, s| a.saturating_add(*s));
        let set = ShardSet {
            train: train.to_vec(),
            eval: eval.to_vec(),
            kind,
            samples,
            total,
            store,
            fetched: Mutex::new(Vec::new()),
        };
        let mut out = match kind {
            Kind::Tokens { .. } => Eval::Tokens(Vec::new()),
            Kind::Cifar { .. } => Eval::Table(Table {
                features: Vec::new(),
                labels: Vec::new(),
                dim: CIFAR_RECORD - 1,
            }),
        };
        for s in eval {
            let bytes = set.store.get(s)?;
            match (parse(kind, s, &bytes)?, &mut out) {
                (Parsed::Tokens(ids), Eval::Tokens(all)) => all.extend(ids),
                (Parsed::Table(t), Eval::Table(all)) => {
                    all.features.extend(t.features);
                    all.labels.extend(t.labels);
                }
                _ => return Err(Error::Internal("shard kinds differ".into())),
            }
            set.store.release(s);
        }
        Ok((set, out))
    }

    /// Training samples in one epoch.
    pub fn samples(&self) -> u64 {
        self.total
    }

    /// The classes of an image dataset's labels.
    pub fn classes(&self) -> Option<usize> {
        match self.kind {
            Kind::Cifar { classes, .. } => Some(classes),
            Kind::Tokens { .. } => None,
        }
    }

    /// Bytes the stream holds at its peak: two parsed shards (a `u32` per id, an `f32` per
    /// pixel) with their sample orders, and a third arriving (its bytes and its parse).
    pub fn resident_bytes(&self) -> u64 {
        let largest = self.train.iter().map(|s| s.bytes).max().unwrap_or(0);
        let parsed = match self.kind {
            Kind::Tokens { dtype, .. } => largest / dtype.width() as u64 * 4,
            Kind::Cifar { .. } => largest.saturating_mul(4),
        };
        let order = self
            .samples
            .iter()
            .max()
            .copied()
            .unwrap_or(0)
            .saturating_mul(4);
        parsed
            .saturating_add(order)
            .saturating_mul(3)
            .saturating_add(largest)
    }

    /// Training shards fetched so far, in order (each index into [`Self::train`]).
    pub fn fetched(&self) -> Vec<usize> {
        self.fetched.lock().map(|f| f.clone()).unwrap_or_default()
    }

    fn load(&self, i: usize) -> Result<Parsed> {
        if let Ok(mut f) = self.fetched.lock() {
            f.push(i);
        }
        let shard = &self.train[i];
        parse(self.kind, shard, &self.store.get(shard)?)
    }
}

/// A shard in memory with its epoch's sample order.
struct Loaded {
    epoch: u64,
    shard: usize,
    data: Arc<Parsed>,
    order: Vec<u32>,
    /// Ids skipped at the shard's start this epoch (tokens), so windows fall elsewhere each
    /// epoch.
    shift: usize,
}

/// Where training is in a [`ShardSet`]: the shards in memory (at most two) and the next one
/// arriving on a thread of its own.
pub(crate) struct Stream {
    set: Arc<ShardSet>,
    seed: u64,
    loaded: VecDeque<Loaded>,
    /// The epoch whose shard order `cum` is for, and the samples before each shard in it.
    order: Option<(u64, Vec<u32>, Vec<u64>)>,
    next: Option<(usize, std::thread::JoinHandle<Result<Parsed>>)>,
}

/// Samples of a batch: token windows `(inputs, targets)` or table rows.
pub(crate) enum Batch {
    Tokens { x: Vec<u32>, y: Vec<u32> },
    Table(Table),
}

impl Stream {
    pub(crate) fn new(set: Arc<ShardSet>, seed: u64) -> Self {
        Self {
            set,
            seed,
            loaded: VecDeque::new(),
            order: None,
            next: None,
        }
    }

    pub(crate) fn set(&self) -> &Arc<ShardSet> {
        &self.set
    }

    /// The samples at stream positions `from..to` (position `p` is sample `p % samples` of
    /// epoch `p / samples`).
    pub(crate) fn take(&mut self, from: u64, to: u64) -> Result<Batch> {
        let total = self.set.total.max(1);
        let mut out = match self.set.kind {
            Kind::Tokens { window, .. } => Batch::Tokens {
                x: Vec::with_capacity((to - from) as usize * (window - 1)),
                y: Vec::with_capacity((to - from) as usize * (window - 1)),
            },
            Kind::Cifar { .. } => Batch::Table(Table {
                features: Vec::new(),
                labels: Vec::new(),
                dim: CIFAR_RECORD - 1,
            }),
        };
        let ctx = match self.set.kind {
            Kind::Tokens { window, .. } => window - 1,
            Kind::Cifar { .. } => 0,
        };
        let mut last = None;
        for p in from..to {
            let (epoch, at) = (p / total, p % total);
            let (shard, within) = self.locate(epoch, at);
            let l = self.shard(epoch, shard)?;
            let sample = l.order[within as usize] as usize;
            match (&*l.data, &mut out) {
                (Parsed::Tokens(ids), Batch::Tokens { x, y }) => {
                    let o = l.shift + sample * ctx;
                    x.extend_from_slice(&ids[o..o + ctx]);
                    y.extend_from_slice(&ids[o + 1..o + ctx + 1]);
                }
                (Parsed::Table(t), Batch::Table(b)) => {
                    b.features
                        .extend_from_slice(&t.features[sample * t.dim..(sample + 1) * t.dim]);
                    b.labels.push(t.labels[sample]);
                }
                _ => return Err(Error::Internal("shard kinds differ".into())),
            }
            last = Some((epoch, at));
        }
        if let Some((epoch, at)) = last {
            self.prefetch_after(epoch, at);
        }
        Ok(out)
    }

    /// The shard order of `epoch` and the samples before each shard in it.
    fn order(&mut self, epoch: u64) -> (&[u32], &[u64]) {
        if self.order.as_ref().is_none_or(|(e, ..)| *e != epoch) {
            let perm = epoch_order(self.seed, epoch, self.set.train.len());
            let mut cum = Vec::with_capacity(perm.len() + 1);
            let mut acc = 0u64;
            for &s in &perm {
                cum.push(acc);
                acc += self.set.samples[s as usize];
            }
            cum.push(acc);
            self.order = Some((epoch, perm, cum));
        }
        let (_, perm, cum) = self.order.as_ref().expect("set above");
        (perm, cum)
    }

    /// The shard (index into the training shards) holding position `at` of `epoch`, and
    /// the position within its samples.
    fn locate(&mut self, epoch: u64, at: u64) -> (usize, u64) {
        let (perm, cum) = self.order(epoch);
        // The last k with cum[k] <= at; shards of no samples are skipped by it.
        let k = cum.partition_point(|&c| c <= at) - 1;
        (perm[k] as usize, at - cum[k])
    }

    /// The shard after the one holding position `at` of `epoch` in stream order.
    fn following(&mut self, epoch: u64, at: u64) -> (u64, usize) {
        let (perm, cum) = self.order(epoch);
        let k = cum.partition_point(|&c| c <= at);
        // The next shard with samples in this epoch, else the first of the next epoch.
        match (k..perm.len()).find(|&j| cum[j + 1] > cum[j]) {
            Some(j) => (epoch, perm[j] as usize),
            None => (epoch + 1, self.order(epoch + 1).0[0] as usize),
        }
    }

    fn shard(&mut self, epoch: u64, shard: usize) -> Result<&Loaded> {
        if let Some(i) = self
            .loaded
            .iter()
            .position(|l| l.epoch == epoch && l.shard == shard)
        {
            return Ok(&self.loaded[i]);
        }
        // The data may be in memory for another epoch; the order is this epoch's.
        let data = match self.loaded.iter().find(|l| l.shard == shard) {
            Some(l) => l.data.clone(),
            None => Arc::new(self.fetch(shard)?),
        };
        let n = self.set.samples[shard] as usize;
        let index = epoch
            .wrapping_mul(self.set.train.len() as u64)
            .wrapping_add(shard as u64);
        let order = rng::permutation(self.seed, "shard-samples", index, n);
        let shift = match self.set.kind {
            Kind::Tokens { window, .. } => {
                use rand::Rng;
                let ids = data.values();
                let spare = (ids - 1) - n * (window - 1);
                rng::stream(self.seed, "shard-shift", index).random_range(0..=spare as u64) as usize
            }
            Kind::Cifar { .. } => 0,
        };
        if self.loaded.len() >= 2 {
            if let Some(old) = self.loaded.pop_front() {
                if !self.loaded.iter().any(|l| l.shard == old.shard) {
                    self.set.store.release(&self.set.train[old.shard]);
                }
            }
        }
        self.loaded.push_back(Loaded {
            epoch,
            shard,
            data,
            order,
            shift,
        });
        Ok(self.loaded.back().expect("pushed"))
    }

    /// The shard's data: the one arriving if it is that one, else fetched now.
    fn fetch(&mut self, shard: usize) -> Result<Parsed> {
        if let Some((s, handle)) = self.next.take() {
            if s == shard {
                return handle.join().unwrap_or_else(|_| {
                    Err(Error::Internal("the shard prefetch thread panicked".into()))
                });
            }
            // Another shard (the stream jumped: a resume, a verifier's segment): let it land.
            let _ = handle.join();
        }
        self.set.load(shard)
    }

    /// Starts fetching the shard the stream reads after position `at` of `epoch`, unless it
    /// is in memory or arriving.
    fn prefetch_after(&mut self, epoch: u64, at: u64) {
        let (_, shard) = self.following(epoch, at);
        let here = self.loaded.iter().any(|l| l.shard == shard)
            || self.next.as_ref().is_some_and(|(s, _)| *s == shard);
        if here || self.next.is_some() {
            return;
        }
        let set = self.set.clone();
        let spawned = std::thread::Builder::new()
            .name("shard-prefetch".into())
            .spawn(move || set.load(shard));
        if let Ok(handle) = spawned {
            self.next = Some((shard, handle));
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // A fetch in flight finishes (and its bytes go) before the set can.
        if let Some((_, h)) = self.next.take() {
            let _ = h.join();
        }
    }
}

/// A store reading shards with [`super::fetch::fetch`]: local files and HTTP(S), cached by
/// hash in `cache_dir` when given (the CLI's `train`).
pub struct LocalStore {
    pub base_dir: std::path::PathBuf,
    pub cache_dir: Option<std::path::PathBuf>,
}

impl ShardStore for LocalStore {
    fn get(&self, shard: &Shard) -> Result<Vec<u8>> {
        super::fetch::fetch(
            &shard.uri,
            &shard.sha256,
            shard.bytes,
            &self.base_dir,
            self.cache_dir.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shards in memory, by URI.
    struct Memory(std::collections::BTreeMap<String, Vec<u8>>);

    impl ShardStore for Memory {
        fn get(&self, shard: &Shard) -> Result<Vec<u8>> {
            Ok(self.0[&shard.uri].clone())
        }
    }

    /// Records numbered in their pixels: shard `s`'s record `i` is `s * 1000 + i`.
    fn numbered(sizes: &[usize]) -> (JobSpec, Index, Arc<dyn ShardStore>) {
        let mut files = std::collections::BTreeMap::new();
        let mut shards = Vec::new();
        for (s, &n) in sizes.iter().enumerate() {
            let bytes: Vec<u8> = (0..n)
                .flat_map(|i| {
                    let id = (s * 1000 + i) as u16;
                    let mut r = vec![(i % 3) as u8, (id >> 8) as u8, id as u8];
                    r.resize(CIFAR_RECORD, 0);
                    r
                })
                .collect();
            let uri = format!("s3://b/d/{s}");
            shards.push(Shard {
                uri: uri.clone(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                bytes: bytes.len() as u64,
            });
            files.insert(uri, bytes);
        }
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../../jobs/shapes-resnet.json")).unwrap();
        v["dataset"] = serde_json::json!({
            "uri": "s3://b/d/index.json", "sha256": "00".repeat(32),
            "format": {"kind": "shards", "shard_format": {"kind": "cifar", "scale": 1.0}, "classes": 3}
        });
        let spec: JobSpec = serde_json::from_value(v).unwrap();
        spec.validate().unwrap();
        let index = Index::parse(&spec, &serde_json::to_vec(&Index { shards }).unwrap()).unwrap();
        (spec, index, Arc::new(Memory(files)))
    }

    fn ids(b: Batch) -> Vec<u32> {
        let Batch::Table(t) = b else {
            panic!("records")
        };
        t.features
            .chunks_exact(t.dim)
            .map(|r| r[0] as u32 * 256 + r[1] as u32)
            .collect()
    }

    /// Every epoch is every training record once, in an order of its own drawn from the
    /// seed; any stretch of the stream, read cold (a resume, a verifier's segment), is the
    /// same stretch of a stream read from the start.
    #[test]
    fn each_epoch_is_every_record_once_and_any_stretch_reads_the_same() {
        let (spec, index, store) = numbered(&[7, 1, 12, 5, 9, 4]);
        let (set, eval) = ShardSet::open(&spec, &index, store).unwrap();
        let set = Arc::new(set);
        let Eval::Table(eval) = eval else {
            panic!("records")
        };
        assert_eq!(eval.rows(), 4, "the last shard held out");
        let total = set.samples();
        assert_eq!(total, 34);
        let mut want: Vec<u32> = [7usize, 1, 12, 5, 9]
            .iter()
            .enumerate()
            .flat_map(|(s, &n)| (0..n as u32).map(move |i| s as u32 * 1000 + i))
            .collect();
        want.sort_unstable();
        let mut s = Stream::new(set.clone(), 5);
        let epochs: Vec<Vec<u32>> = (0..3)
            .map(|e| ids(s.take(e * total, (e + 1) * total).unwrap()))
            .collect();
        for e in &epochs {
            let mut sorted = e.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, want);
        }
        assert_ne!(epochs[0], epochs[1]);
        assert_ne!(epochs[1], epochs[2]);
        let whole: Vec<u32> = epochs.concat();
        for (from, to) in [(0u64, 5u64), (30, 41), (67, 102), (13, 14)] {
            let cold = ids(Stream::new(set.clone(), 5).take(from, to).unwrap());
            assert_eq!(cold, whole[from as usize..to as usize], "{from}..{to}");
        }
        // Another seed, another order.
        let other = ids(Stream::new(set, 6).take(0, total).unwrap());
        assert_ne!(other, epochs[0]);
    }

    #[test]
    fn relative_shard_uris_resolve_against_the_index() {
        let r = |i, s| resolve(i, s);
        assert_eq!(
            r("s3://b/d/index.json", "s-0.bin").unwrap(),
            "s3://b/d/s-0.bin"
        );
        assert_eq!(
            r("https://h/x/i.json", "a/b.bin").unwrap(),
            "https://h/x/a/b.bin"
        );
        assert_eq!(r("file:index.json", "s.bin").unwrap(), "file:s.bin");
        assert_eq!(r("file:d/index.json", "s.bin").unwrap(), "file:d/s.bin");
        assert_eq!(r("s3://b/i", "s3://c/k").unwrap(), "s3://c/k");
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "",
            "a//b",
            "c:x",
            "a\\b",
            "a?b",
        ] {
            assert!(r("s3://b/d/i.json", bad).is_err(), "{bad}");
        }
        assert!(r("s3://b/i.json", "file:/etc/passwd").is_err());
        assert!(r("file:i.json", "file:/tmp/s").is_ok());
    }
}
