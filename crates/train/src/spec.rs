//! The job spec: a declarative, versioned description of a training job. The worker never
//! runs code from a job; everything it does is chosen from this file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

pub const SPEC_VERSION: u32 = 1;

/// Upper limits a spec may ask for (a worker may impose tighter ones).
pub mod limits {
    pub const MAX_EPOCHS: u32 = 1_000;
    pub const MAX_STEPS: u64 = 1_000_000;
    pub const MAX_BATCH: usize = 4_096;
    pub const MAX_HIDDEN: usize = 8_192;
    pub const MAX_LAYERS: usize = 32;
    pub const MAX_D_MODEL: usize = 2_048;
    pub const MAX_CONTEXT: usize = 4_096;
    pub const MAX_DATASET_BYTES: u64 = 4 << 30;
    /// Largest side of a CNN input (channels, height or width).
    pub const MAX_INPUT_SIDE: usize = 4_096;
    /// Largest number of values in one CNN input sample.
    pub const MAX_INPUT_VALUES: usize = 1 << 24;
    /// Most distinct characters a text dataset may have, or ids a tokens dataset (its
    /// vocabulary).
    pub const MAX_VOCAB: usize = 65_536;
    /// Largest `limits.max_wall_time_s`: 30 days, the longest a claim can last.
    pub const MAX_WALL_TIME_S: u64 = 30 * 24 * 3_600;
    /// Largest `tokenizer.json` a spec may name (GPT-2's is 1.4 MB).
    pub const MAX_TOKENIZER_BYTES: u64 = 16 << 20;
    /// Most shards a sharded dataset's index may list.
    pub const MAX_SHARDS: usize = 100_000;
    /// Largest shard: what the training loop holds (twice, and a third arriving) at once.
    pub const MAX_SHARD_BYTES: u64 = 1 << 30;
    /// Largest shard index file: 100,000 shards of a few hundred bytes each.
    pub const MAX_INDEX_BYTES: u64 = 32 << 20;
    /// Most classes of a sharded image dataset.
    pub const MAX_CLASSES: u32 = 100_000;
    /// Largest initial weights file (GPT-2 small in f32 is 0.5 GB; the largest model the
    /// limits allow, a 32-layer 2048-wide GPT-2 over 65,536 ids, 7.5 GB).
    pub const MAX_INIT_BYTES: u64 = 8 << 30;
}

/// A file a job needs besides its dataset (a tokenizer, initial weights): where it is, its
/// sha256 and its exact size, all checked before use. The bytes, once fetched and checked, ride
/// with the spec in memory ([`FileRef::attach`]); they are never part of its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// As `dataset.uri`.
    pub uri: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Its size in bytes: what a worker downloads at most, and plans disk and memory for.
    pub bytes: u64,
    #[serde(skip)]
    pub fetched: Fetched,
}

/// The checked bytes of a [`FileRef`], once fetched. Equal whatever they hold: a spec is the
/// same spec before and after its files arrive.
#[derive(Clone, Default)]
pub struct Fetched(Option<std::sync::Arc<Vec<u8>>>);

impl PartialEq for Fetched {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(b) => write!(f, "Fetched({} bytes)", b.len()),
            None => f.write_str("NotFetched"),
        }
    }
}

impl FileRef {
    /// Keeps `bytes` as this file's once their size and sha256 are the ones named.
    pub fn attach(&mut self, role: &'static str, bytes: Vec<u8>) -> Result<()> {
        let refuse = |reason: String| Error::File { role, reason };
        if bytes.len() as u64 != self.bytes {
            return Err(refuse(format!(
                "{}: {} bytes, the spec says {}",
                self.uri,
                bytes.len(),
                self.bytes
            )));
        }
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(refuse(format!(
                "{}: sha256 is {actual}, the spec says {}",
                self.uri,
                self.sha256.to_ascii_lowercase()
            )));
        }
        self.fetched = Fetched(Some(std::sync::Arc::new(bytes)));
        Ok(())
    }

    /// The checked bytes; an error naming the file when nobody fetched them.
    pub fn bytes_for(&self, role: &str) -> Result<&[u8]> {
        self.fetched.0.as_deref().map(Vec::as_slice).ok_or_else(|| {
            Error::Internal(format!("{role} {} was not fetched before use", self.uri))
        })
    }

    fn check(&self, role: &str, max_bytes: u64, errs: &mut Vec<String>) {
        if !uri_scheme_ok(&self.uri) {
            errs.push(format!(
                "{role}.uri `{}`: unsupported scheme (use s3://, https://, http:// or file:)",
                self.uri
            ));
        }
        if !is_sha256_hex(&self.sha256) {
            errs.push(format!("{role}.sha256 must be 64 hex characters"));
        }
        if !(1..=max_bytes).contains(&self.bytes) {
            errs.push(format!(
                "{role}.bytes {} must be 1..={max_bytes}",
                self.bytes
            ));
        }
    }
}

