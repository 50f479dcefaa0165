//! The training loop: deterministic batches, periodic evaluation and checkpoints, resume,
//! cancellation between steps, and the result files.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::{
    checkpoint, commit,
    data::{Split, Table},
    manifest::{self, Manifest},
    models::{init, Arch, Model},
    optim::Optimizer,
    parts::Parts,
    rng,
    spec::{JobSpec, Metric},
    Error, Result,
};

/// One line of `metrics.jsonl`. A loss that is not finite (a run that diverged) is written as
/// JSON's `null` and read back as NaN, so a record reads back to the bytes it was written as
/// (the last committed state's hash covers them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    pub step: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Mean training loss since the previous record.
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub eval_loss: f64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_nan_if_null"
    )]
    pub eval_accuracy: Option<f64>,
}

fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Present as `null`: a value that was not finite (an absent field is `None`).
fn some_nan_if_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<f64>, D::Error> {
    Ok(Some(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN)))
}

impl MetricsRecord {
    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Accuracy => self.eval_accuracy.unwrap_or(f64::NAN),
            Metric::Loss => self.eval_loss,
            Metric::Perplexity => self.eval_loss.exp(),
        }
    }
}

pub struct TrainOptions {
    pub device: Device,
    pub out_dir: PathBuf,
    /// Continue from `out_dir/checkpoint` when one exists.
    pub resume: bool,
    /// Checked between steps; when set, a checkpoint is written and training stops.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Training stops (with a checkpoint) once this instant passes: [`Error::DeadlineReached`].
    /// A worker sets it from the on-chain deadline, less the time to publish and submit.
    pub deadline: Option<Instant>,
    /// Called after every step, and with the new record after every evaluation.
    pub progress: Option<ProgressFn>,
}

/// Where a run is, for a progress bar or a worker's status.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Steps completed.
    pub step: u64,
    pub total: u64,
    /// The evaluation just made, if this step ended with one.
    pub record: Option<&'a MetricsRecord>,
}

pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

impl TrainOptions {
    /// CPU or GPU training into `out_dir`, resuming, with no cancel flag, deadline or callback.
    pub fn new(device: Device, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            device,
            out_dir: out_dir.into(),
            resume: true,
            cancel: None,
            deadline: None,
            progress: None,
        }
    }

    fn report(&self, step: u64, total: u64, record: Option<&MetricsRecord>) {
        if let Some(f) = &self.progress {
            f(&Progress {
                step,
                total,
                record,
            });
        }
    }
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub manifest: Manifest,
    /// sha256 of `manifest.json`: the hash a worker submits.
    pub result_hash: [u8; 32],
    pub wall_time_s: f64,
    /// Seconds this run spent hashing and writing committed states (a resumed run: since the
    /// resume).
    pub commit_secs: f64,
}

/// A model with its parameters, ready to train or evaluate.
pub struct Built {
    /// The model over the f32 parameters: what evaluates, and what trains in f32.
    pub model: Model,
    pub varmap: VarMap,
    /// Under mixed precision, what each step builds its model from.
    half: Option<HalfBuild>,
    /// How each step splits its batch ([`crate::parts`]).
    pub(crate) parts: Parts,
}

/// What [`Built::step_model`] gives: the f32 model, or one built for the step.
pub(crate) enum StepModel<'a> {
    Shared(&'a Model),
    Own(Model),
}

impl std::ops::Deref for StepModel<'_> {
    type Target = Model;
    fn deref(&self) -> &Model {
        match self {
            StepModel::Shared(m) => m,
            StepModel::Own(m) => m,
        }
    }
}

/// A model's recipe and the half type its steps compute in ([`crate::precision`]).
struct HalfBuild {
    spec: crate::spec::ModelSpec,
    arch: Arch,
    dtype: DType,
    device: Device,
}

impl Built {
    pub fn new(spec: &JobSpec, data: &Split, device: &Device) -> Result<Self> {
        let dtype = crate::precision::compute_dtype(&spec.training, device);
        Self::computing_in(spec, data, device, dtype)
    }

    /// [`Self::new`] with its steps computing in `dtype` whatever the device (tests run the
    /// mixed-precision path on the CPU with it).
    pub(crate) fn computing_in(
        spec: &JobSpec,
        data: &Split,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = Model::build(&spec.model, data, vb)?;
        init::initialize(&varmap, spec.training.seed, model.init_scheme())?;
        if let Some(f) = spec.model.init() {
            let gpt2 = spec.model.transformer().is_some_and(|t| t.gpt2);
            crate::finetune::load(&varmap, f.bytes_for(crate::spec::INIT_ROLE)?, gpt2)?;
        }
        let half = (dtype != DType::F32).then(|| HalfBuild {
            spec: spec.model.clone(),
            arch: Arch::of(data),
            dtype,
            device: device.clone(),
        });
        Ok(Self {
            model,
            varmap,
            half,
            // The CPU trains in f32 only: a half type here is a test standing in for a GPU,
            // and takes a GPU's split.
            parts: Parts::on(spec, data, device.is_cpu() && dtype == DType::F32),
        })
    }

