//! A few steps of a job's training, run before a worker claims it: the model is built on the
//! real (parsed) dataset and trained for a handful of steps on the worker's device, nothing
//! written. Everything that would fail for the poster's reasons once the job is held — a model
//! that does not fit its data, a loss that is not finite from the start — fails here instead,
//! and the steps' time gives an estimate of the whole run measured on this machine.

use std::time::Instant;

use candle_core::{Device, Module};

use crate::{
    data::Split,
    optim::Optimizer,
    spec::JobSpec,
    trainer::{loss, Batches, Built},
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
}

impl Rehearsal {
    /// Seconds the whole training should take here: every step at the measured pace, plus its
    /// evaluations (each a forward pass over the held-out split, at about a third of a
    /// training step per batch).
    pub fn estimate_secs(&self, spec: &JobSpec, data: &Split) -> f64 {
        let batch = spec.training.batch_size.max(1) as f64;
        let (evals, eval_batches) = match data {
            Split::Table { train, eval, .. } => {
                let per_epoch = (train.rows() as f64 / batch).ceil().max(1.0);
                (
                    (self.total_steps as f64 / per_epoch).ceil(),
                    eval.rows() as f64 / batch,
                )
            }
            Split::Text { .. } => (
                (self.total_steps as f64 / spec.training.eval_every.max(1) as f64).ceil(),
                256.0 / batch,
            ),
        };
        let steps = self.total_steps as f64 * self.secs_per_step;
        steps + evals * eval_batches.max(1.0) * self.secs_per_step / 3.0 + self.first_step_secs
    }
}

/// Builds `spec`'s model on `data` and trains it for up to `steps` steps on `device`.
pub fn rehearse(spec: &JobSpec, data: &Split, device: &Device, steps: u64) -> Result<Rehearsal> {
    let built = Built::new(spec, data, device)?;
    let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params())?;
    let mut batches = Batches::new(spec, data, device)?;
    let train_rows = match data {
        Split::Table { train, .. } => train.rows(),
        Split::Text { .. } => 0,
    };
    let total_steps = spec.total_steps(train_rows);
    let t = &spec.training;
    let run = steps.min(total_steps).max(1);
    let mut times = Vec::with_capacity(run as usize);
    for step in 0..run {
        let started = Instant::now();
        let (x, y) = batches.batch(t.seed, step, t.batch_size, device)?;
        let l = loss(&built.model.forward(&x)?, &y)?;
        opt.backward_step(&l)?;
        let lv = l.to_scalar::<f32>()?;
        if !lv.is_finite() {
            return Err(Error::Diverged(step));
        }
        times.push(started.elapsed().as_secs_f64());
    }
    let first_step_secs = times[0];
    let warm = &times[1.min(times.len() - 1)..];
    Ok(Rehearsal {
        steps: run,
        first_step_secs,
        secs_per_step: warm.iter().sum::<f64>() / warm.len() as f64,
        total_steps,
    })
}

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
        let r = rehearse(&s, &d, &Device::Cpu, 3).unwrap();
        assert_eq!(r.steps, 3);
        assert_eq!(r.total_steps, s.total_steps(64));
        assert!(r.secs_per_step > 0.0 && r.secs_per_step.is_finite());
        let est = r.estimate_secs(&s, &d);
        assert!(est >= r.total_steps as f64 * r.secs_per_step, "{est}");
    }

    /// Plain SGD at the largest learning rate validation allows, on large (finite) features:
    /// the weights blow up within a few steps and the loss stops being finite. Caught before
    /// any claim.
    #[test]
    fn a_diverging_spec_fails_the_rehearsal() {
        let t = Table {
            features: (0..64 * 4).map(|i| 1e15 * (1 + i % 3) as f32).collect(),
            labels: (0..64u32).map(|i| i % 3).collect(),
            dim: 4,
        };
        let d = Split::Table {
            train: t.clone(),
            eval: t,
            classes: 3,
        };
        let mut s = spec(10.0);
        s.training.optimizer = crate::spec::OptimizerSpec::Sgd {
            lr: 10.0,
            momentum: 0.0,
        };
        let err = rehearse(&s, &d, &Device::Cpu, 5).unwrap_err();
        assert!(matches!(err, Error::Diverged(_)), "{err}");
    }
}