/// Whether an image model's `input_shape` is within the limits: each side, and its values.
fn input_size_ok(input_shape: &[usize; 3]) -> bool {
    let values = input_shape
        .iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s));
    input_shape.iter().all(|&s| s <= limits::MAX_INPUT_SIDE)
        && values.is_some_and(|v| v <= limits::MAX_INPUT_VALUES)
}

fn input_size_problem(input_shape: &[usize; 3]) -> String {
    format!(
        "model.input_shape {input_shape:?}: each side at most {}, at most {} values",
        limits::MAX_INPUT_SIDE,
        limits::MAX_INPUT_VALUES
    )
}

fn uri_scheme_ok(uri: &str) -> bool {
    ["file:", "http://", "https://", "s3://"]
        .iter()
        .any(|s| uri.starts_with(s))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Most stages (widths) of a `resnet`.
pub const MAX_STAGES: usize = 8;
/// Most blocks per stage of a `resnet`.
pub const MAX_BLOCKS: usize = 16;
/// Most values in one of a `resnet`'s feature maps (height × width × channels of the first
/// stage, the largest): ImageNet's 224×224 at 64 channels is 3.2M.
pub const MAX_FEATURE_MAP: usize = 1 << 22;

/// The role of a job's file, as its errors name it.
pub const TOKENIZER_ROLE: &str = "dataset.format.tokenizer";
pub const INIT_ROLE: &str = "model.init";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub version: u32,
    pub dataset: DatasetSpec,
    pub model: ModelSpec,
    pub training: TrainingSpec,
    pub evaluation: EvaluationSpec,
    #[serde(default)]
    pub limits: LimitsSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// `s3://bucket/key`, `https://…`, `http://…`, or for local runs `file:///abs/path` /
    /// `file:relative/path` (relative to the spec file). Workers never read `file:` URIs.
    pub uri: String,
    /// Hex sha256 of the dataset bytes; checked before use.
    pub sha256: String,
    pub format: DatasetFormat,
    /// Share of the samples (classification) or of the text (language modelling) held out
    /// for evaluation; the split is a deterministic function of `training.seed`.
    #[serde(default = "default_eval_fraction")]
    pub eval_fraction: f64,
}

fn default_eval_fraction() -> f64 {
    0.2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatasetFormat {
    /// Numeric features and an integer class label per row.
    Csv {
        #[serde(default = "comma")]
        delimiter: char,
        #[serde(default)]
        header: bool,
        /// Label column; negative counts from the end (-1 = last).
        #[serde(default = "last")]
        label_column: i64,
        /// Features are multiplied by this (e.g. 1/16 for 4-bit pixels).
        #[serde(default = "one")]
        scale: f32,
    },
    /// A safetensors file with a features tensor `(N, …)` and a labels tensor `(N,)`.
    Safetensors {
        features: String,
        labels: String,
        #[serde(default = "one")]
        scale: f32,
    },
    /// A `.npy` array `(N, F + 1)`: features then the class label in the last column.
    Npy {
        #[serde(default = "one")]
        scale: f32,
    },
    /// CIFAR-10's binary format: records of a label byte and 3×32×32 pixel bytes (the red
    /// plane, the green, the blue, each row by row), concatenated; pixels become
    /// `byte × scale` (default 1/255). For an image model whose `input_shape` is
    /// `[3, 32, 32]`.
    Cifar {
        #[serde(default = "pixel_scale")]
        scale: f32,
    },
    /// UTF-8 text for character-level language modelling.
    Text,
    /// UTF-8 text tokenized by a byte-level BPE (GPT-2's tokenization), published with the
    /// result as `tokenizer.json`: either one of at most `vocab_size` ids (the 256 bytes and
    /// the merges learned) trained on the training part of the text, or the `tokenizer` given
    /// (a previous result's, GPT-2's own), whose ids the model then has. Exactly one of the
    /// two. (A kind of its own, not a field of `text`: an engine that predates it must refuse
    /// such a spec, not read it as characters.)
    BpeText {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vocab_size: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokenizer: Option<FileRef>,
    },
    /// Token ids already tokenized by the poster (e.g. nanoGPT's `train.bin`): a flat array of
    /// little-endian `u16` or `u32`, every id below `vocab_size`, for language modelling over
    /// that vocabulary. With the `tokenizer.json` that made them (GPT-2-like byte-level BPE,
    /// at most `vocab_size` ids), the result carries it and its samples are text.
    Tokens {
        dtype: TokenDtype,
        vocab_size: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokenizer: Option<FileRef>,
    },
    /// A dataset larger than memory, in shards: `dataset.uri` names a shard index, a JSON file
    /// `{"shards": [{"uri", "sha256", "bytes"}, …]}` (a URI without a scheme is relative to
    /// the index's own), and `dataset.sha256` is the index's, so it pins every shard. Each
    /// shard is a file of `shard_format` (`tokens` or `cifar`), fetched, verified and parsed
    /// on its own while training streams through them: at most two are in memory at a time
    /// (and a third arriving). The last `eval_shards` are held out for evaluation (read whole,
    /// together at most `limits.max_dataset_bytes`); `eval_fraction` is not used. Each epoch
    /// visits the training shards in an order drawn from the seed, and each shard's samples
    /// (records, or windows of `context + 1` ids) in an order of their own.
    Shards {
        shard_format: Box<DatasetFormat>,
        #[serde(default = "one_u32")]
        eval_shards: u32,
        /// The classes of an image dataset's labels (every label below it): not read from
        /// the data, which is never all in one place. Only for `cifar` shards.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        classes: Option<u32>,
    },
}

/// How a token id is stored in a [`DatasetFormat::Tokens`] file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenDtype {
    U16,
    U32,
}

