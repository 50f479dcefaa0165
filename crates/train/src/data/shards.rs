//! Datasets larger than memory ([`DatasetFormat::Shards`]): a hashed index of shards, each
//! fetched through a [`ShardStore`], verified and parsed on its own while training streams
//! through them.
//!
//! The order is a pure function of (seed, position): epoch `e` visits the training shards in
//! the permutation drawn for `e`, and each shard's samples in a permutation drawn for
//! (`e`, shard). A step's batch is the samples at its positions in that stream, so any step
//! can be computed without the steps before it: a run resumed mid-shard, or a verifier
//! re-running one segment, reads exactly the shards that segment touches.

use std::{collections::VecDeque, sync::Arc};

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

    /// Whether the stream fetches the next shard ahead, while the current one trains (not
    /// for a check's few steps, which must not download more than they read).
    fn prefetch(&self) -> bool {
        true
    }
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
                (bytes / self.unit()).saturating_sub(1) / (window as u64 - 1).max(1)
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
        if bytes.len() as u64 > limits::MAX_INDEX_BYTES {
            return Err(Error::Format(format!(
                "shard index: {} bytes, more than {}",
                bytes.len(),
                limits::MAX_INDEX_BYTES
            )));
        }
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
            // A stranger's text in an error (a log, a refusal): short, no control characters.
            let shown: String = s
                .uri
                .chars()
                .take(80)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            let name = format!("shard {i} ({shown})");
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
        if let Kind::Tokens { window, .. } = kind {
            // Evaluation reads windows of the held-out ids: more than one window's worth.
            if eval_bytes / kind.unit() <= window as u64 {
                problems.push(format!(
                    "the {eval_shards} evaluation shards hold {} ids, too few for one window of \
                     {window}",
                    eval_bytes / kind.unit()
                ));
            }
        }
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

    /// The training shard a run reads first (the first of epoch 0's order): what a worker
    /// fetches, with the evaluation shards, before it claims.
    pub fn first_training_shard(&self, spec: &JobSpec) -> Option<&Shard> {
        let train = self.split(spec).0;
        epoch_order(spec.training.seed, 0, train.len())
            .first()
            .map(|&i| &train[i as usize])
    }

    /// Training samples in one epoch (records, or windows of `context + 1` ids).
    pub fn samples(&self, spec: &JobSpec) -> u64 {
        let Ok(kind) = Kind::of(spec) else { return 0 };
        self.split(spec)
            .0
            .iter()
            .fold(0u64, |a, s| a.saturating_add(kind.samples(s.bytes)))
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
    if rel.len() > MAX_URI || rel.chars().any(char::is_control) {
        return Err(format!(
            "a URI is at most {MAX_URI} bytes, without control characters"
        ));
    }
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
        || rel.starts_with('/')
        || rel
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || rel
            .chars()
            .any(|c| matches!(c, ':' | '\\' | '?' | '#' | '%'));
    if bad {
        return Err("not a URI (s3://, https://) nor a plain relative path".into());
    }
    // The index's folder: past a `scheme://host/` (a bare `https://host` is its root), or
    // a `file:` path's directory (`file:x.json`: the spec's directory, like the index); never
    // inside a query (a presigned URL's).
    let index_uri = index_uri.split(['?', '#']).next().unwrap_or(index_uri);
    let path_from = index_uri.find("://").map_or_else(
        || index_uri.find(':').map_or(0, |i| i + 1),
        |i| {
            let host = i + 3;
            index_uri[host..]
                .find('/')
                .map_or(index_uri.len(), |j| host + j)
        },
    );
    let base = match index_uri[path_from..].rfind('/') {
        Some(j) => index_uri[..=path_from + j].to_string(),
        None if index_uri.contains("://") => format!("{}/", &index_uri[..path_from]),
        None => index_uri[..path_from].to_string(),
    };
    Ok(format!("{base}{rel}"))
}

