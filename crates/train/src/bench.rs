//! Training-throughput benchmark of the zoo on the shipped data, and the machine's matmul
//! ceiling, so each model can be reported as a share of peak. `scripts/bench_torch.py` runs
//! the same architectures, optimizer and batch sizes in PyTorch for comparison.

use std::{path::Path, time::Instant};

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::{
    data::{self, Split},
    optim::Optimizer,
    spec::JobSpec,
    trainer::Built,
    Result,
};

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub model: String,
    /// Samples per step (tokens for the language model).
    pub batch: usize,
    /// Timed steps, over all rounds.
    pub steps: usize,
    /// Median round's milliseconds per step.
    pub step_ms: f64,
    /// Samples (or tokens) per second, in the median round.
    pub throughput: f64,
    pub unit: &'static str,
    /// What the steps computed in (`f32`, or a half type: [`crate::precision`]).
    pub precision: &'static str,
    /// Training FLOPs (≈ 3 × forward) per sample or token.
    pub flops_per_item: f64,
    pub gflops: f64,
}

/// f32 matmul GFLOP/s on square `n`×`n` matrices (best of a few runs).
pub fn matmul_gflops(device: &Device, n: usize) -> Result<f64> {
    matmul_gflops_in(device, n, candle_core::DType::F32)
}

/// [`matmul_gflops`] in `dtype` (a GPU's half-precision ceiling is its tensor cores').
pub fn matmul_gflops_in(device: &Device, n: usize, dtype: candle_core::DType) -> Result<f64> {
    let a = Tensor::ones((n, n), dtype, device)?;
    let b = Tensor::ones((n, n), dtype, device)?;
    let run = || -> Result<()> {
        let s = a.matmul(&b)?.sum_all()?.to_dtype(candle_core::DType::F32)?;
        s.to_scalar::<f32>()?;
        Ok(())
    };
    run()?;
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        run()?;
        best = best.max(2.0 * (n as f64).powi(3) / t.elapsed().as_secs_f64() / 1e9);
    }
    Ok(best)
}

/// How a model's training step is timed: `rounds` rounds of about `round_secs` each, after a
/// few warm-up steps; the median round is reported, so a burst of load from elsewhere on the
/// machine moves the result less than it would move a single long timing.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: usize,
    pub rounds: usize,
    pub round_secs: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            warmup: 3,
            rounds: 7,
            round_secs: 0.4,
        }
    }
}

/// Seconds per call of `step`: the median of `t.rounds` rounds, each as many calls as fit in
/// `t.round_secs` by the warm-up's estimate. Returns (seconds per step, steps timed).
fn median_step_secs(t: Timing, mut step: impl FnMut() -> Result<()>) -> Result<(f64, usize)> {
    let start = Instant::now();
    for _ in 0..t.warmup.max(1) {
        step()?;
    }
    let estimate = start.elapsed().as_secs_f64() / t.warmup.max(1) as f64;
    let per_round = ((t.round_secs / estimate.max(1e-9)).ceil() as usize).max(1);
    let mut rounds = Vec::with_capacity(t.rounds.max(1));
    for _ in 0..t.rounds.max(1) {
        let start = Instant::now();
        for _ in 0..per_round {
            step()?;
        }
        rounds.push(start.elapsed().as_secs_f64() / per_round as f64);
    }
    rounds.sort_by(f64::total_cmp);
    Ok((rounds[rounds.len() / 2], per_round * rounds.len()))
}

/// Times training steps of the spec's model on its own data, computing in `precision` when
/// given (else as the spec says; the CPU always in f32).
pub fn bench_spec(
    spec_path: &Path,
    device: &Device,
    timing: Timing,
    precision: Option<crate::precision::Choice>,
) -> Result<BenchRow> {
    let bytes = std::fs::read(spec_path).map_err(crate::Error::io(spec_path))?;
    let mut spec = JobSpec::from_json(&bytes)?;
    if let Some(p) = precision {
        p.apply(&mut spec.training);
    }
    let base = spec_path.parent().unwrap_or(Path::new("."));
    let split = data::load(&mut spec, base, None)?;
    let built = Built::new(&spec, &split, device)?;
    let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params())?;
    let bs = spec.training.batch_size;
    let ctx = spec.model.transformer().map_or(0, |t| t.context);
    let (x, y, items) = sample_batch(&split, bs, ctx, device)?;
    let dtype = crate::precision::compute_dtype(&spec.training, device);
    let step = || -> Result<()> {
        crate::trainer::update(&spec, &built, &mut opt, &x, &y, 1.0)?;
        Ok(())
    };
    let (secs, steps) = median_step_secs(timing, step)?;
    let throughput = items as f64 / secs;
    let flops_per_item = 3.0 * crate::models::forward_flops(&spec.model, &split);
    let name = spec_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    Ok(BenchRow {
        model: name,
        batch: items,
        steps,
        step_ms: secs * 1e3,
        throughput,
        unit: if split_is_text(&split) {
            "tokens/s"
        } else {
            "samples/s"
        },
        precision: crate::precision::dtype_name(dtype),
        flops_per_item,
        gflops: throughput * flops_per_item / 1e9,
    })
}

fn split_is_text(s: &Split) -> bool {
    matches!(s, Split::Text { .. })
}

/// One fixed batch (the first rows / windows): throughput does not depend on which.
fn sample_batch(
    split: &Split,
    bs: usize,
    ctx: usize,
    device: &Device,
) -> Result<(Tensor, Tensor, usize)> {
    if let Some(set) = split.shards() {
        use crate::data::shards::{Batch, Stream};
        // The stream's first batch (its first shards fetched as training would).
        let mut stream = Stream::new(set.clone(), 0).ending_at(bs as u64);
        return Ok(match stream.take(0, bs as u64)? {
            Batch::Tokens { x, y } => (
                Tensor::from_vec(x, (bs, ctx), device)?,
                Tensor::from_vec(y, (bs, ctx), device)?,
                bs * ctx,
            ),
            Batch::Table(t) => (
                Tensor::from_slice(&t.features, (t.rows(), t.dim), device)?,
                Tensor::from_slice(&t.labels, t.rows(), device)?,
                t.rows(),
            ),
        });
    }
    Ok(match split {
        Split::Text { train, .. } if train.len() <= bs * ctx => {
            return Err(crate::Error::Format(format!(
                "{} ids are too few for a batch of {bs} windows of {ctx}",
                train.len()
            )))
        }
        Split::Table { train, .. } => {
            let n = bs.min(train.rows());
            let t = train.select(&(0..n as u32).collect::<Vec<_>>());
            (
                Tensor::from_slice(&t.features, (n, t.dim), device)?,
                Tensor::from_slice(&t.labels, n, device)?,
                n,
            )
        }
        Split::Text { train, .. } => {
            let x: Vec<u32> = (0..bs)
                .flat_map(|b| train[b * ctx..(b + 1) * ctx].to_vec())
                .collect();
            let y: Vec<u32> = (0..bs)
                .flat_map(|b| train[b * ctx + 1..(b + 1) * ctx + 1].to_vec())
                .collect();
            (
                Tensor::from_vec(x, (bs, ctx), device)?,
                Tensor::from_vec(y, (bs, ctx), device)?,
                bs * ctx,
            )
        }
    })
}