impl TokenDtype {
    /// Bytes per id.
    pub fn width(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::U32 => 4,
        }
    }
}

fn comma() -> char {
    ','
}
fn last() -> i64 {
    -1
}
fn one() -> f32 {
    1.0
}
fn one_u32() -> u32 {
    1
}
fn pixel_scale() -> f32 {
    1.0 / 255.0
}

/// Bytes of one CIFAR-10 record: the label, then 3×32×32 pixels.
pub const CIFAR_RECORD: usize = 1 + CIFAR_SHAPE[0] * CIFAR_SHAPE[1] * CIFAR_SHAPE[2];
/// `[channels, height, width]` of a CIFAR-10 image.
pub const CIFAR_SHAPE: [usize; 3] = [3, 32, 32];

impl DatasetFormat {
    /// A language-modelling corpus (characters or token ids), not a table of samples.
    pub fn is_text(&self) -> bool {
        matches!(
            self.each_file(),
            DatasetFormat::Text | DatasetFormat::BpeText { .. } | DatasetFormat::Tokens { .. }
        )
    }

    /// What features are multiplied by as they are read (1 for a language corpus).
    pub fn scale(&self) -> f32 {
        match self.each_file() {
            DatasetFormat::Csv { scale, .. }
            | DatasetFormat::Safetensors { scale, .. }
            | DatasetFormat::Npy { scale }
            | DatasetFormat::Cifar { scale } => *scale,
            DatasetFormat::Text
            | DatasetFormat::BpeText { .. }
            | DatasetFormat::Tokens { .. }
            | DatasetFormat::Shards { .. } => 1.0,
        }
    }

    /// The format of each file of data: a shard's for a sharded dataset, else this one.
    pub fn each_file(&self) -> &DatasetFormat {
        match self {
            DatasetFormat::Shards { shard_format, .. } => shard_format,
            f => f,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// Fully connected layers with ReLU between them.
    Mlp {
        hidden: Vec<usize>,
        /// Start from these weights (a previous result's, or any file with this model's
        /// parameter names and shapes) instead of the seed's: a fine-tune.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<FileRef>,
    },
    /// 3×3 convolutions (padding 1, ReLU), one 2×2 max-pool, then a linear classifier.
    /// `input_shape` is `[channels, height, width]` of one sample.
    Cnn {
        input_shape: [usize; 3],
        channels: Vec<usize>,
        /// Start from these weights (a previous result's, or any file with this model's
        /// parameter names and shapes) instead of the seed's: a fine-tune.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<FileRef>,
    },
    /// A residual network (ResNet's basic blocks, each convolution followed by a one-group
    /// group norm: a sample's statistics only, deterministic): a 3×3 stem of `widths[0]`
    /// channels, then one stage per width of `blocks` blocks (two 3×3 convolutions, a 1×1
    /// projection where the width changes), a 2×2 max-pool before every stage but the first,
    /// global average pooling and a linear classifier. `input_shape` is `[channels, height,
    /// width]` of one sample.
    Resnet {
        input_shape: [usize; 3],
        widths: Vec<usize>,
        blocks: usize,
        /// Start from these weights (a previous result's, or any file with this model's
        /// parameter names and shapes) instead of the seed's: a fine-tune.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<FileRef>,
    },
    /// A GPT-style character model: token + position embeddings, pre-norm blocks of causal
    /// self-attention and a GELU MLP.
    CharTransformer {
        layers: usize,
        d_model: usize,
        heads: usize,
        context: usize,
        /// Start from these weights (a previous result's, or any file with this model's
        /// parameter names and shapes) instead of the seed's: a fine-tune.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<FileRef>,
    },
    /// GPT-2's architecture (learned positions, pre-LN blocks, tanh-GELU MLP, the output layer
    /// tied to the token embedding) with GPT-2's parameter names and layouts, so the result
    /// loads in the Hugging Face stack as published (`config.json` + `model.safetensors`).
    Gpt2 {
        layers: usize,
        d_model: usize,
        heads: usize,
        context: usize,
        /// Start from these weights (a previous result's, or any file with this model's
        /// parameter names and shapes) instead of the seed's: a fine-tune.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<FileRef>,
    },
}

/// The sizes of a transformer model (`char_transformer` or `gpt2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformerSpec {
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
    pub context: usize,
    /// GPT-2's names, layouts and tied output layer.
    pub gpt2: bool,
}

impl ModelSpec {
    /// The sizes, for a transformer.
    pub fn transformer(&self) -> Option<TransformerSpec> {
        let (layers, d_model, heads, context, gpt2) = match *self {
            ModelSpec::CharTransformer {
                layers,
                d_model,
                heads,
                context,
                ..
            } => (layers, d_model, heads, context, false),
            ModelSpec::Gpt2 {
                layers,
                d_model,
                heads,
                context,
                ..
            } => (layers, d_model, heads, context, true),
            _ => return None,
        };
        Some(TransformerSpec {
            layers,
            d_model,
            heads,
            context,
            gpt2,
        })
    }

