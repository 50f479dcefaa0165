//! How a training step splits its batch.
//!
//! On the CPU, a small model's step is hundreds of ops each too small to share between
//! threads at a profit: handing an op to the pool and waiting for it costs about what the op
//! computes, so a second thread bought almost nothing (measured in `BENCHMARKS.md`). So the
//! step splits its batch into a few parts and computes their gradients side by side, a part to
//! each thread (a part's larger ops — matrix products, the fused kernels — still lend their
//! spare pieces to idle threads); the gradients are then summed in the parts' order. The parts depend only on the spec and the device class — never on the
//! thread count — so a run gives the same bits on one thread as on sixteen.
//!
//! A spec's `grad_accumulation` is a different thing: micro-batches computed one after
//! another, to hold the activations of one only. Those are never run side by side.

use candle_core::Device;

use crate::{data::Split, spec::JobSpec};

/// Most parts a CPU step splits its batch into: enough to keep four threads busy with parts
/// (more threads still share each part's larger ops), few enough that each part's matrix
/// products stay large enough to run near the machine's peak.
pub const MAX_PARTS: usize = 4;

/// A part computes at least this many forward FLOPs: below it, the per-op cost of a part
/// (each op's fixed overhead paid once more per part) outweighs a second thread. The digit MLP
/// (1.2 MFLOP a step) stays whole; the digit CNN (40 MFLOP) is split in four.
pub const MIN_PART_FLOPS: f64 = 4e6;

/// Models with more parameters than this are never split: their matrix products are large
/// enough to share between threads op by op, and every part side by side holds a full copy of
/// the gradients (4 bytes a parameter each).
pub const MAX_SPLIT_PARAMS: u64 = 16 << 20;

/// How one step's batch is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// Parts of the batch (1: the batch whole), each weighted by its share of the rows.
    pub count: usize,
    /// Computed side by side on the CPU's threads (else one after another).
    pub side_by_side: bool,
}

impl Parts {
    pub const WHOLE: Parts = Parts {
        count: 1,
        side_by_side: false,
    };

    /// The split of `spec`'s steps on `device`: the spec's micro-batches when it names them;
    /// else on the CPU [`Self::on_cpu`]; else (CUDA, Metal: ops big enough for the device)
    /// the batch whole.
    pub fn of(spec: &JobSpec, data: &Split, device: &Device) -> Self {
        Self::on(spec, data, device.is_cpu())
    }

    /// [`Self::of`] on the CPU (`cpu`) or on an accelerator.
    pub(crate) fn on(spec: &JobSpec, data: &Split, cpu: bool) -> Self {
        match spec.training.grad_accumulation {
            Some(n) if n > 1 => Parts {
                count: n as usize,
                side_by_side: false,
            },
            _ if cpu => Self::on_cpu(spec, data),
            _ => Self::WHOLE,
        }
    }

    /// The CPU's split when the spec names no micro-batches: as many parts (at most
    /// [`MAX_PARTS`], at most one per row) as carry [`MIN_PART_FLOPS`] each, for models of at
    /// most [`MAX_SPLIT_PARAMS`] parameters.
    pub fn on_cpu(spec: &JobSpec, data: &Split) -> Self {
        if crate::memory::params(&spec.model, data) > MAX_SPLIT_PARAMS {
            return Self::WHOLE;
        }
        let rows = spec.training.batch_size.max(1);
        // A row of a language model's batch is a window of `context` tokens.
        let per_row = spec.model.transformer().map_or(1, |t| t.context.max(1));
        let flops = crate::models::forward_flops(&spec.model, data) * rows as f64 * per_row as f64;
        let count = ((flops / MIN_PART_FLOPS) as usize).clamp(1, MAX_PARTS.min(rows));
        Parts {
            count,
            side_by_side: count > 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Table, Vocab};

    fn job(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> JobSpec {
        let path = format!("{}/../../jobs/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    /// A table of `dim` features and 10 classes (the digits' 8 × 8, CIFAR's 3 × 32 × 32); its
    /// rows do not matter here.
    fn table(dim: usize) -> Split {
        let t = || Table {
            features: vec![0.0; dim],
            labels: vec![0],
            dim,
        };
        Split::Table {
            train: t(),
            eval: t(),
            classes: 10,
            shards: None,
        }
    }

    fn digits() -> Split {
        table(64)
    }

    fn cifar() -> Split {
        table(3 * 32 * 32)
    }

    fn text(vocab: usize) -> Split {
        Split::Text {
            train: vec![0; 2],
            eval: vec![0; 2],
            vocab: Vocab::Ids(vocab),
            shards: None,
        }
    }

    const SPLIT_IN_4: Parts = Parts {
        count: 4,
        side_by_side: true,
    };

    #[test]
    fn the_shipped_models_split_as_their_work_says() {
        let cpu = |spec: &JobSpec, data: &Split| Parts::on(spec, data, true);
        // The MLP's step (1.2 MFLOP) is too small to split; the others are split in four.
        assert_eq!(cpu(&job("digits-mlp", |_| {}), &digits()), Parts::WHOLE);
        assert_eq!(cpu(&job("digits-cnn", |_| {}), &digits()), SPLIT_IN_4);
        assert_eq!(cpu(&job("shapes-resnet", |_| {}), &cifar()), SPLIT_IN_4);
        assert_eq!(cpu(&job("kjv-gpt2", |_| {}), &text(2048)), SPLIT_IN_4);
        // GPT-2 small (124M parameters): whole, its products shared op by op.
        let small = job("kjv-gpt2", |v| {
            let m = &mut v["model"];
            (m["layers"], m["d_model"], m["heads"]) = (12.into(), 768.into(), 12.into());
        });
        assert!(crate::memory::params(&small.model, &text(50_257)) > MAX_SPLIT_PARAMS);
        assert_eq!(cpu(&small, &text(50_257)), Parts::WHOLE);
        // Never more parts than rows.
        let two_rows = job("kjv-gpt2", |v| v["training"]["batch_size"] = 2.into());
        assert_eq!(cpu(&two_rows, &text(2048)).count, 2);
        // Nor parts of under MIN_PART_FLOPS: a CNN batch of 8 digits (5 MFLOP) stays whole.
        let eight = job("digits-cnn", |v| v["training"]["batch_size"] = 8.into());
        assert_eq!(cpu(&eight, &digits()), Parts::WHOLE);
        // The spec's micro-batches, on any device, one after another; another device takes
        // the batch whole.
        let micro = job("digits-cnn", |v| {
            v["training"]["grad_accumulation"] = 8.into()
        });
        for on_cpu in [true, false] {
            assert_eq!(
                Parts::on(&micro, &digits(), on_cpu),
                Parts {
                    count: 8,
                    side_by_side: false
                }
            );
        }
        assert_eq!(
            Parts::on(&job("digits-cnn", |_| {}), &digits(), false),
            Parts::WHOLE
        );
    }
}