/// The longest shard URI an index may give.
const MAX_URI: usize = 1_024;

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

    /// Shard `i`, fetched, checked and parsed, with its sample order and start for `epoch`
    /// (run on the prefetch thread when it can be: the order of a large shard is a sizable
    /// permutation).
    fn load(&self, seed: u64, epoch: u64, i: usize, data: Option<Arc<Parsed>>) -> Result<Loaded> {
        let data = match data {
            Some(d) => d,
            None => {
                let shard = &self.train[i];
                Arc::new(parse(self.kind, shard, &self.store.get(shard)?)?)
            }
        };
        let n = self.samples[i] as usize;
        let index = epoch
            .wrapping_mul(self.train.len() as u64)
            .wrapping_add(i as u64);
        let order = rng::permutation(seed, "shard-samples", index, n);
        let shift = match self.kind {
            Kind::Tokens { window, .. } => {
                use rand::Rng;
                let spare = (data.values() - 1) - n * (window - 1);
                rng::stream(seed, "shard-shift", index).random_range(0..=spare as u64) as usize
            }
            Kind::Cifar { .. } => 0,
        };
        Ok(Loaded {
            epoch,
            shard: i,
            data,
            order,
            shift,
        })
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

/// The shard order of one epoch and the samples before each shard in it.
struct EpochOrder {
    epoch: u64,
    perm: Vec<u32>,
    cum: Vec<u64>,
}

/// Where training is in a [`ShardSet`]: the shards in memory (at most two) and the next one
/// arriving on a thread of its own.
pub(crate) struct Stream {
    set: Arc<ShardSet>,
    seed: u64,
    loaded: VecDeque<Loaded>,
    /// The orders of the last two epochs asked about (the current and the next, at an
    /// epoch's end).
    orders: VecDeque<EpochOrder>,
    next: Option<Arriving>,
    /// The position the reader stops at (a run's or a segment's end): nothing past it is
    /// fetched ahead.
    end: Option<u64>,
    /// Set when the stream goes: a fetch ahead not started yet is not started.
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

/// A shard being fetched ahead: its (epoch, shard) and the thread bringing it.
type Arriving = ((u64, usize), std::thread::JoinHandle<Result<Loaded>>);

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
            orders: VecDeque::new(),
            next: None,
            end: None,
            dropped: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Reads stop at position `end`: no shard that starts there or later is fetched ahead.
    pub(crate) fn ending_at(mut self, end: u64) -> Self {
        self.end = Some(end);
        self
    }

    /// [`Self::ending_at`], for a stream already made.
    pub(crate) fn set_end(&mut self, end: u64) {
        self.end = Some(end);
    }

    pub(crate) fn set(&self) -> &Arc<ShardSet> {
        &self.set
    }

    /// The samples at stream positions `from..to` (position `p` is sample `p % samples` of
    /// epoch `p / samples`).
    pub(crate) fn take(&mut self, from: u64, to: u64) -> Result<Batch> {
        let total = self.set.total.max(1);
        let ctx = match self.set.kind {
            Kind::Tokens { window, .. } => window - 1,
            Kind::Cifar { .. } => 0,
        };
        let n = to.saturating_sub(from) as usize;
        let mut out = match self.set.kind {
            Kind::Tokens { .. } => Batch::Tokens {
                x: Vec::with_capacity(n * ctx),
                y: Vec::with_capacity(n * ctx),
            },
            Kind::Cifar { .. } => Batch::Table(Table {
                features: Vec::new(),
                labels: Vec::new(),
                dim: CIFAR_RECORD - 1,
            }),
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
            if self.set.store.prefetch() {
                self.prefetch_after(epoch, at);
            }
        }
        Ok(out)
    }

    /// The shard order of `epoch`.
    fn order(&mut self, epoch: u64) -> &EpochOrder {
        if let Some(i) = self.orders.iter().position(|o| o.epoch == epoch) {
            return &self.orders[i];
        }
        let perm = epoch_order(self.seed, epoch, self.set.train.len());
        let mut cum = Vec::with_capacity(perm.len() + 1);
        let mut acc = 0u64;
        for &s in &perm {
            cum.push(acc);
            acc += self.set.samples[s as usize];
        }
        cum.push(acc);
        if self.orders.len() >= 2 {
            self.orders.pop_front();
        }
        self.orders.push_back(EpochOrder { epoch, perm, cum });
        self.orders.back().expect("pushed")
    }

    /// The shard (index into the training shards) holding position `at` of `epoch`, and
    /// the position within its samples.
    fn locate(&mut self, epoch: u64, at: u64) -> (usize, u64) {
        let o = self.order(epoch);
        // The last k with cum[k] <= at (every training shard has a sample).
        let k = o.cum.partition_point(|&c| c <= at) - 1;
        (o.perm[k] as usize, at - o.cum[k])
    }

    /// The (epoch, shard) the stream reads after the shard holding position `at` of `epoch`,
    /// and the stream position where it starts.
    fn following(&mut self, epoch: u64, at: u64) -> ((u64, usize), u64) {
        let total = self.set.total;
        let o = self.order(epoch);
        let k = o.cum.partition_point(|&c| c <= at);
        match o.perm.get(k) {
            Some(&s) => ((epoch, s as usize), epoch * total + o.cum[k]),
            None => (
                (epoch + 1, self.order(epoch + 1).perm[0] as usize),
                (epoch + 1) * total,
            ),
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
        let loaded = self.fetch(epoch, shard)?;
        if self.loaded.len() >= 2 {
            if let Some(old) = self.loaded.pop_front() {
                if old.shard != shard && !self.loaded.iter().any(|l| l.shard == old.shard) {
                    self.set.store.release(&self.set.train[old.shard]);
                }
            }
        }
        self.loaded.push_back(loaded);
        Ok(self.loaded.back().expect("pushed"))
    }

    /// The shard for `epoch`: the one arriving if it is that one, else fetched now (its data
    /// reused when it is in memory for another epoch). A prefetch that failed for the
    /// network's reasons is tried once more here.
    fn fetch(&mut self, epoch: u64, shard: usize) -> Result<Loaded> {
        if let Some((key, handle)) = self.next.take() {
            if key == (epoch, shard) {
                match handle.join() {
                    Ok(Ok(l)) => return Ok(l),
                    Ok(Err(e)) if e.fault() != crate::Fault::Transient => return Err(e),
                    _ => {}
                }
            }
            // Another shard (the stream jumped: a resume, a verifier's segment): left to
            // finish on its own.
        }
        let data = self
            .loaded
            .iter()
            .find(|l| l.shard == shard)
            .map(|l| l.data.clone());
        self.set.load(self.seed, epoch, shard, data)
    }

    /// Starts fetching the shard the stream reads after position `at` of `epoch`, unless it
    /// is in memory or arriving.
    fn prefetch_after(&mut self, epoch: u64, at: u64) {
        let (key, starts) = self.following(epoch, at);
        if self.end.is_some_and(|end| starts >= end) {
            return;
        }
        let here = self.loaded.iter().any(|l| (l.epoch, l.shard) == key)
            || self.next.as_ref().is_some_and(|(k, _)| *k == key);
        if here {
            return;
        }
        if let Some((_, h)) = &self.next {
            if !h.is_finished() {
                return;
            }
        }
        let data = self
            .loaded
            .iter()
            .find(|l| l.shard == key.1)
            .map(|l| l.data.clone());
        let (set, seed, dropped) = (self.set.clone(), self.seed, self.dropped.clone());
        let spawned = std::thread::Builder::new()
            .name("shard-prefetch".into())
            .spawn(move || {
                if dropped.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(Error::Internal("the stream is gone".into()));
                }
                set.load(seed, key.0, key.1, data)
            });
        if let Ok(handle) = spawned {
            self.next = Some((key, handle));
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // A fetch ahead still waiting to start is not started; one under way finishes on its
        // own thread (a download cannot be cut short here) and its bytes go with it.
        self.dropped
            .store(true, std::sync::atomic::Ordering::Relaxed);
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

    /// Fails each shard's first fetch as the network would, and says whether to prefetch.
    struct Flaky {
        inner: Arc<dyn ShardStore>,
        failed: std::sync::Mutex<Vec<String>>,
        prefetch: bool,
    }

    impl ShardStore for Flaky {
        fn get(&self, shard: &Shard) -> Result<Vec<u8>> {
            let mut f = self.failed.lock().unwrap();
            if !f.contains(&shard.uri) {
                f.push(shard.uri.clone());
                return Err(Error::Fetch {
                    uri: shard.uri.clone(),
                    reason: "connection reset".into(),
                });
            }
            drop(f);
            self.inner.get(shard)
        }

        fn prefetch(&self) -> bool {
            self.prefetch
        }
    }

    /// A prefetch the network failed is tried again when the stream needs the shard; without
    /// prefetching, the stream asks for the shards it reads and no others; either way the
    /// samples are the same.
    #[test]
    fn a_failed_prefetch_is_retried_and_no_prefetch_fetches_only_what_is_read() {
        let (spec, index, memory) = numbered(&[7, 1, 12, 5, 9, 4]);
        let (set, _) = ShardSet::open(&spec, &index, memory.clone()).unwrap();
        let want = ids(Stream::new(Arc::new(set), 5).take(0, 40).unwrap());
        for prefetch in [true, false] {
            let flaky = Arc::new(Flaky {
                inner: memory.clone(),
                // The evaluation shard is read at open: not failed.
                failed: std::sync::Mutex::new(vec!["s3://b/d/5".into()]),
                prefetch,
            });
            let (set, _) = ShardSet::open(&spec, &index, flaky.clone()).unwrap();
            let mut s = Stream::new(Arc::new(set), 5);
            // Each batch of 4 fetched after the prefetch of its next shard failed: the
            // first read of a shard not prefetched fails, once, and is the caller's to retry.
            let mut got = Vec::new();
            let mut errors = 0;
            let mut at = 0;
            while at < 40 {
                match s.take(at, at + 4) {
                    Ok(b) => {
                        got.extend(ids(b));
                        at += 4;
                    }
                    Err(e) => {
                        assert_eq!(e.fault(), crate::Fault::Transient, "{e}");
                        errors += 1;
                    }
                }
            }
            assert_eq!(got, want, "prefetch {prefetch}");
            // With prefetching, only the first shard's failure reaches the caller (each
            // later one failed in the prefetch and was retried); without, each new shard's.
            if prefetch {
                assert_eq!(errors, 1);
            } else {
                assert!(errors >= 5, "{errors}");
            }
        }
    }

    /// Counts fetches.
    struct Counted(Arc<dyn ShardStore>, std::sync::atomic::AtomicUsize);

    impl ShardStore for Counted {
        fn get(&self, shard: &Shard) -> Result<Vec<u8>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.get(shard)
        }
    }

    /// A stream told where its reader stops fetches nothing past it: an epoch read to its
    /// end fetches its five training shards and not the next epoch's first.
    #[test]
    fn nothing_past_the_end_is_fetched_ahead() {
        let (spec, index, memory) = numbered(&[7, 1, 12, 5, 9, 4]);
        let counted = Arc::new(Counted(memory, Default::default()));
        let (set, _) = ShardSet::open(&spec, &index, counted.clone()).unwrap();
        let set = Arc::new(set);
        let at_open = counted.1.load(std::sync::atomic::Ordering::SeqCst);
        let mut s = Stream::new(set.clone(), 5).ending_at(set.samples());
        for from in (0..set.samples()).step_by(4) {
            s.take(from, (from + 4).min(set.samples())).unwrap();
        }
        drop(s);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let fetched = counted.1.load(std::sync::atomic::Ordering::SeqCst) - at_open;
        assert_eq!(fetched, 5);
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
        assert_eq!(r("https://host", "a.bin").unwrap(), "https://host/a.bin");
        assert_eq!(
            r("https://h/d/i.json?X-Amz-Credential=A/2026/s3&s=x", "a.bin").unwrap(),
            "https://h/d/a.bin"
        );
        assert_eq!(
            r("s3://bucket/i.json", "a.bin").unwrap(),
            "s3://bucket/a.bin"
        );
        assert_eq!(
            r("file:///abs/d/i.json", "a.bin").unwrap(),
            "file:///abs/d/a.bin"
        );
        let long = "x".repeat(1_025);
        for bad in ["%2e%2e/x", "a\nb", long.as_str()] {
            assert!(resolve("s3://b/d/i.json", bad).is_err(), "{bad:?}");
        }
        let long = format!("s3://b/{}", "x".repeat(1_020));
        assert!(resolve("s3://b/d/i.json", &long).is_err());
        assert!(r("file:i.json", "file:/tmp/s").is_ok());
    }
}