    /// The initial weights, for a fine-tune.
    pub fn init(&self) -> Option<&FileRef> {
        match self {
            ModelSpec::Mlp { init, .. }
            | ModelSpec::Cnn { init, .. }
            | ModelSpec::Resnet { init, .. }
            | ModelSpec::CharTransformer { init, .. }
            | ModelSpec::Gpt2 { init, .. } => init.as_ref(),
        }
    }

    fn init_mut(&mut self) -> Option<&mut FileRef> {
        match self {
            ModelSpec::Mlp { init, .. }
            | ModelSpec::Cnn { init, .. }
            | ModelSpec::Resnet { init, .. }
            | ModelSpec::CharTransformer { init, .. }
            | ModelSpec::Gpt2 { init, .. } => init.as_mut(),
        }
    }

    /// `[channels, height, width]` of one sample, for an image model.
    pub fn input_shape(&self) -> Option<[usize; 3]> {
        match self {
            ModelSpec::Cnn { input_shape, .. } | ModelSpec::Resnet { input_shape, .. } => {
                Some(*input_shape)
            }
            _ => None,
        }
    }

    /// The kind as written in a spec.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Mlp { .. } => "mlp",
            ModelSpec::Cnn { .. } => "cnn",
            ModelSpec::Resnet { .. } => "resnet",
            ModelSpec::CharTransformer { .. } => "char_transformer",
            ModelSpec::Gpt2 { .. } => "gpt2",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// Passes over the training split (classification). Ignored when `steps` is set.
    #[serde(default)]
    pub epochs: Option<u32>,
    /// Optimizer steps (required for language modelling, optional otherwise).
    #[serde(default)]
    pub steps: Option<u64>,
    pub batch_size: usize,
    pub optimizer: OptimizerSpec,
    pub seed: u64,
    /// Save a checkpoint every this many steps (0 = only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Evaluate every this many steps (language modelling; classification evaluates per epoch).
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// Commit to the full training state every this many steps: the manifest lists each
    /// state's hash, so anyone can re-run one segment and compare (`verify --spot-check`).
    /// Default: 50 segments, each 2 % of the job. At most 1,000 segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_every: Option<u64>,
    /// The learning rate over the run: a linear warmup, then constant or decaying to
    /// `min_lr_ratio` × the optimizer's `lr` at the last step. None: the optimizer's `lr`
    /// throughout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// Scales each step's gradients down so that their global L2 norm is at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Splits each batch into this many micro-batches whose gradients are summed before the
    /// step: the update of the whole batch (equal up to float rounding) with the activations
    /// of one micro-batch in memory. None or 1: the whole batch at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_accumulation: Option<u32>,
    /// Image augmentation of every training sample, drawn from the seed and the step (so a
    /// re-run draws the same): a random crop of the image padded with `crop_padding` zeros on
    /// each side, and a horizontal flip with probability ½. For `cnn` and `resnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentSpec>,
    /// On CUDA and Metal, the forward and backward passes in this half-precision type, with
    /// the weights, the optimizer's state, the gradients it applies and the loss in f32
    /// (mixed precision: [`crate::precision`]). The CPU computes in f32 whatever this says: its
    /// half-precision paths are slower than its f32 kernels, and its results are bit-exact
    /// only within its own device class anyway. None: f32 everywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_precision: Option<HalfPrecision>,
}

/// See [`TrainingSpec::mixed_precision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HalfPrecision {
    /// bfloat16: f32's range, 8 bits of mantissa; needs no loss scaling.
    Bf16,
    /// IEEE half: more mantissa, little range; the loss is scaled so small gradients survive.
    F16,
}

