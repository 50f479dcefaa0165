//! How much memory a job takes, worked out before anything is allocated: a worker compares
//! these figures with its device's memory before it claims a job, so a spec that would run it
//! out of memory (and get it killed, again and again, with the job held) is refused instead.
//!
//! Upper bounds on purpose: a job wrongly refused costs less than one claimed and then lost.
//! Sizes are counted in `u128` and saturate, so no spec can make the arithmetic overflow.

use crate::{
    data::Split,
    spec::{DatasetFormat, JobSpec, ModelSpec, OptimizerSpec},
};

/// Bytes per f32.
const F32: u128 = 4;
/// Bytes of fixed overhead: the runtime, the allocator's slack, small buffers.
pub const BASELINE_BYTES: u64 = 256 << 20;

/// What training a spec on a parsed dataset needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Trainable parameters.
    pub params: u64,
    /// Peak bytes while training: weights, gradients, optimizer state and a checkpoint's copy,
    /// the largest step's activations (forward and backward), the dataset as the loop holds it,
    /// and [`BASELINE_BYTES`].
    pub bytes: u64,
}

fn sat(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Bytes that parsing `dataset_bytes` of `format` may take at its peak (the raw bytes
/// included), before the parse: text keeps a `char` and a token id per byte, a `|u1` array
/// becomes `f32`s, a CSV cell of two bytes becomes a four-byte value plus the cell's slice.
pub fn parse_bytes(format: &DatasetFormat, dataset_bytes: u64) -> u64 {
    let n = u128::from(dataset_bytes);
    let factor: u128 = match format {
        DatasetFormat::Text => 13,
        // The BPE trainer's words, pairs and their positions, and the encoder's offsets for a
        // piece: measured 115 bytes a byte at its peak (8 MB of distinct CJK words).
        DatasetFormat::BpeText { .. } => 150,
        // The bytes, the ids as `u32` (twice a `u16` file's size) and the two splits' copies.
        DatasetFormat::Tokens { .. } => 5,
        // A line's cells are sliced (16 bytes a cell, a cell at least two bytes) before
        // they become values.
        DatasetFormat::Csv { .. } => 24,
        DatasetFormat::Npy { .. } => 9,
        // A byte a value: the bytes (alive until the split), the features as f32 and the
        // train and eval copies made from them.
        DatasetFormat::Cifar { .. } => 9,
        DatasetFormat::Safetensors { .. } => 13,
        // Shards are parsed one at a time: the caller counts the bytes held at once.
        DatasetFormat::Shards { shard_format, .. } => {
            return parse_bytes(shard_format, dataset_bytes)
        }
    };
    sat(n
        .saturating_mul(factor)
        .saturating_add(u128::from(BASELINE_BYTES)))
}

/// Trainable parameters of the spec's model for this dataset (input width, classes and
/// vocabulary come from the data).
pub fn params(model: &ModelSpec, data: &Split) -> u64 {
    let dense = |a: u128, b: u128| a.saturating_mul(b).saturating_add(b);
    let total: u128 = match (model, data) {
        (ModelSpec::Mlp { hidden, .. }, Split::Table { train, classes, .. }) => {
            let mut widths = vec![train.dim as u128];
            widths.extend(hidden.iter().map(|h| *h as u128));
            widths.push(*classes as u128);
            widths.windows(2).map(|w| dense(w[0], w[1])).sum()
        }
        (
            ModelSpec::Cnn {
                input_shape,
                channels,
                ..
            },
            Split::Table { classes, .. },
        ) => {
            let [c, h, w] = input_shape.map(|v| v as u128);
            let mut c_in = c;
            let mut sum = 0u128;
            for &c_out in channels {
                sum = sum.saturating_add(dense(c_in.saturating_mul(9), c_out as u128));
                c_in = c_out as u128;
            }
            let flat = c_in.saturating_mul(h / 2).saturating_mul(w / 2);
            sum.saturating_add(dense(flat, *classes as u128))
        }
        (
            ModelSpec::Resnet {
                input_shape,
                widths,
                blocks,
                ..
            },
            Split::Table { classes, .. },
        ) => {
            let convs = crate::models::resnet::convs(*input_shape, widths, *blocks);
            // Each conv's kernel, and a norm's gain and bias after every 3×3 one.
            let sum = convs.iter().fold(0u128, |acc, c| {
                let kernel = c.weights();
                let norm = if c.k == 3 { 2 * c.c_out as u128 } else { 0 };
                acc.saturating_add(kernel).saturating_add(norm)
            });
            let last = widths.last().copied().unwrap_or(0) as u128;
            sum.saturating_add(dense(last, *classes as u128))
        }
        (m, Split::Text { vocab, .. }) if m.transformer().is_some() => {
            let tf = m.transformer().expect("a transformer");
            let (d, layers, context) = (tf.d_model as u128, tf.layers, tf.context);
            let v = vocab.len() as u128;
            // qkv, proj, mlp fc and proj, two layer norms.
            let block = dense(d, 3 * d)
                .saturating_add(dense(d, d))
                .saturating_add(dense(d, 4 * d))
                .saturating_add(dense(4 * d, d))
                .saturating_add(4 * d);
            (v.saturating_mul(d))
                .saturating_add((context as u128).saturating_mul(d))
                .saturating_add(block.saturating_mul(layers as u128))
                .saturating_add(2 * d)
                // The output layer: its own, or the token embedding's (GPT-2 ties them).
                .saturating_add(if tf.gpt2 { 0 } else { d.saturating_mul(v) })
        }
        // A model that does not fit the data is refused when it is built; count nothing.
        _ => 0,
    };
    sat(total)
}

/// f32 values of activations one sample (or, for text, one sequence) keeps for the backward
/// pass, times two for their gradients.
fn activations_per_sample(model: &ModelSpec, data: &Split) -> u128 {
    match (model, data) {
        (ModelSpec::Mlp { hidden, .. }, Split::Table { train, classes, .. }) => {
            let widths: u128 = hidden.iter().map(|h| *h as u128).sum::<u128>()
                + train.dim as u128
                + *classes as u128;
            // Pre- and post-activation per layer, and their gradients.
            widths.saturating_mul(4)
        }
        (
            ModelSpec::Cnn {
                input_shape,
                channels,
                ..
            },
            Split::Table { classes, .. },
        ) => {
            let [c, h, w] = input_shape.map(|v| v as u128);
            let hw = h.saturating_mul(w);
            let mut c_in = c;
            let mut sum = c.saturating_mul(hw);
            for &c_out in channels {
                let c_out = c_out as u128;
                // The im2col buffer, the output before and after ReLU.
                let layer = c_in
                    .saturating_mul(9)
                    .saturating_add(c_out.saturating_mul(2))
                    .saturating_mul(hw);
                sum = sum.saturating_add(layer);
                c_in = c_out;
            }
            sum.saturating_add(c_in.saturating_mul(hw) / 4)
                .saturating_add(*classes as u128)
                .saturating_mul(2)
        }
        (
            ModelSpec::Resnet {
                input_shape,
                widths,
                blocks,
                ..
            },
            Split::Table { classes, .. },
        ) => {
            let [c, h, w] = input_shape.map(|v| v as u128);
            let convs = crate::models::resnet::convs(*input_shape, widths, *blocks);
            // Per 3×3 conv: the im2col buffer, its output, the norm's output and its gain's
            // and bias's, and a ReLU's; per block (counted with its projection or second conv)
            // the residual sum and its ReLU; a 1×1 projection's buffer and output; the pooled
            // maps. Each at the conv's resolution.
            let sum = convs
                .iter()
                .fold(c.saturating_mul(h).saturating_mul(w), |acc, v| {
                    let hw = (v.h as u128).saturating_mul(v.w as u128);
                    let c_out = v.c_out as u128;
                    let cols =
                        (v.c_in as u128).saturating_mul((v.k as u128).saturating_mul(v.k as u128));
                    let kept = if v.k == 3 { 5 } else { 3 };
                    let per_pixel = cols.saturating_add(c_out.saturating_mul(kept));
                    acc.saturating_add(per_pixel.saturating_mul(hw))
                });
            sum.saturating_add(*classes as u128).saturating_mul(2)
        }
        (m, Split::Text { vocab, .. }) if m.transformer().is_some() => {
            let tf = m.transformer().expect("a transformer");
            let (layers, heads) = (tf.layers, tf.heads);
            let (d, t) = (tf.d_model as u128, tf.context as u128);
            // Per token and layer: layer norms, qkv, attention output, projection, the 4·d
            // MLP before and after GELU, residuals; per head the scores and the softmax.
            let per_layer = t.saturating_mul(d.saturating_mul(20)).saturating_add(
                (heads as u128)
                    .saturating_mul(t)
                    .saturating_mul(t)
                    .saturating_mul(2),
            );
            let logits = t.saturating_mul(vocab.len() as u128).saturating_mul(2);
            per_layer
                .saturating_mul(layers as u128)
                .saturating_add(logits)
                .saturating_add(t.saturating_mul(d).saturating_mul(2))
                .saturating_mul(2)
        }
        _ => 0,
    }
}

/// The dataset as the training loop holds it: the parsed table (or token ids), its two splits
/// and the training split again as a device tensor; for a sharded one, the evaluation split
/// and the training shards in memory at once.
fn dataset_bytes(data: &Split) -> u128 {
    match data {
        Split::Table { train, eval, .. } => {
            let values = |t: &crate::data::Table| {
                (t.features.len() as u128).saturating_add(t.labels.len() as u128)
            };
            (values(train).saturating_add(values(eval)))
                .saturating_mul(3)
                .saturating_mul(F32)
        }
        Split::Text { train, eval, .. } => ((train.len() + eval.len()) as u128)
            .saturating_mul(3)
            .saturating_mul(F32),
    }
    .saturating_add(data.shards().map_or(0, |s| u128::from(s.resident_bytes())))
}

/// Peak memory of training `spec` on `data` (see [`Footprint`]) on the CPU, where it is
/// largest (parts side by side each hold a copy of the gradients; a GPU takes the batch whole).
pub fn footprint(spec: &JobSpec, data: &Split) -> Footprint {
    footprint_on(spec, data, &candle_core::Device::Cpu)
}

/// [`footprint`] on `device`, its batch split as that device splits it ([`crate::parts`]).
pub fn footprint_on(spec: &JobSpec, data: &Split, device: &candle_core::Device) -> Footprint {
    footprint_split(spec, data, crate::parts::Parts::of(spec, data, device))
}

/// [`footprint`] with each step's batch split in `parts`.
fn footprint_split(spec: &JobSpec, data: &Split, parts: crate::parts::Parts) -> Footprint {
    let params = params(&spec.model, data);
    // Weights and gradients, the optimizer's state, and a checkpoint's serialised copy of
    // weights and state.
    let state: u128 = match spec.training.optimizer {
        OptimizerSpec::Adamw { .. } => 2,
        OptimizerSpec::Sgd { .. } => 1,
    };
    // Micro-batches keep one more copy of the gradients (their sum) and the activations of
    // one micro-batch only. Parts side by side on the CPU ([`crate::parts`]) each hold their
    // own gradients until they are summed, and their activations together are the batch's:
    // counted for every part at once (a machine with fewer threads runs fewer at a time).
    let summed: u128 = match parts {
        p if p.side_by_side => p.count as u128,
        p => u128::from(p.count > 1),
    };
    let micro_rows = if parts.side_by_side {
        spec.training.batch_size
    } else {
        spec.training.batch_size.div_ceil(parts.count)
    };
    // Mixed precision adds, per parameter, the step's half-precision copy and that copy's
    // gradient before it is cast back to f32: 2 + 2 bytes; and keeps, beside a step's half
    // activations, the f32 copies layer norm, softmax and GELU compute in: a step's
    // activations are counted twice over, at f32's width.
    let mixed = spec.training.mixed_precision.is_some();
    let half = if mixed { 4 } else { 0 };
    let per_param = F32
        .saturating_mul(2 + 2 * state + 1 + summed)
        .saturating_add(half);
    // The largest batch of a step: the training (micro-)batch, or an evaluation chunk (1,024
    // rows, or 32 sequences, forward only, so half the per-sample figure).
    let per_sample = activations_per_sample(&spec.model, data);
    let train_batch = (micro_rows as u128)
        .saturating_mul(per_sample)
        .saturating_mul(if mixed { 2 } else { 1 });
    let eval_batch = match data {
        Split::Table { eval, .. } => {
            (eval.rows().min(1_024) as u128).saturating_mul(per_sample) / 2
        }
        Split::Text { .. } => 32u128.saturating_mul(per_sample) / 2,
    };
    // A fine-tune's files stay in memory with the spec for the run (the weights read once
    // more as tensors while the model is built, a step before the optimizer's state exists).
    let files: u128 = spec.files().iter().map(|(_, f)| u128::from(f.bytes)).sum();
    let bytes = u128::from(params)
        .saturating_mul(per_param)
        .saturating_add(train_batch.max(eval_batch).saturating_mul(F32))
        .saturating_add(dataset_bytes(data))
        .saturating_add(files)
        .saturating_add(u128::from(BASELINE_BYTES));
    Footprint {
        params,
        bytes: sat(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Table;

    fn table(rows: usize, dim: usize, classes: u32) -> Split {
        let t = Table {
            features: vec![0.0; rows * dim],
            labels: (0..rows as u32).map(|i| i % classes).collect(),
            dim,
        };
        Split::Table {
            shards: None,
            train: t.clone(),
            eval: t,
            classes: classes as usize,
        }
    }

    fn spec(model: serde_json::Value) -> JobSpec {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../jobs/digits-mlp.json")).unwrap();
        v["model"] = model;
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parameters_match_the_models_built() {
        let data = table(8, 64, 10);
        let s = spec(serde_json::json!({"kind": "mlp", "hidden": [128]}));
        assert_eq!(params(&s.model, &data), 64 * 128 + 128 + 128 * 10 + 10);
        let built = crate::trainer::Built::new(&s, &data, &candle_core::Device::Cpu).unwrap();
        let counted: usize = built.params().values().map(|v| v.elem_count()).sum();
        assert_eq!(counted as u64, params(&s.model, &data));
        // A resnet with a projection in every stage after the first, and one without.
        let images = table(4, 3 * 16 * 16, 7);
        for (widths, blocks) in [(vec![8, 16, 16], 2), (vec![4], 1)] {
            let s = spec(serde_json::json!({
                "kind": "resnet", "input_shape": [3, 16, 16], "widths": widths, "blocks": blocks
            }));
            let built = crate::trainer::Built::new(&s, &images, &candle_core::Device::Cpu).unwrap();
            let counted: usize = built.params().values().map(|v| v.elem_count()).sum();
            assert_eq!(counted as u64, params(&s.model, &images), "{widths:?}");
        }
    }

    /// The review's MLP of 32 × 8192 (2.1e9 parameters) is about 60 GB to train: far more than
    /// any machine here, and computed without allocating it.
    #[test]
    fn a_huge_model_is_sized_without_being_built() {
        let data = table(4, 64, 10);
        let s = spec(serde_json::json!({"kind": "mlp", "hidden": vec![8192; 32]}));
        let f = footprint(&s, &data);
        assert!(f.params > 2_000_000_000, "{f:?}");
        assert!(f.bytes > 40 << 30, "{f:?}");
    }

    /// GPT-2 small (12 layers of 768, 12 heads, 1,024 positions, 50,257 tokens, the output
    /// layer tied to the embedding) has 124,439,808 parameters, as Hugging Face counts them; a
    /// small one built here has exactly the parameters counted.
    #[test]
    fn gpt2_small_has_gpt2_smalls_parameter_count() {
        let mut s = spec(serde_json::json!({
            "kind": "gpt2", "layers": 12, "d_model": 768, "heads": 12, "context": 1024
        }));
        s.dataset.format = DatasetFormat::Tokens {
            dtype: crate::spec::TokenDtype::U16,
            vocab_size: 50_257,
            tokenizer: None,
        };
        let data = Split::Text {
            shards: None,
            train: vec![0; 4_096],
            eval: vec![0; 4_096],
            vocab: crate::data::Vocab::Ids(50_257),
        };
        assert_eq!(params(&s.model, &data), 124_439_808);
        let small = spec(serde_json::json!({
            "kind": "gpt2", "layers": 2, "d_model": 16, "heads": 4, "context": 8
        }));
        let built = crate::trainer::Built::new(&small, &data, &candle_core::Device::Cpu).unwrap();
        let counted: usize = built.params().values().map(|v| v.elem_count()).sum();
        assert_eq!(counted as u64, params(&small.model, &data));
    }

    /// Parts side by side hold a copy of the gradients each, and the batch's activations
    /// between them (as the batch whole does).
    #[test]
    fn parts_side_by_side_count_a_copy_of_the_gradients_each() {
        let data = table(4_096, 784, 10);
        let s = spec(serde_json::json!({"kind": "mlp", "hidden": [512, 512]}));
        let four = crate::parts::Parts::on_cpu(&s, &data);
        assert!(four.side_by_side && four.count == 4, "{four:?}");
        let split = footprint(&s, &data);
        assert_eq!(split, footprint_split(&s, &data, four));
        let whole = footprint_split(&s, &data, crate::parts::Parts::WHOLE);
        assert_eq!(split.bytes - whole.bytes, 4 * split.params * 4);
    }

    /// Micro-batches hold one micro-batch's activations (and one more copy of the gradients):
    /// a large batch split in eight needs far less than the same batch whole.
    #[test]
    fn micro_batches_need_less_memory_than_the_batch_whole() {
        let data = table(4_096, 784, 10);
        let mut s = spec(serde_json::json!({"kind": "mlp", "hidden": [4096, 4096]}));
        s.training.batch_size = 4_096;
        let whole = footprint(&s, &data).bytes;
        s.training.grad_accumulation = Some(8);
        let split = footprint(&s, &data).bytes;
        let params = footprint(&s, &data).params;
        assert!(split < whole, "{split} vs {whole}");
        // The difference: 7/8 of the batch's activations, less one copy of the gradients.
        let per_sample = activations_per_sample(&s.model, &data) as u64 * 4;
        assert_eq!(whole - split, 4_096 * 7 / 8 * per_sample - params * 4);
    }

    /// Mixed precision holds each parameter's half copy and its gradient on top of the f32
    /// state and a step's activations twice, and is counted so on every device (an upper
    /// bound where the CPU ignores it).
    #[test]
    fn mixed_precision_counts_the_half_copies() {
        let data = table(64, 16, 4);
        let mut s = spec(serde_json::json!({"kind": "mlp", "hidden": [32]}));
        let f32 = footprint(&s, &data);
        s.training.mixed_precision = Some(crate::spec::HalfPrecision::Bf16);
        let mixed = footprint(&s, &data);
        assert_eq!(mixed.params, f32.params);
        // 64 rows a step: their activations are the larger batch (evaluation: 64 rows, half).
        let step = 64 * activations_per_sample(&s.model, &data) as u64 * 4;
        assert_eq!(mixed.bytes - f32.bytes, f32.params * 4 + step);
    }

    #[test]
    fn the_arithmetic_saturates_instead_of_overflowing() {
        let data = table(2, 4, 2);
        let s =
            spec(serde_json::json!({"kind": "cnn", "input_shape": [1, 2, 2], "channels": [1024]}));
        let s = JobSpec {
            model: ModelSpec::Cnn {
                input_shape: [usize::MAX, usize::MAX, usize::MAX],
                channels: vec![1024; 32],
                init: None,
            },
            ..s
        };
        assert_eq!(footprint(&s, &data).bytes, u64::MAX);
        assert_eq!(parse_bytes(&DatasetFormat::Text, u64::MAX), u64::MAX);
    }
}