    /// The model a training step computes with: the f32 one, or under mixed precision one
    /// built from the parameters cast to the half type. Built anew for every step: a cast is
    /// a copy, which the optimizer's in-place update of the parameter does not reach; the
    /// casts are nodes of the step's graph, so gradients flow back through them to the f32
    /// parameters.
    pub(crate) fn step_model(&self) -> Result<StepModel<'_>> {
        let Some(h) = &self.half else {
            return Ok(StepModel::Shared(&self.model));
        };
        let params: std::collections::HashMap<String, Tensor> = self
            .params()
            .into_iter()
            .map(|(name, v)| (name, v.as_tensor().clone()))
            .collect();
        let vb = VarBuilder::from_tensors(params, h.dtype, &h.device);
        Ok(StepModel::Own(Model::build_for(&h.spec, h.arch, vb)?))
    }

    /// Parameters by name, sorted.
    pub fn params(&self) -> BTreeMap<String, Var> {
        let data = self.varmap.data().lock().expect("varmap lock");
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Device-resident data for the loop.
pub(crate) enum Batches {
    Table {
        /// The training samples on the device (not when augmenting).
        x: Option<Tensor>,
        y: Tensor,
        rows: usize,
        /// The current epoch's shuffle, computed once per epoch rather than per step.
        order: Option<(u64, Vec<u32>)>,
        /// Image augmentation, with the training samples on the host to draw from.
        augment: Option<Augment>,
    },
    Text {
        train: Vec<u32>,
        context: usize,
    },
    /// A sharded dataset's training samples, streamed ([`crate::data::shards`]).
    Sharded {
        stream: crate::data::shards::Stream,
        /// Token windows of this many ids (a language model), or image rows when `None`.
        context: Option<usize>,
        augment: Option<Augment>,
    },
}

fn table_tensors(t: &Table, device: &Device) -> Result<(Tensor, Tensor)> {
    let x = Tensor::from_slice(&t.features, (t.rows(), t.dim), device)?;
    let y = Tensor::from_slice(&t.labels, t.rows(), device)?;
    Ok((x, y))
}

impl Batches {
    pub(crate) fn new(spec: &JobSpec, data: &Split, device: &Device) -> Result<Self> {
        if let Some(set) = data.shards() {
            let context = spec.model.transformer().map(|t| t.context);
            let augment = match (spec.training.augment, spec.model.input_shape()) {
                (Some(a), Some(shape)) => Some(Augment {
                    spec: a,
                    shape,
                    features: Vec::new(),
                }),
                _ => None,
            };
            return Ok(Batches::Sharded {
                stream: crate::data::shards::Stream::new(set.clone(), spec.training.seed),
                context,
                augment,
            });
        }
        Ok(match data {
            Split::Table { train, .. } => {
                let augment = match (spec.training.augment, spec.model.input_shape()) {
                    (Some(a), Some(shape)) => Some(Augment {
                        spec: a,
                        shape,
                        features: train.features.clone(),
                    }),
                    _ => None,
                };
                // Augmented batches are built on the host: the samples stay there.
                let y = Tensor::from_slice(&train.labels, train.rows(), device)?;
                let x = match augment {
                    Some(_) => None,
                    None => Some(Tensor::from_slice(
                        &train.features,
                        (train.rows(), train.dim),
                        device,
                    )?),
                };
                Batches::Table {
                    x,
                    y,
                    rows: train.rows(),
                    order: None,
                    augment,
                }
            }
            Split::Text { train, .. } => {
                let Some(crate::spec::TransformerSpec { context, .. }) = spec.model.transformer()
                else {
                    return Err(Error::Format("text data needs a transformer".into()));
                };
                Batches::Text {
                    train: train.clone(),
                    context,
                }
            }
        })
    }

    /// Nothing past step `step`'s first sample is fetched ahead (a sharded dataset's): the
    /// run, or the segment re-run, ends there.
    pub(crate) fn end_at_step(&mut self, step: u64, batch: usize) {
        if let Batches::Sharded {
            stream, context, ..
        } = self
        {
            let (b, total) = (batch as u64, stream.set().samples());
            let end = match context {
                Some(_) => step.saturating_mul(b),
                None => {
                    let per_epoch = total.div_ceil(b).max(1);
                    let (epoch, i) = (step / per_epoch, step % per_epoch);
                    epoch
                        .saturating_mul(total)
                        .saturating_add(i.saturating_mul(b).min(total))
                }
            };
            stream.set_end(end);
        }
    }

    pub(crate) fn steps_per_epoch(&self, batch: usize) -> Option<u64> {
        match self {
            Batches::Table { rows, .. } => Some(rows.div_ceil(batch) as u64),
            Batches::Sharded {
                context: None,
                stream,
                ..
            } => Some(stream.set().samples().div_ceil(batch as u64)),
            Batches::Text { .. } | Batches::Sharded { .. } => None,
        }
    }

    /// The batch for `step`: a pure function of (seed, step).
    pub(crate) fn batch(
        &mut self,
        seed: u64,
        step: u64,
        batch: usize,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        match self {
            Batches::Table {
                x,
                y,
                rows,
                order,
                augment,
            } => {
                let per_epoch = rows.div_ceil(batch) as u64;
                let (epoch, b) = (step / per_epoch, (step % per_epoch) as usize);
                if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    *order = Some((epoch, rng::permutation(seed, "epoch", epoch, *rows)));
                }
                let perm = &order.as_ref().expect("set above").1;
                let idx = &perm[b * batch..((b + 1) * batch).min(*rows)];
                let xs = match (augment, x) {
                    (Some(a), _) => a.batch(idx, seed, step, device)?,
                    (None, Some(x)) => {
                        x.index_select(&Tensor::from_slice(idx, idx.len(), device)?, 0)?
                    }
                    (None, None) => return Err(Error::Internal("no training samples".into())),
                };
                let idx = Tensor::from_slice(idx, idx.len(), device)?;
                Ok((xs, y.index_select(&idx, 0)?))
            }
            Batches::Text { train, context } => {
                use rand::Rng;
                let context = *context;
                let mut r = rng::stream(seed, "batch", step);
                let max = train.len() - context - 1;
                let mut xs = Vec::with_capacity(batch * context);
                let mut ys = Vec::with_capacity(batch * context);
                for _ in 0..batch {
                    let o = r.random_range(0..=max);
                    xs.extend_from_slice(&train[o..o + context]);
                    ys.extend_from_slice(&train[o + 1..o + context + 1]);
                }
                Ok((
                    Tensor::from_vec(xs, (batch, context), device)?,
                    Tensor::from_vec(ys, (batch, context), device)?,
                ))
            }
            Batches::Sharded {
                stream,
                context,
                augment,
            } => {
                use crate::data::shards::Batch;
                let (b, total) = (batch as u64, stream.set().samples());
                // A language model's windows run on across epochs; an image epoch ends with
                // a short batch, as in memory.
                let (from, to) = match context {
                    Some(_) => (step * b, step * b + b),
                    None => {
                        let per_epoch = total.div_ceil(b);
                        let (epoch, i) = (step / per_epoch, step % per_epoch);
                        let start = epoch * total + i * b;
                        (start, epoch * total + ((i + 1) * b).min(total))
                    }
                };
                match stream.take(from, to)? {
                    Batch::Tokens { x, y } => {
                        let (n, ctx) = ((to - from) as usize, context.unwrap_or(0));
                        Ok((
                            Tensor::from_vec(x, (n, ctx), device)?,
                            Tensor::from_vec(y, (n, ctx), device)?,
                        ))
                    }
                    Batch::Table(t) => {
                        let xs = match augment {
                            Some(a) => {
                                let idx: Vec<u32> = (0..t.rows() as u32).collect();
                                a.batch_from(&t.features, &idx, seed, step, device)?
                            }
                            None => Tensor::from_slice(&t.features, (t.rows(), t.dim), device)?,
                        };
                        Ok((xs, Tensor::from_slice(&t.labels, t.rows(), device)?))
                    }
                }
            }
        }
    }
}