/// See [`TrainingSpec::augment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentSpec {
    #[serde(default)]
    pub crop_padding: usize,
    #[serde(default)]
    pub horizontal_flip: bool,
}

/// How the learning rate moves over a run (see [`TrainingSpec::schedule`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Steps over which the rate rises linearly from `lr / warmup_steps` to `lr`.
    #[serde(default)]
    pub warmup_steps: u64,
    /// After the warmup.
    #[serde(default)]
    pub decay: Decay,
    /// The rate at the last step, as a share of `lr` (`cosine` and `linear`).
    #[serde(default)]
    pub min_lr_ratio: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decay {
    /// `lr` until the end.
    #[default]
    Constant,
    /// Half a cosine from `lr` down to `min_lr_ratio × lr`.
    Cosine,
    /// A straight line from `lr` down to `min_lr_ratio × lr`.
    Linear,
}

fn default_eval_every() -> u64 {
    100
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    Adamw {
        lr: f64,
        #[serde(default = "default_wd")]
        weight_decay: f64,
        #[serde(default = "default_beta1")]
        beta1: f64,
        #[serde(default = "default_beta2")]
        beta2: f64,
        #[serde(default = "default_eps")]
        eps: f64,
    },
    Sgd {
        lr: f64,
        #[serde(default)]
        momentum: f64,
    },
}

fn default_wd() -> f64 {
    0.01
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of eval samples classified correctly (higher is better).
    Accuracy,
    /// Mean cross-entropy on the eval split, in nats (lower is better).
    Loss,
    /// exp(loss) (lower is better).
    Perplexity,
}

impl Metric {
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Accuracy)
    }

    /// Whether `value` meets `threshold` in this metric's direction.
    pub fn meets(self, value: f64, threshold: f64) -> bool {
        if self.higher_is_better() {
            value >= threshold
        } else {
            value <= threshold
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    pub metric: Metric,
    /// The result is acceptable when the final eval metric meets this (≥ for accuracy,
    /// ≤ for loss and perplexity).
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    pub max_dataset_bytes: u64,
    pub max_wall_time_s: u64,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        Self {
            max_dataset_bytes: 64 << 20,
            max_wall_time_s: 3_600,
        }
    }
}

