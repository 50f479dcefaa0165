//! A few steps of a job's training, run before a worker claims it: the model is built on the
//! real (parsed) dataset and trained for a handful of steps on the worker's device, then one
//! evaluation chunk is run and one checkpoint written (into a scratch directory, removed).
//! Everything that would fail for the poster's reasons once the job is held — a model that
//! does not fit its data, a loss that is not finite from the start — fails here instead, and
//! the measured times (steps, evaluation, checkpoint) give an estimate of the whole run on
//! this machine.

use std::time::Instant;

use candle_core::{Device, Module};

use crate::{
    data::Split,
    optim::Optimizer,
    spec::JobSpec,
    trainer::{Batches, Built},
    Error, Result,
};

/// What the steps showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rehearsal {
    /// Steps run.
    pub steps: u64,
    /// Seconds of the first step (allocation and warm-up included).
    pub first_step_secs: f64,
    /// Seconds per step once warm (the mean of the steps after the first, or the first).
    pub secs_per_step: f64,
    /// Steps the whole job runs.
    pub total_steps: u64,
    /// Seconds of one evaluation chunk (forward only) and the chunks one evaluation runs.
    pub eval_chunk_secs: f64,
    pub eval_chunks: u64,
    /// Seconds to write one checkpoint, and its size in bytes.
    pub checkpoint_secs: f64,
    pub checkpoint_bytes: u64,
}

impl Rehearsal {
    /// Seconds the whole training should take here: every step at the measured pace, every
    /// evaluation (chunks at the measured pace) and every checkpoint and committed state (at
    /// the measured write time), as the schedule of the spec makes them.
    pub fn estimate_secs(&self, spec: &JobSpec, data: &Split) -> f64 {
        let t = &spec.training;
        let evals = match data {
            Split::Table { .. } => {
                let per_epoch = data.train_rows().div_ceil(t.batch_size.max(1)).max(1) as u64;
                self.total_steps.div_ceil(per_epoch)
            }
            Split::Text { .. } => self.total_steps.div_ceil(t.eval_every.max(1)),
        };
        // Each committed state is written like a checkpoint (and hashed, which costs less).
        let committed = spec
            .commit_every(self.total_steps)
            .map_or(0, |every| self.total_steps.div_ceil(every));
        let checkpoints = match t.checkpoint_every {
            0 => 0,
            every => self.total_steps / every,
        } + committed;
        self.total_steps as f64 * self.secs_per_step
            + evals as f64 * self.eval_chunks as f64 * self.eval_chunk_secs
            + checkpoints as f64 * self.checkpoint_secs
            + self.first_step_secs
    }
}

impl Rehearsal {
    /// Bytes the run leaves on disk at its peak: one state file per committed state (each
    /// the size of a checkpoint), the checkpoint and its temporary copy, and the weights.
    pub fn disk_bytes(&self, spec: &JobSpec) -> u64 {
        let states = spec
            .commit_every(self.total_steps)
            .map_or(0, |every| self.total_steps.div_ceil(every) + 1);
        self.checkpoint_bytes
            .saturating_mul(states.saturating_add(3))
    }
}

/// How many steps a rehearsal runs: at least `min`, then more while they fit in `budget`, up
/// to `max` (small models are rehearsed for more steps, which catches more of a spec that
/// diverges early, at no real cost).
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    pub min: u64,
    pub max: u64,
    pub budget: std::time::Duration,
}