/// Random crops and flips of image samples (see [`crate::spec::AugmentSpec`]).
pub(crate) struct Augment {
    spec: crate::spec::AugmentSpec,
    /// `[channels, height, width]`; a sample is its channels' planes, row by row.
    shape: [usize; 3],
    /// The training samples, row-major.
    features: Vec<f32>,
}

impl Augment {
    /// The samples at `idx`, each cropped and flipped as drawn for (seed, step): the shift
    /// (dy, dx) in `0..=2·padding` of a window over the zero-padded image and the flip come
    /// from one stream per step, in sample order, so a re-run draws the same.
    fn batch(&self, idx: &[u32], seed: u64, step: u64, device: &Device) -> Result<Tensor> {
        self.batch_from(&self.features, idx, seed, step, device)
    }

    /// [`Self::batch`] from the samples `features` (row-major) rather than its own.
    fn batch_from(
        &self,
        features: &[f32],
        idx: &[u32],
        seed: u64,
        step: u64,
        device: &Device,
    ) -> Result<Tensor> {
        use rand::Rng;
        let [c, h, w] = self.shape;
        let dim = c * h * w;
        // u32 draws (isize's would depend on the platform's width).
        let pad = self.spec.crop_padding as u32;
        let p = pad as isize;
        let mut r = rng::stream(seed, "augment", step);
        let mut out = vec![0f32; idx.len() * dim];
        for (dst, &row) in out.chunks_exact_mut(dim).zip(idx) {
            let src = &features[row as usize * dim..(row as usize + 1) * dim];
            let dy = r.random_range(0..=2 * pad) as isize - p;
            let dx = r.random_range(0..=2 * pad) as isize - p;
            let flip = self.spec.horizontal_flip && r.random_bool(0.5);
            for ch in 0..c {
                for y in 0..h {
                    let sy = y as isize + dy;
                    if sy < 0 || sy >= h as isize {
                        continue;
                    }
                    for x in 0..w {
                        let fx = if flip { w - 1 - x } else { x };
                        let sx = fx as isize + dx;
                        if sx < 0 || sx >= w as isize {
                            continue;
                        }
                        dst[(ch * h + y) * w + x] = src[(ch * h + sy as usize) * w + sx as usize];
                    }
                }
            }
        }
        Ok(Tensor::from_vec(out, (idx.len(), dim), device)?)
    }
}

/// Mean cross-entropy of `logits` against `targets`, over all positions.
pub fn loss(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let logits = if logits.rank() == 3 {
        logits.flatten_to(1)?
    } else {
        logits.clone()
    };
    crate::kernels::cross_entropy(&logits, &targets.flatten_all()?)
}