impl JobSpec {
    /// Parses and validates; every problem is reported at once.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let spec: JobSpec = serde_json::from_slice(bytes)?;
        spec.validate()?;
        Ok(spec)
    }

    /// The files the job needs besides its dataset, by role: what a trainer, a worker or a
    /// verifier fetches (each at most its stated size) and [`FileRef::attach`]es before the
    /// data is split or the model built.
    pub fn files_mut(&mut self) -> Vec<(&'static str, &mut FileRef)> {
        let mut out = Vec::new();
        let format = match &mut self.dataset.format {
            DatasetFormat::Shards { shard_format, .. } => &mut **shard_format,
            f => f,
        };
        if let DatasetFormat::BpeText {
            tokenizer: Some(t), ..
        }
        | DatasetFormat::Tokens {
            tokenizer: Some(t), ..
        } = format
        {
            out.push((TOKENIZER_ROLE, t));
        }
        if let Some(i) = self.model.init_mut() {
            out.push((INIT_ROLE, i));
        }
        out
    }

    /// [`Self::files_mut`], to read.
    pub fn files(&self) -> Vec<(&'static str, &FileRef)> {
        let mut out = Vec::new();
        if let DatasetFormat::BpeText {
            tokenizer: Some(t), ..
        }
        | DatasetFormat::Tokens {
            tokenizer: Some(t), ..
        } = self.dataset.format.each_file()
        {
            out.push((TOKENIZER_ROLE, t));
        }
        if let Some(i) = self.model.init() {
            out.push((INIT_ROLE, i));
        }
        out
    }

    /// sha256 of the spec file's bytes (what goes on-chain as `spec_hash`).
    pub fn hash_bytes(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    /// Number of optimizer steps the job runs, given the training-split size.
    /// Steps between state commitments for a run of `total` steps: the spec's
    /// `commit_every`, else a fiftieth of the run (at least one step).
    pub fn commit_every(&self, total: u64) -> Result<u64> {
        let every = self
            .training
            .commit_every
            .unwrap_or_else(|| total.div_ceil(crate::commit::DEFAULT_SEGMENTS).max(1));
        let segments = total.div_ceil(every.max(1));
        if every == 0 || segments > crate::commit::MAX_SEGMENTS {
            return Err(Error::InvalidSpec(vec![format!(
                "training.commit_every {every} makes {segments} segments of {total} steps; \
                 at most {} are allowed",
                crate::commit::MAX_SEGMENTS
            )]));
        }
        Ok(every)
    }

    pub fn total_steps(&self, train_samples: usize) -> u64 {
        if let Some(steps) = self.training.steps {
            return steps;
        }
        let per_epoch = train_samples.div_ceil(self.training.batch_size.max(1)) as u64;
        per_epoch * self.training.epochs.unwrap_or(0) as u64
    }

    pub fn validate(&self) -> Result<()> {
        let mut errs = Vec::new();
        let mut check = |ok: bool, msg: String| {
            if !ok {
                errs.push(msg);
            }
        };
        check(
            self.version == SPEC_VERSION,
            format!(
                "version {} is not supported (expected {SPEC_VERSION})",
                self.version
            ),
        );
        let d = &self.dataset;
        check(
            uri_scheme_ok(&d.uri),
            format!(
                "dataset.uri `{}`: unsupported scheme (use s3://, https://, http:// or file:)",
                d.uri
            ),
        );
        check(
            is_sha256_hex(&d.sha256),
            "dataset.sha256 must be 64 hex characters".into(),
        );
        let scale = d.format.scale();
        if let DatasetFormat::Shards {
            shard_format,
            eval_shards,
            classes,
        } = &d.format
        {
            let cifar = matches!(**shard_format, DatasetFormat::Cifar { .. });
            check(
                cifar || matches!(**shard_format, DatasetFormat::Tokens { .. }),
                "dataset.format.shard_format must be tokens or cifar (formats whose samples \
                 can be counted from a shard's size)"
                    .into(),
            );
            check(
                (1..limits::MAX_SHARDS as u32).contains(eval_shards),
                format!(
                    "dataset.format.eval_shards {eval_shards} must be 1..{}",
                    limits::MAX_SHARDS
                ),
            );
            match classes {
                Some(c) => check(
                    cifar && (2..=limits::MAX_CLASSES).contains(c),
                    format!(
                        "dataset.format.classes {c}: only for cifar shards, 2..={}",
                        limits::MAX_CLASSES
                    ),
                ),
                None => check(
                    !cifar,
                    "dataset.format.classes is needed for cifar shards (the labels are \
                     never all read before training)"
                        .into(),
                ),
            }
        }
        if let DatasetFormat::BpeText {
            vocab_size,
            tokenizer,
        } = &d.format
        {
            check(
                vocab_size.is_some() != tokenizer.is_some(),
                "dataset.format (bpe_text) needs either vocab_size (a BPE trained on the text) \
                 or tokenizer (a tokenizer.json given), not both"
                    .into(),
            );
            if let Some(vocab_size) = vocab_size {
                check(
                    (crate::tokenizer::BYTE_IDS + 1..=limits::MAX_VOCAB)
                        .contains(&(*vocab_size as usize)),
                    format!(
                        "dataset.format.vocab_size {vocab_size} (bpe_text) must be {}..={}",
                        crate::tokenizer::BYTE_IDS + 1,
                        limits::MAX_VOCAB
                    ),
                );
            }
        }
        let mut file_errs = Vec::new();
        for (role, f) in self.files() {
            let max = if role == INIT_ROLE {
                limits::MAX_INIT_BYTES
            } else {
                limits::MAX_TOKENIZER_BYTES
            };
            f.check(role, max, &mut file_errs);
        }
        for e in file_errs {
            check(false, e);
        }
        if let DatasetFormat::Tokens { vocab_size, .. } = *d.format.each_file() {
            check(
                (2..=limits::MAX_VOCAB).contains(&(vocab_size as usize)),
                format!(
                    "dataset.format.vocab_size {vocab_size} must be 2..={}",
                    limits::MAX_VOCAB
                ),
            );
        }
        check(
            scale.is_finite() && scale != 0.0,
            format!("dataset.format.scale {scale} must be finite and non-zero"),
        );
        if let DatasetFormat::Csv { delimiter, .. } = &d.format {
            check(
                !delimiter.is_ascii_digit()
                    && !matches!(delimiter, '.' | '-' | '+' | 'e' | 'E' | '\n' | '\r'),
                format!("dataset.format.delimiter {delimiter:?} cannot separate numbers"),
            );
        }
        check(
            d.eval_fraction > 0.0 && d.eval_fraction < 1.0,
            format!(
                "dataset.eval_fraction {} must be in (0, 1)",
                d.eval_fraction
            ),
        );
        let t = &self.training;
        check(
            (1..=limits::MAX_BATCH).contains(&t.batch_size),
            format!(
                "training.batch_size {} must be 1..={}",
                t.batch_size,
                limits::MAX_BATCH
            ),
        );
        match (t.epochs, t.steps) {
            (None, None) => check(false, "training needs `epochs` or `steps`".into()),
            (Some(e), _) if e == 0 || e > limits::MAX_EPOCHS => check(
                false,
                format!("training.epochs {e} must be 1..={}", limits::MAX_EPOCHS),
            ),
            _ => {}
        }
        if let Some(s) = t.steps {
            check(
                (1..=limits::MAX_STEPS).contains(&s),
                format!("training.steps {s} must be 1..={}", limits::MAX_STEPS),
            );
        }
        check(
            t.eval_every > 0,
            "training.eval_every must be positive".into(),
        );
        if let Some(c) = t.commit_every {
            check(
                (1..=limits::MAX_STEPS).contains(&c),
                format!(
                    "training.commit_every {c} must be 1..={}",
                    limits::MAX_STEPS
                ),
            );
            // With a step count the segments are known now (with epochs, once the data is).
            if let Some(s) = t.steps.filter(|_| c > 0) {
                check(
                    s.div_ceil(c) <= crate::commit::MAX_SEGMENTS,
                    format!(
                        "training.commit_every {c} makes {} segments of {s} steps; at most {} \
                         are allowed",
                        s.div_ceil(c),
                        crate::commit::MAX_SEGMENTS
                    ),
                );
            }
        }
        if let Some(sch) = &t.schedule {
            check(
                sch.warmup_steps <= limits::MAX_STEPS,
                format!(
                    "training.schedule.warmup_steps {} must be at most {}",
                    sch.warmup_steps,
                    limits::MAX_STEPS
                ),
            );
            check(
                (0.0..=1.0).contains(&sch.min_lr_ratio),
                format!(
                    "training.schedule.min_lr_ratio {} must be in [0, 1]",
                    sch.min_lr_ratio
                ),
            );
        }
        if let Some(c) = t.clip_grad_norm {
            check(
                c.is_finite() && c > 0.0,
                format!("training.clip_grad_norm {c} must be finite and > 0"),
            );
        }
        if let Some(k) = t.grad_accumulation {
            check(
                k >= 1 && k as usize <= t.batch_size.max(1),
                format!(
                    "training.grad_accumulation {k} must be 1..=batch_size ({})",
                    t.batch_size
                ),
            );
        }
        let lr_ok = |lr: f64| lr.is_finite() && lr > 0.0 && lr <= 10.0;
        match &t.optimizer {
            OptimizerSpec::Adamw {
                lr,
                weight_decay,
                beta1,
                beta2,
                eps,
            } => {
                check(lr_ok(*lr), format!("optimizer.lr {lr} must be in (0, 10]"));
                check(
                    weight_decay.is_finite() && *weight_decay >= 0.0,
                    format!("optimizer.weight_decay {weight_decay} must be ≥ 0"),
                );
                check(
                    (0.0..1.0).contains(beta1) && (0.0..1.0).contains(beta2),
                    "optimizer.beta1/beta2 must be in [0, 1)".into(),
                );
                check(*eps > 0.0, format!("optimizer.eps {eps} must be > 0"));
            }
            OptimizerSpec::Sgd { lr, momentum } => {
                check(lr_ok(*lr), format!("optimizer.lr {lr} must be in (0, 10]"));
                check(
                    (0.0..1.0).contains(momentum),
                    format!("optimizer.momentum {momentum} must be in [0, 1)"),
                );
            }
        }
        let text = d.format.is_text();
        match &self.model {
            ModelSpec::Mlp { hidden, .. } => {
                check(
                    !text,
                    "model mlp needs a tabular or image dataset, not text".into(),
                );
                check(
                    hidden.len() <= limits::MAX_LAYERS,
                    "model.hidden has too many layers".into(),
                );
                check(
                    hidden.iter().all(|h| (1..=limits::MAX_HIDDEN).contains(h)),
                    format!("model.hidden sizes must be 1..={}", limits::MAX_HIDDEN),
                );
            }
            ModelSpec::Cnn {
                input_shape,
                channels,
                ..
            } => {
                check(!text, "model cnn needs an image dataset, not text".into());
                check(
                    input_shape.iter().all(|&s| s > 0)
                        && input_shape[1] >= 2
                        && input_shape[2] >= 2,
                    "model.input_shape must be [channels ≥ 1, height ≥ 2, width ≥ 2]".into(),
                );
                check(input_size_ok(input_shape), input_size_problem(input_shape));
                check(
                    !channels.is_empty()
                        && channels.len() <= limits::MAX_LAYERS
                        && channels.iter().all(|c| (1..=1024).contains(c)),
                    "model.channels must list 1..=32 conv widths, each 1..=1024".into(),
                );
            }
            ModelSpec::Resnet {
                input_shape,
                widths,
                blocks,
                ..
            } => {
                check(
                    !text,
                    "model resnet needs an image dataset, not text".into(),
                );
                check(
                    !widths.is_empty()
                        && widths.len() <= MAX_STAGES
                        && widths.iter().all(|c| (1..=1024).contains(c)),
                    format!("model.widths must list 1..={MAX_STAGES} stage widths, each 1..=1024"),
                );
                check(
                    (1..=MAX_BLOCKS).contains(blocks),
                    format!("model.blocks must be 1..={MAX_BLOCKS}"),
                );
                // A norm sums a sample's whole feature map in f32: kept to a size it sums well.
                let map = input_shape[1]
                    .saturating_mul(input_shape[2])
                    .saturating_mul(widths.first().copied().unwrap_or(0));
                check(
                    map <= MAX_FEATURE_MAP,
                    format!(
                        "model.input_shape {input_shape:?} with a first stage of {} channels \
                         makes feature maps of {map} values; at most {MAX_FEATURE_MAP}",
                        widths.first().copied().unwrap_or(0)
                    ),
                );
                // Each stage after the first halves the image: it must keep a pixel.
                let halvings = widths.len().saturating_sub(1).min(MAX_STAGES) as u32;
                check(
                    input_shape[0] >= 1
                        && input_shape[1] >> halvings >= 1
                        && input_shape[2] >> halvings >= 1,
                    format!(
                        "model.input_shape {input_shape:?}: [channels ≥ 1, height and width ≥ \
                         {}] for {} stages",
                        1usize << halvings,
                        widths.len()
                    ),
                );
                check(input_size_ok(input_shape), input_size_problem(input_shape));
            }
            ModelSpec::CharTransformer {
                layers,
                d_model,
                heads,
                context,
                ..
            }
            | ModelSpec::Gpt2 {
                layers,
                d_model,
                heads,
                context,
                ..
            } => {
                let kind = self.model.kind();
                check(text, format!("model {kind} needs a text or tokens dataset"));
                check(
                    t.steps.is_some(),
                    format!("model {kind} needs training.steps"),
                );
                check(
                    (1..=limits::MAX_LAYERS).contains(layers),
                    "model.layers must be 1..=32".into(),
                );
                check(
                    (1..=limits::MAX_D_MODEL).contains(d_model),
                    format!("model.d_model must be 1..={}", limits::MAX_D_MODEL),
                );
                check(
                    *heads > 0 && d_model % heads.max(&1) == 0,
                    format!("model.heads {heads} must divide d_model {d_model}"),
                );
                check(
                    (2..=limits::MAX_CONTEXT).contains(context),
                    format!("model.context must be 2..={}", limits::MAX_CONTEXT),
                );
            }
        }
        if let DatasetFormat::Cifar { .. } = d.format.each_file() {
            check(
                self.model.input_shape() == Some(CIFAR_SHAPE),
                format!(
                    "dataset.format cifar holds {CIFAR_SHAPE:?} images: model {} needs that \
                     input_shape",
                    self.model.kind()
                ),
            );
        }
        if let Some(a) = &t.augment {
            match self.model.input_shape() {
                None => check(
                    false,
                    format!(
                        "training.augment is for image models (cnn, resnet), not {}",
                        self.model.kind()
                    ),
                ),
                Some([_, h, w]) => check(
                    a.crop_padding <= h.min(w) / 2,
                    format!(
                        "training.augment.crop_padding {} must be at most half the image's \
                         side ({})",
                        a.crop_padding,
                        h.min(w) / 2
                    ),
                ),
            }
        }
        let metric = self.evaluation.metric;
        check(
            !(text && metric == Metric::Accuracy),
            "evaluation.metric accuracy does not apply to language modelling (use loss or perplexity)".into(),
        );
        check(
            self.evaluation.threshold.is_finite()
                && (metric != Metric::Accuracy || (0.0..=1.0).contains(&self.evaluation.threshold)),
            format!(
                "evaluation.threshold {} is out of range",
                self.evaluation.threshold
            ),
        );
        let l = &self.limits;
        check(
            (1..=limits::MAX_DATASET_BYTES).contains(&l.max_dataset_bytes),
            format!(
                "limits.max_dataset_bytes must be 1..={}",
                limits::MAX_DATASET_BYTES
            ),
        );
        check(
            (1..=limits::MAX_WALL_TIME_S).contains(&l.max_wall_time_s),
            format!(
                "limits.max_wall_time_s must be 1..={}",
                limits::MAX_WALL_TIME_S
            ),
        );
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidSpec(errs))
        }
    }
}