/// Builds `spec`'s model on `data`, trains it for `steps` on `device`, runs one evaluation
/// chunk and writes one checkpoint into `scratch` (a directory removed after).
pub fn rehearse(
    spec: &JobSpec,
    data: &Split,
    device: &Device,
    steps: Steps,
    scratch: &std::path::Path,
) -> Result<Rehearsal> {
    let built = Built::new(spec, data, device)?;
    let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params())?;
    let mut batches = Batches::new(spec, data, device)?;
    let train_rows = data.train_rows();
    let total_steps = spec.total_steps(train_rows);
    // A run that could not make its commitments fails at its first step: refused here, before
    // any claim.
    spec.commit_every(total_steps)?;
    let t = &spec.training;
    let most = steps.max.max(steps.min).min(total_steps).max(1);
    let least = steps.min.min(most).max(1);
    batches.end_at_step(most, t.batch_size);
    let began = Instant::now();
    let mut times = Vec::with_capacity(most as usize);
    for step in 0..most {
        if step >= least && began.elapsed() >= steps.budget {
            break;
        }
        let started = Instant::now();
        let (x, y) = batches.batch(t.seed, step, t.batch_size, device)?;
        // The job's own update (micro-batches, clipping): its time and memory; at the
        // schedule's peak rate, not its warmup's, so a rate that diverges shows here and not
        // hours into the run.
        let lv = crate::trainer::update(spec, &built, &mut opt, &x, &y, 1.0)?;
        if !lv.is_finite() {
            return Err(Error::Diverged(step));
        }
        times.push(started.elapsed().as_secs_f64());
    }
    // An f16 step may take up to three passes on data the rehearsal did not see (the loss
    // scale backing off): estimated at its worst, every step at three.
    let passes = f64::from(crate::precision::worst_case_passes(
        crate::precision::compute_dtype(t, device),
    ));
    for s in &mut times {
        *s *= passes;
    }
    let run = times.len() as u64;
    let first_step_secs = times[0];
    let warm = &times[1.min(times.len() - 1)..];

    // One evaluation chunk, as `trainer::evaluate` makes them.
    let (eval_chunk_secs, eval_chunks) = {
        let started = Instant::now();
        let chunks = match data {
            Split::Table { eval, .. } => {
                let rows = eval.rows().min(EVAL_CHUNK_ROWS);
                let t = crate::data::Table {
                    features: eval.features[..rows * eval.dim].to_vec(),
                    labels: eval.labels[..rows].to_vec(),
                    dim: eval.dim,
                };
                let x = candle_core::Tensor::from_slice(&t.features, (rows, t.dim), device)?;
                built.model.forward(&x)?.sum_all()?.to_scalar::<f32>()?;
                eval.rows().div_ceil(EVAL_CHUNK_ROWS) as u64
            }
            Split::Text { .. } => {
                // A batch of sequences of the context's length stands for a chunk of windows.
                let n = EVAL_CHUNK_SEQUENCES.min(t.batch_size);
                let (x, _) = batches.batch(t.seed, 0, n, device)?;
                built.model.forward(&x)?.sum_all()?.to_scalar::<f32>()?;
                (EVAL_WINDOWS / n).max(1) as u64
            }
        };
        (started.elapsed().as_secs_f64(), chunks)
    };

    // One checkpoint, as the run writes them (weights, optimizer state, metadata).
    let (checkpoint_secs, checkpoint_bytes) = {
        let dir = scratch.join("checkpoint");
        let meta = crate::checkpoint::Meta {
            spec_sha256: String::new(),
            engine: crate::checkpoint::ENGINE.into(),
            device: crate::checkpoint::platform(device).0,
            cpu_isa: crate::checkpoint::platform(device).1,
            step: run,
            records: Vec::new(),
            loss_sum: 0.0,
            loss_n: 0,
            train_secs: 0.0,
            commitments: Vec::new(),
        };
        let started = Instant::now();
        crate::checkpoint::save(&dir, &built.params(), &opt, &meta)?;
        let secs = started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(crate::checkpoint::file(&dir)).map_or(0, |m| m.len());
        let _ = std::fs::remove_dir_all(scratch);
        (secs, bytes)
    };

    Ok(Rehearsal {
        steps: run,
        first_step_secs,
        secs_per_step: warm.iter().sum::<f64>() / warm.len() as f64,
        total_steps,
        eval_chunk_secs,
        eval_chunks,
        checkpoint_secs,
        checkpoint_bytes,
    })
}