/// Eval loss (and accuracy for classification) over the whole eval split.
pub fn evaluate(model: &Model, data: &Split, device: &Device) -> Result<(f64, Option<f64>)> {
    if device.is_cpu() && rayon::current_thread_index().is_none() {
        // On one of the pool's threads, as a training step ([`update`]).
        return rayon::scope(|_| evaluate(model, data, device));
    }
    const CHUNK: usize = 1_024;
    match data {
        Split::Table { eval, .. } => {
            let (x, y) = table_tensors(eval, device)?;
            let (mut loss_sum, mut correct) = (0f64, 0u64);
            for start in (0..eval.rows()).step_by(CHUNK) {
                let len = CHUNK.min(eval.rows() - start);
                let (xb, yb) = (x.narrow(0, start, len)?, y.narrow(0, start, len)?);
                let logits = model.forward(&xb)?;
                loss_sum += loss(&logits, &yb)?.to_scalar::<f32>()? as f64 * len as f64;
                let pred = logits.argmax(1)?;
                correct += pred
                    .eq(&yb)?
                    .to_dtype(DType::F32)?
                    .sum_all()?
                    .to_scalar::<f32>()? as u64;
            }
            let n = eval.rows() as f64;
            Ok((loss_sum / n, Some(correct as f64 / n)))
        }
        Split::Text { eval, .. } => {
            let Some(m) = model.transformer() else {
                return Err(Error::Format("text data needs a char_transformer".into()));
            };
            let ctx = m.config().context;
            // Non-overlapping windows over the held-out text, at most 256 of them.
            let windows = ((eval.len() - 1) / ctx).min(256);
            let mut xs = Vec::with_capacity(windows * ctx);
            let mut ys = Vec::with_capacity(windows * ctx);
            for w in 0..windows {
                xs.extend_from_slice(&eval[w * ctx..(w + 1) * ctx]);
                ys.extend_from_slice(&eval[w * ctx + 1..(w + 1) * ctx + 1]);
            }
            let (mut sum, mut count) = (0f64, 0usize);
            for chunk in (0..windows).step_by(32) {
                let n = 32.min(windows - chunk);
                let x = Tensor::from_slice(&xs[chunk * ctx..(chunk + n) * ctx], (n, ctx), device)?;
                let y = Tensor::from_slice(&ys[chunk * ctx..(chunk + n) * ctx], (n, ctx), device)?;
                sum += loss(&model.forward(&x)?, &y)?.to_scalar::<f32>()? as f64 * n as f64;
                count += n;
            }
            Ok((sum / count as f64, None))
        }
    }
}

/// One optimizer update from the batch (`x`, `y`) at `lr_factor` × the optimizer's rate (the
/// schedule's, [`crate::schedule::lr_factor`]): the batch whole, in the spec's micro-batches or
/// in the CPU's parts ([`crate::parts`]; gradients summed, each weighted by its share of the
/// rows), the gradients clipped when the spec says so. Returns the batch's mean loss. Without
/// those settings and at factor 1 this is exactly `loss → backward → step`.
pub(crate) fn update(
    spec: &JobSpec,
    built: &Built,
    opt: &mut Optimizer,
    x: &Tensor,
    y: &Tensor,
    lr_factor: f64,
) -> Result<f32> {
    if x.device().is_cpu() && rayon::current_thread_index().is_none() {
        // The whole step on one of the pool's threads: an op called from outside the pool
        // hands its work to the pool and sleeps until it is done, a wake-up per op (a few
        // percent of a step even on one thread); from inside, an op runs where it is called
        // and only its spare pieces go to other threads.
        return rayon::scope(|_| update(spec, built, opt, x, y, lr_factor));
    }
    let model = built.step_model()?;
    let (mut grads, lv) = match crate::precision::loss_scales(model.dtype()) {
        [1.0] => gradients(built.parts, &model, opt, x, y, 1.0)?,
        scales => {
            // f16: the first scale whose gradients are all finite. A loss that is not finite
            // is the run's own divergence, and gradients that overflow even unscaled are too:
            // no step is taken, and the caller sees a loss that is not finite.
            let mut found = None;
            for &scale in scales {
                let (grads, lv) = gradients(built.parts, &model, opt, x, y, scale)?;
                if !lv.is_finite() {
                    return Ok(lv);
                }
                if all_finite(&grads)? {
                    found = Some((grads, lv));
                    break;
                }
                tracing::debug!(
                    scale,
                    "f16 gradients overflowed: the step again at a smaller scale"
                );
            }
            match found {
                Some(g) => g,
                None => return Ok(f32::NAN),
            }
        }
    };
    if let Some(max_norm) = spec.training.clip_grad_norm {
        Optimizer::clip(&mut grads, max_norm)?;
    }
    opt.step_with(&grads, lr_factor)?;
    Ok(lv)
}

/// The batch's gradients and its mean loss: the batch whole, or in `parts` (their gradients
/// summed in order, each weighted by its share of the rows; side by side on the CPU's threads
/// when `parts` says so, [`crate::parts`]), the loss multiplied by `scale` before the backward
/// pass and the gradients divided by it after (`scale` 1: neither).
pub(crate) fn gradients(
    parts: Parts,
    model: &Model,
    opt: &Optimizer,
    x: &Tensor,
    y: &Tensor,
    scale: f64,
) -> Result<(BTreeMap<String, Tensor>, f32)> {
    let rows = x.dim(0)?;
    let backward = |l: &Tensor| -> Result<BTreeMap<String, Tensor>> {
        if scale == 1.0 {
            return opt.grads(l);
        }
        opt.grads(&(l * scale)?)?
            .into_iter()
            .map(|(name, g)| Ok((name, (g * (1.0 / scale))?)))
            .collect()
    };
    if parts.count <= 1 || rows <= 1 {
        let l = loss(&model.forward(x)?, y)?;
        return Ok((backward(&l)?, l.to_scalar::<f32>()?));
    }
    // A batch shorter than the spec's (an epoch's last) is split the same way, into parts of
    // `per` rows.
    let per = rows.div_ceil(parts.count);
    let ranges: Vec<(usize, usize)> = (0..rows)
        .step_by(per)
        .map(|at| (at, per.min(rows - at)))
        .collect();
    let part = |&(at, n): &(usize, usize)| -> Result<(BTreeMap<String, Tensor>, f32)> {
        let (xs, ys) = (x.narrow(0, at, n)?, y.narrow(0, at, n)?);
        let l = (loss(&model.forward(&xs)?, &ys)? * (n as f64 / rows as f64))?;
        let lv = l.to_scalar::<f32>()?;
        Ok((backward(&l)?, lv))
    };
    // Side by side: as many parts at a time as the pool has threads (each holds its own
    // gradients until they are summed); the sum is in the parts' order either way.
    let at_once = if parts.side_by_side {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    let mut sum: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut lv = 0f64;
    for wave in ranges.chunks(at_once) {
        let done: Vec<Result<_>> = if wave.len() == 1 {
            vec![part(&wave[0])]
        } else {
            use rayon::prelude::*;
            wave.par_iter().map(part).collect()
        };
        for result in done {
            let (grads, l) = result?;
            lv += l as f64;
            for (name, g) in grads {
                let g = match sum.remove(&name) {
                    Some(acc) => (acc + g)?,
                    None => g,
                };
                sum.insert(name, g);
            }
        }
    }
    Ok((sum, lv as f32))
}

/// Whether every gradient is finite: one reduction per tensor, one read back for all. `g · 0`
/// is 0 where `g` is finite and NaN where it is not (inf · 0), and a sum carries NaN through
/// (a max would not: `fmaxf` and `f32::max` drop it).
pub(crate) fn all_finite(grads: &BTreeMap<String, Tensor>) -> Result<bool> {
    let sums = grads
        .values()
        .map(|g| (g * 0.0)?.sum_all()?.to_dtype(DType::F32))
        .collect::<candle_core::Result<Vec<_>>>()?;
    if sums.is_empty() {
        return Ok(true);
    }
    let sums = Tensor::stack(&sums, 0)?.to_vec1::<f32>()?;
    Ok(sums.iter().all(|v| v.is_finite()))
}

/// One optimizer step at `step`, then an evaluation when one is due (its record pushed onto
/// `meta.records`; returns whether there was one). Shared by training and by a segment's
/// re-run, so both compute exactly the same thing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_step(
    spec: &JobSpec,
    data: &Split,
    device: &Device,
    built: &Built,
    opt: &mut Optimizer,
    batches: &mut Batches,
    meta: &mut checkpoint::Meta,
    per_epoch: Option<u64>,
    total: u64,
    step: u64,
) -> Result<bool> {
    let t = &spec.training;
    let (x, y) = batches.batch(t.seed, step, t.batch_size, device)?;
    let factor = crate::schedule::lr_factor(t.schedule.as_ref(), step, total);
    let lv = update(spec, built, opt, &x, &y, factor)? as f64;
    if !lv.is_finite() {
        // The spec's hyper-parameters diverged: no result can meet a threshold from here.
        return Err(Error::Diverged(step));
    }
    meta.loss_sum += lv;
    meta.loss_n += 1;
    let done = step + 1;
    let eval_now = match per_epoch {
        Some(pe) => done.is_multiple_of(pe) || done == total,
        None => done.is_multiple_of(t.eval_every) || done == total,
    };
    if !eval_now {
        return Ok(false);
    }
    let (eval_loss, eval_accuracy) = evaluate(&built.model, data, device)?;
    let rec = MetricsRecord {
        step: done,
        epoch: per_epoch.map(|pe| done.div_ceil(pe)),
        train_loss: meta.loss_sum / meta.loss_n.max(1) as f64,
        eval_loss,
        eval_accuracy,
    };
    tracing::info!(
        step = done,
        train_loss = rec.train_loss,
        eval_loss,
        eval_accuracy,
        "eval"
    );
    meta.records.push(rec);
    (meta.loss_sum, meta.loss_n) = (0.0, 0);
    Ok(true)
}