/// Rows per evaluation chunk of a table, sequences per chunk and windows per evaluation of a
/// text: what `trainer::evaluate` uses.
const EVAL_CHUNK_ROWS: usize = 1_024;
const EVAL_CHUNK_SEQUENCES: usize = 32;
const EVAL_WINDOWS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Table;

    fn data(rows: usize) -> Split {
        let t = Table {
            features: (0..rows * 4).map(|i| (i % 7) as f32).collect(),
            labels: (0..rows as u32).map(|i| i % 3).collect(),
            dim: 4,
        };
        Split::Table {
            shards: None,
            train: t.clone(),
            eval: t,
            classes: 3,
        }
    }

    fn spec(lr: f64) -> JobSpec {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../jobs/digits-mlp.json")).unwrap();
        v["training"]["optimizer"]["lr"] = lr.into();
        v["training"]["batch_size"] = 8.into();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_few_steps_measure_the_pace() {
        let s = spec(1e-3);
        let d = data(64);
        let scratch = tempfile::tempdir().unwrap();
        let three = Steps {
            min: 3,
            max: 3,
            budget: std::time::Duration::from_secs(5),
        };
        let r = rehearse(&s, &d, &Device::Cpu, three, &scratch.path().join("r")).unwrap();
        assert_eq!(r.steps, 3);
        assert!(r.checkpoint_bytes > 0 && r.checkpoint_secs > 0.0);
        assert!(
            !scratch.path().join("r").exists(),
            "the scratch directory is removed"
        );
        assert!(r.eval_chunk_secs > 0.0 && r.eval_chunks == 1);
        assert_eq!(r.total_steps, s.total_steps(64));
        assert!(r.secs_per_step > 0.0 && r.secs_per_step.is_finite());
        let est = r.estimate_secs(&s, &d);
        assert!(est >= r.total_steps as f64 * r.secs_per_step, "{est}");
        // Every committed state is on disk by the end, besides checkpoint and weights.
        let states = r
            .total_steps
            .div_ceil(s.commit_every(r.total_steps).unwrap())
            + 1;
        assert_eq!(r.disk_bytes(&s), r.checkpoint_bytes * (states + 3));
    }

    /// Plain SGD at the largest learning rate validation allows, on large features:
    /// the weights blow up within a few steps and the loss stops being finite. Caught before
    /// any claim.
    #[test]
    fn a_diverging_spec_fails_the_rehearsal() {
        // Large enough that SGD at lr 10 overflows within five steps, small enough that lr
        // 1e-5 does not.
        const FEATURE: f32 = 1e9;

        let t = Table {
            features: (0..64 * 4).map(|i| FEATURE * (1 + i % 3) as f32).collect(),
            labels: (0..64u32).map(|i| i % 3).collect(),
            dim: 4,
        };
        let d = Split::Table {
            shards: None,
            train: t.clone(),
            eval: t,
            classes: 3,
        };
        let mut s = spec(10.0);
        s.training.optimizer = crate::spec::OptimizerSpec::Sgd {
            lr: 10.0,
            momentum: 0.0,
        };
        let scratch = tempfile::tempdir().unwrap();
        let steps = Steps {
            min: 5,
            max: 5,
            budget: std::time::Duration::ZERO,
        };
        let err = rehearse(&s, &d, &Device::Cpu, steps, scratch.path()).unwrap_err();
        assert!(matches!(err, Error::Diverged(_)), "{err}");
        // A warmup as long as the run would have rehearsed at a millionth of that rate, which
        // these data survive...
        let mut slow = s.clone();
        slow.training.optimizer = crate::spec::OptimizerSpec::Sgd {
            lr: 1e-5,
            momentum: 0.0,
        };
        rehearse(&slow, &d, &Device::Cpu, steps, scratch.path()).unwrap();
        // ... and passed: the rehearsal runs at the schedule's peak, so it is caught all the
        // same.
        s.training.steps = Some(1_000_000);
        s.training.schedule = Some(crate::spec::ScheduleSpec {
            warmup_steps: 1_000_000,
            decay: crate::spec::Decay::Cosine,
            min_lr_ratio: 0.0,
        });
        s.training.commit_every = Some(1_000);
        let err = rehearse(&s, &d, &Device::Cpu, steps, scratch.path()).unwrap_err();
        assert!(matches!(err, Error::Diverged(_)), "{err}");
    }

    /// Epochs make the step count known only with the data: a `commit_every` that would give
    /// more segments than allowed fails the rehearsal, before any claim, not the run.
    #[test]
    fn commitments_the_run_could_not_make_fail_the_rehearsal() {
        let mut s = spec(1e-3);
        s.training.epochs = Some(200);
        s.training.commit_every = Some(1);
        let scratch = tempfile::tempdir().unwrap();
        let steps = Steps {
            min: 1,
            max: 1,
            budget: std::time::Duration::ZERO,
        };
        // 64 rows in batches of 8 for 200 epochs: 1,600 segments.
        let err = rehearse(&s, &data(64), &Device::Cpu, steps, scratch.path()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSpec(e) if e[0].contains("1600 segments")),
            "{err}"
        );
    }
}