/// Trains the spec's model on `data`, writes the result into `opts.out_dir` and returns it.
pub fn train(
    spec: &JobSpec,
    spec_bytes: &[u8],
    data: &Split,
    opts: &TrainOptions,
) -> Result<Outcome> {
    let started = Instant::now();
    let device = &opts.device;
    let built = Built::new(spec, data, device)?;
    let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params())?;
    let mut batches = Batches::new(spec, data, device)?;
    let t = &spec.training;
    let train_rows = data.train_rows();
    let total = spec.total_steps(train_rows);
    let per_epoch = batches.steps_per_epoch(t.batch_size);
    batches.end_at_step(total, t.batch_size);
    let ckpt_dir = opts.out_dir.join("checkpoint");
    std::fs::create_dir_all(&opts.out_dir).map_err(Error::io(&opts.out_dir))?;

    let spec_sha256 = hex::encode(JobSpec::hash_bytes(spec_bytes));
    let mut meta = checkpoint::Meta {
        spec_sha256: spec_sha256.clone(),
        engine: checkpoint::ENGINE.into(),
        device: checkpoint::platform(device).0,
        cpu_isa: checkpoint::platform(device).1,
        step: 0,
        records: Vec::new(),
        // Training loss accumulated since the last record (part of the next one).
        loss_sum: 0.0,
        loss_n: 0,
        train_secs: 0.0,
        commitments: Vec::new(),
    };
    let commit_every = spec.commit_every(total)?;
    if opts.resume {
        if let Some(ck) = checkpoint::load(&ckpt_dir, device, &spec_sha256)? {
            // One commitment per boundary passed, each with its state file still here (it is
            // served on request), or the chain has a gap (a checkpoint from before
            // commitments, a directory partly wiped): start over rather than publish a chain
            // that could not be served.
            let whole = ck.meta.commitments.len() as u64 == ck.meta.step / commit_every + 1
                && ck
                    .meta
                    .commitments
                    .iter()
                    .all(|h| opts.out_dir.join(commit::state_file_name(h)).is_file());
            if whole {
                checkpoint::restore(&ck, &built.params(), &mut opt)?;
                tracing::info!(step = ck.meta.step, "resumed from checkpoint");
                meta = ck.meta;
            } else {
                tracing::warn!(
                    step = ck.meta.step,
                    "checkpoint without its state commitments or their files: starting over"
                );
            }
        }
    }
    let start = meta.step;
    // Time trained in earlier runs counts against the spec's limit.
    let before = meta.train_secs;
    let save = |opt: &Optimizer, meta: &mut checkpoint::Meta| -> Result<()> {
        meta.step = opt.step;
        meta.train_secs = before + started.elapsed().as_secs_f64();
        checkpoint::save(&ckpt_dir, &built.params(), opt, meta)
    };

    // The state at step 0 is committed like every other (a resumed run has it already).
    let states_dir = opts.out_dir.clone();
    let commit_secs = std::cell::Cell::new(0f64);
    let commit = |opt: &Optimizer, meta: &mut checkpoint::Meta| -> Result<()> {
        let began = Instant::now();
        let hash = commit::state_hash(&built.params(), &opt.state(), meta)?;
        // The segment starting here can be re-run from this file, kept for whoever asks for
        // it. Its bytes depend on nothing but the state (no wall time), so two honest runs
        // write the same files. The last state starts no segment: its hash alone ties the
        // chain to the published weights, so it needs no file.
        if meta.step < total {
            let state_meta = checkpoint::Meta {
                train_secs: 0.0,
                commitments: Vec::new(),
                ..meta.clone()
            };
            let path = states_dir.join(commit::state_file_name(&hash));
            checkpoint::save_as(&path, &built.params(), opt, &state_meta)?;
        }
        meta.commitments.push(hash);
        commit_secs.set(commit_secs.get() + began.elapsed().as_secs_f64());
        Ok(())
    };
    if start == 0 && meta.commitments.is_empty() {
        commit(&opt, &mut meta)?;
    }

    opts.report(start, total, None);
    for step in start..total {
        if opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            save(&opt, &mut meta)?;
            return Err(Error::Cancelled(step));
        }
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            save(&opt, &mut meta)?;
            return Err(Error::DeadlineReached(step));
        }
        if before + started.elapsed().as_secs_f64() > spec.limits.max_wall_time_s as f64 {
            return Err(Error::LimitExceeded(format!(
                "limits.max_wall_time_s ({} s) reached at step {step}",
                spec.limits.max_wall_time_s
            )));
        }
        let evaluated = match train_step(
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
        ) {
            Ok(e) => e,
            // A shard that did not arrive (the network): the state is the step's start, kept
            // so the retry resumes here rather than at the last checkpoint.
            Err(e) if e.fault() == crate::Fault::Transient && opt.step == step => {
                if let Err(s) = save(&opt, &mut meta) {
                    tracing::warn!(error = %s, "no checkpoint after a failed step");
                }
                return Err(e);
            }
            // Stopped while a shard was arriving: as a stop between steps.
            Err(Error::Cancelled(_)) if opt.step == step => {
                save(&opt, &mut meta)?;
                return Err(Error::Cancelled(step));
            }
            Err(e) => return Err(e),
        };
        let done = step + 1;
        opts.report(
            done,
            total,
            evaluated.then(|| meta.records.last()).flatten(),
        );
        if done.is_multiple_of(commit_every) || done == total {
            meta.step = done;
            commit(&opt, &mut meta)?;
        }
        if t.checkpoint_every > 0 && done % t.checkpoint_every == 0 && done < total {
            save(&opt, &mut meta)?;
        }
    }
    let commitments = commit::Commitments {
        every: commit_every,
        state_hashes: meta.commitments.clone(),
        last: commit::LastState {
            loss_sum_bits: meta.loss_sum.to_bits(),
            loss_n: meta.loss_n,
            optimizer_sha256: hex::encode(commit::optimizer_digest(&opt.state())?),
        },
    };
    let manifest = manifest::write(
        spec,
        spec_bytes,
        data,
        &built.varmap,
        &meta.records,
        device,
        total,
        commitments,
        &opts.out_dir,
    )?;
    let result_hash = manifest::result_hash(&opts.out_dir)?;
    // The result on disk before the checkpoint goes: a crash in between must leave one of them.
    for name in manifest
        .files()
        .into_iter()
        .chain([manifest::MANIFEST_FILE, "."])
    {
        let path = opts.out_dir.join(name);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(Error::io(&path))?;
    }
    let _ = std::fs::remove_dir_all(&ckpt_dir);
    Ok(Outcome {
        manifest,
        result_hash,
        commit_secs: commit_secs.get(),
        wall_time_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod update_tests {
    //! [`update`]'s three settings against what they promise: micro-batches give the whole
    //! batch's update, clipping bounds it, the schedule scales it.
    use rand::Rng;

    use super::*;

    /// Crops and flips: without them a sample is itself; a flip mirrors each row; a crop
    /// shifts the image inside zero padding; the same (seed, step) draws the same batch and
    /// another step draws another.
    #[test]
    fn augmentation_crops_and_flips_as_drawn() {
        use crate::spec::AugmentSpec;
        let (c, h, w) = (2usize, 5usize, 6usize);
        let img: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 1.0).collect();
        let features: Vec<f32> = img.iter().chain(&img).copied().collect();
        let aug = |crop_padding, horizontal_flip| Augment {
            spec: AugmentSpec {
                crop_padding,
                horizontal_flip,
            },
            shape: [c, h, w],
            features: features.clone(),
        };
        let rows = |a: &Augment, step| {
            a.batch(&[0, 1], 9, step, &Device::Cpu)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        };
        assert_eq!(rows(&aug(0, false), 0), vec![img.clone(), img.clone()]);
        let mirrored: Vec<f32> = (0..c * h)
            .flat_map(|r| {
                img[r * w..(r + 1) * w]
                    .iter()
                    .rev()
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut flips = 0;
        for step in 0..20 {
            for s in rows(&aug(0, true), step) {
                assert!(s == img || s == mirrored);
                flips += usize::from(s == mirrored);
            }
        }
        assert!((10..=30).contains(&flips), "{flips} flips in 40");
        // A crop: every value is the source's at one shift (dy, dx), or padding.
        let cropped = aug(2, false);
        let mut shifts = std::collections::BTreeSet::new();
        for step in 0..10 {
            for s in rows(&cropped, step) {
                let shift = (-2isize..=2)
                    .flat_map(|dy| (-2isize..=2).map(move |dx| (dy, dx)))
                    .find(|&(dy, dx)| {
                        (0..c * h * w).all(|i| {
                            let (ch, y, x) = (i / (h * w), (i / w) % h, i % w);
                            let (sy, sx) = (y as isize + dy, x as isize + dx);
                            let inside =
                                (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                            let want = if inside {
                                img[(ch * h + sy as usize) * w + sx as usize]
                            } else {
                                0.0
                            };
                            s[i] == want
                        })
                    })
                    .expect("a shifted copy");
                shifts.insert(shift);
            }
        }
        assert!(shifts.len() > 5, "{shifts:?}");
        assert_eq!(rows(&cropped, 3), rows(&cropped, 3));
        assert_ne!(rows(&cropped, 3), rows(&cropped, 4));
        // Both, as the shipped job draws them: every sample is a shifted copy of the image or
        // of its mirror, and some are each.
        let both = aug(2, true);
        let (mut plain, mut mirror) = (0, 0);
        for step in 0..20 {
            for s in rows(&both, step) {
                let of = |src: &[f32]| {
                    (-2isize..=2).any(|dy| {
                        (-2isize..=2).any(|dx| {
                            (0..c * h * w).all(|i| {
                                let (ch, y, x) = (i / (h * w), (i / w) % h, i % w);
                                let (sy, sx) = (y as isize + dy, x as isize + dx);
                                let inside =
                                    (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                                s[i] == if inside {
                                    src[(ch * h + sy as usize) * w + sx as usize]
                                } else {
                                    0.0
                                }
                            })
                        })
                    })
                };
                let (p, m) = (of(&img), of(&mirrored));
                assert!(p || m, "neither a crop of the image nor of its mirror");
                plain += usize::from(p);
                mirror += usize::from(m);
            }
        }
        assert!(plain > 5 && mirror > 5, "{plain} plain, {mirror} mirrored");
    }

    fn data() -> Split {
        let mut r = crate::rng::stream(3, "test", 0);
        let mut table = |rows: usize| Table {
            features: (0..rows * 16).map(|_| r.random::<f32>() - 0.5).collect(),
            labels: (0..rows as u32).map(|i| i % 4).collect(),
            dim: 16,
        };
        let (train, eval) = (table(64), table(16));
        Split::Table {
            shards: None,
            train,
            eval,
            classes: 4,
        }
    }

    fn spec(edit: impl FnOnce(&mut serde_json::Value)) -> JobSpec {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../jobs/digits-mlp.json")).unwrap();
        v["model"] = serde_json::json!({"kind": "mlp", "hidden": [32]});
        v["training"]["batch_size"] = 64.into();
        v["training"]["optimizer"] = serde_json::json!({"kind": "sgd", "lr": 0.1});
        edit(&mut v);
        let spec: JobSpec = serde_json::from_value(v).unwrap();
        spec.validate().unwrap();
        spec
    }

    /// The parameters after one update at `step` of `total` (from the seed's initial state),
    /// with the parameters before.
    fn one_update(spec: &JobSpec, step: u64, total: u64) -> (Vec<f32>, Vec<f32>) {
        one_update_in(spec, step, total, None)
    }

    /// [`one_update`] with the batch split in `parts` (else as the spec says).
    fn one_update_in(
        spec: &JobSpec,
        step: u64,
        total: u64,
        parts: Option<Parts>,
    ) -> (Vec<f32>, Vec<f32>) {
        let (data, device) = (data(), Device::Cpu);
        let mut built = Built::new(spec, &data, &device).unwrap();
        if let Some(p) = parts {
            built.parts = p;
        }
        let flat = |b: &Built| -> Vec<f32> {
            b.params()
                .values()
                .flat_map(|v| {
                    v.as_tensor()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
                .collect()
        };
        let before = flat(&built);
        let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params()).unwrap();
        let mut batches = Batches::new(spec, &data, &device).unwrap();
        let (x, y) = batches.batch(spec.training.seed, 0, 64, &device).unwrap();
        let factor = crate::schedule::lr_factor(spec.training.schedule.as_ref(), step, total);
        let lv = update(spec, &built, &mut opt, &x, &y, factor).unwrap();
        assert!(lv.is_finite());
        (before, flat(&built))
    }

    fn delta((before, after): &(Vec<f32>, Vec<f32>)) -> Vec<f64> {
        before
            .iter()
            .zip(after)
            .map(|(b, a)| f64::from(*a) - f64::from(*b))
            .collect()
    }

    fn norm(v: &[f64]) -> f64 {
        v.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    /// Parts side by side: the same bits on one thread, two and three (a pool of each), and
    /// as the same parts one after another; the whole batch's update up to rounding.
    #[test]
    fn parts_side_by_side_give_the_same_bits_on_any_thread_count() {
        // Wide enough (35 MFLOP a step) that the CPU splits it in four.
        let spec = spec(|v| v["model"]["hidden"] = serde_json::json!([512, 512]));
        let split = Parts::on_cpu(&spec, &data());
        assert_eq!(
            split,
            Parts {
                count: 4,
                side_by_side: true
            }
        );
        let on = |threads: usize, parts: Parts| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| one_update_in(&spec, 0, 10, Some(parts)))
        };
        let one = on(1, split);
        assert_ne!(one.0, one.1, "no update");
        for threads in [2, 3] {
            assert!(on(threads, split) == one, "{threads} threads");
        }
        let in_turn = Parts {
            side_by_side: false,
            ..split
        };
        assert!(on(2, in_turn) == one, "parts one after another");
        // Five parts over 64 rows (13 + 13 + 13 + 13 + 12), side by side on two threads: two
        // waves and a last part alone, summed in order all the same.
        let five = Parts {
            count: 5,
            side_by_side: true,
        };
        assert!(on(2, five) == on(1, five), "uneven parts in waves");
        let whole = delta(&on(2, Parts::WHOLE));
        let worst = whole
            .iter()
            .zip(&delta(&one))
            .map(|(w, a)| (w - a).abs())
            .fold(0f64, f64::max);
        assert!(worst < 1e-7 * norm(&whole).max(1.0), "{worst}");
    }

    #[test]
    fn micro_batches_give_the_whole_batchs_update() {
        let whole = delta(&one_update(&spec(|_| {}), 0, 10));
        // 64 rows in 4, and in 3 uneven parts (22 + 22 + 20).
        for parts in [4, 3] {
            let split = spec(|v| v["training"]["grad_accumulation"] = parts.into());
            let a = delta(&one_update(&split, 0, 10));
            let worst = whole
                .iter()
                .zip(&a)
                .map(|(w, a)| (w - a).abs())
                .fold(0f64, f64::max);
            assert!(worst < 1e-7 * norm(&whole).max(1.0), "{parts}: {worst}");
            assert!(norm(&a) > 0.0);
            // And the same to the bit on a second run.
            assert_eq!(a, delta(&one_update(&split, 0, 10)));
        }
    }

    /// Gradients carry no graph (a moment built from one would keep every step's graph
    /// alive): for both transformer layouts, whose `Conv1D` weights' gradients came back
    /// tracked.
    #[test]
    fn gradients_carry_no_graph() {
        for kind in ["char_transformer", "gpt2"] {
            let mut v: serde_json::Value =
                serde_json::from_str(include_str!("../../../jobs/kjv-charlm.json")).unwrap();
            v["model"] = serde_json::json!({"kind": kind, "layers": 1, "d_model": 8, "heads": 2, "context": 4});
            let spec: JobSpec = serde_json::from_value(v).unwrap();
            let data = Split::Text {
                shards: None,
                train: (0..64).map(|i| i % 5).collect(),
                eval: (0..64).map(|i| i % 5).collect(),
                vocab: crate::data::Vocab::Ids(5),
            };
            let built = Built::new(&spec, &data, &Device::Cpu).unwrap();
            let opt = Optimizer::new(spec.training.optimizer.clone(), built.params()).unwrap();
            let mut batches = Batches::new(&spec, &data, &Device::Cpu).unwrap();
            let (x, y) = batches.batch(1, 0, 2, &Device::Cpu).unwrap();
            let l = loss(&built.model.forward(&x).unwrap(), &y).unwrap();
            let grads = opt.grads(&l).unwrap();
            assert_eq!(grads.len(), built.params().len(), "{kind}");
            for (name, g) in grads {
                assert!(!g.track_op(), "{kind}: {name}");
            }
        }
    }

    #[test]
    fn clipping_bounds_the_update_and_leaves_small_gradients_alone() {
        let free = delta(&one_update(&spec(|_| {}), 0, 10));
        // SGD: the update is lr × the gradient, so its norm is lr × the clipped norm.
        let clipped = delta(&one_update(
            &spec(|v| v["training"]["clip_grad_norm"] = 1e-3.into()),
            0,
            10,
        ));
        assert!(norm(&free) > 0.1 * 1e-3 * 10.0, "{}", norm(&free));
        assert!(
            (norm(&clipped) - 0.1 * 1e-3).abs() < 1e-7,
            "{}",
            norm(&clipped)
        );
        // Same direction.
        let dot: f64 = free.iter().zip(&clipped).map(|(a, b)| a * b).sum();
        assert!((dot / (norm(&free) * norm(&clipped)) - 1.0).abs() < 1e-4);
        // A bound above the norm changes nothing, to the bit.
        let loose = spec(|v| v["training"]["clip_grad_norm"] = 1e9.into());
        assert_eq!(one_update(&loose, 0, 10), one_update(&spec(|_| {}), 0, 10));
    }

    #[test]
    fn the_schedule_scales_each_update() {
        let full = delta(&one_update(&spec(|_| {}), 0, 10));
        let warm = spec(|v| {
            v["training"]["schedule"] =
                serde_json::json!({"warmup_steps": 4, "decay": "cosine", "min_lr_ratio": 0.0});
        });
        // Step 0 of a 4-step warmup: a quarter of the rate. The last step of the cosine: 0.
        let quarter = delta(&one_update(&warm, 0, 10));
        let ratio = norm(&quarter) / norm(&full);
        assert!((ratio - 0.25).abs() < 1e-6, "{ratio}");
        assert!(norm(&delta(&one_update(&warm, 9, 10))) < 1e-12);
    }
}
