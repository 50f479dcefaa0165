//! How long a spec would train here, before its dataset is downloaded: the work its model
//! and schedule imply (training ≈ 3 × forward FLOPs per sample or token, sizes bounded by
//! the dataset's byte size) over this device's measured matrix-multiply speed at a modest
//! efficiency (small models reach a fraction of peak), plus a fixed cost per step. Rough on
//! purpose, and pessimistic where the spec leaves a size open: a job wrongly refused costs
//! less than one claimed and then abandoned.

use tensorgrid_train::spec::{DatasetFormat, JobSpec, ModelSpec};

/// Share of the matmul ceiling a small model's training step reaches.
const EFFICIENCY: f64 = 0.1;
/// Launches, optimizer and bookkeeping per step, whatever the model.
const STEP_OVERHEAD_S: f64 = 0.000_5;
/// Character vocabularies are at most this large in practice (bytes of UTF-8 text).
const TEXT_VOCAB: f64 = 256.0;
/// Features per sample assumed for an MLP's inner layers, whose input width is unknown
/// until the dataset is read.
const MIN_FEATURES: f64 = 16.0;

/// This device's speed, measured once at start.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// f32 matmul GFLOP/s.
    pub gflops: f64,
}

impl Throughput {
    /// Measures the device (a fraction of a second).
    pub fn measure(device: &tensorgrid_train::Device) -> tensorgrid_train::Result<Self> {
        let n = if device.is_cpu() { 256 } else { 2048 };
        Ok(Self {
            gflops: tensorgrid_train::bench::matmul_gflops(device, n)?,
        })
    }

    /// Seconds to train `spec` on a dataset of `dataset_bytes`.
    pub fn estimate_secs(&self, spec: &JobSpec, dataset_bytes: u64) -> f64 {
        let (flops, steps) = work(spec, dataset_bytes as f64);
        flops / (self.gflops.max(0.001) * 1e9 * EFFICIENCY)
            + steps * STEP_OVERHEAD_S
            + tokenizing_secs(spec, dataset_bytes)
    }

    /// Seconds one training step of `spec` would take here.
    pub fn step_secs(&self, spec: &JobSpec, dataset_bytes: u64) -> f64 {
        let (_, steps) = work(spec, dataset_bytes as f64);
        self.estimate_secs(spec, dataset_bytes) / steps.max(1.0)
    }
}

/// Training a BPE on the text and encoding it, done again after the claim: about 2.5 µs a
/// byte on this 2-core machine (KJV, 1 MB: 2.3 s; 8 MB of distinct CJK words: 20 s), counted
/// at 4 µs.
fn tokenizing_secs(spec: &JobSpec, dataset_bytes: u64) -> f64 {
    match spec.dataset.format {
        DatasetFormat::BpeText { .. } => dataset_bytes as f64 * 4e-6,
        _ => 0.0,
    }
}

/// The ids of a given `tokenizer.json` of `bytes`, before it is read: every id takes at least
/// 16 bytes of it, vocabulary entry and merge rule (GPT-2's: 27; one trained here: 30), so
/// this bounds it from above, within the ids a model may have.
fn given_vocab(bytes: u64) -> f64 {
    (bytes as f64 / 16.0).clamp(256.0, tensorgrid_train::spec::limits::MAX_VOCAB as f64)
}

/// Training FLOPs and optimizer steps.
fn work(spec: &JobSpec, bytes: f64) -> (f64, f64) {
    let t = &spec.training;
    let batch = t.batch_size.max(1) as f64;
    match &spec.model {
        m @ (ModelSpec::CharTransformer { .. } | ModelSpec::Gpt2 { .. }) => {
            let tf = m.transformer().expect("a transformer");
            let (layers, context) = (&tf.layers, &tf.context);
            let d = tf.d_model as f64;
            let vocab = match spec.dataset.format.each_file() {
                DatasetFormat::Tokens { vocab_size, .. }
                | DatasetFormat::BpeText {
                    vocab_size: Some(vocab_size),
                    ..
                } => f64::from(*vocab_size),
                DatasetFormat::BpeText {
                    tokenizer: Some(t), ..
                } => given_vocab(t.bytes),
                _ => TEXT_VOCAB,
            };
            let per_token =
                *layers as f64 * (24.0 * d * d + 2.0 * *context as f64 * d) + 2.0 * d * vocab;
            let steps = t.steps.unwrap_or(0) as f64;
            (3.0 * per_token * steps * batch * *context as f64, steps)
        }
        ModelSpec::Mlp { hidden, .. } => {
            // Elements in the dataset bound samples × features.
            let elements = bytes / element_bytes(&spec.dataset.format);
            let first = hidden.first().copied().unwrap_or(0) as f64;
            let inner: f64 = hidden.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>()
                + hidden.last().copied().unwrap_or(0) as f64 * 256.0;
            let samples = elements / MIN_FEATURES;
            let per_epoch = 2.0 * (elements * first + samples * inner);
            scheduled(spec, samples, batch, per_epoch)
        }
        ModelSpec::Resnet {
            input_shape,
            widths,
            blocks,
            ..
        } => {
            let [c0, h, w] = input_shape.map(|v| v as f64);
            let samples = bytes / element_bytes(&spec.dataset.format) / (c0 * h * w).max(1.0);
            let convs = tensorgrid_train::models::resnet::convs(*input_shape, widths, *blocks);
            let per_sample: f64 = convs.iter().map(|v| v.forward_flops()).sum::<f64>()
                + 2.0 * widths.last().copied().unwrap_or(0) as f64 * 256.0;
            scheduled(spec, samples, batch, samples * per_sample)
        }
        ModelSpec::Cnn {
            input_shape,
            channels,
            ..
        } => {
            let [c0, h, w] = input_shape.map(|v| v as f64);
            let samples = bytes / element_bytes(&spec.dataset.format) / (c0 * h * w).max(1.0);
            let mut c_in = c0;
            let mut per_sample = 0.0;
            for &c in channels {
                per_sample += 2.0 * c as f64 * c_in * 9.0 * h * w;
                c_in = c as f64;
            }
            per_sample += 2.0 * c_in * (h / 2.0) * (w / 2.0) * 256.0;
            scheduled(spec, samples, batch, samples * per_sample)
        }
    }
}

/// (training FLOPs, steps) for a classification schedule: `steps` when given, else epochs
/// over the training share of `samples`.
fn scheduled(spec: &JobSpec, samples: f64, batch: f64, fwd_per_epoch: f64) -> (f64, f64) {
    let t = &spec.training;
    let train = samples * (1.0 - spec.dataset.eval_fraction).clamp(0.0, 1.0);
    match t.steps {
        Some(steps) => {
            let per_sample = fwd_per_epoch / samples.max(1.0);
            (3.0 * per_sample * steps as f64 * batch, steps as f64)
        }
        None => {
            let epochs = t.epochs.unwrap_or(0) as f64;
            (
                3.0 * fwd_per_epoch * epochs * (1.0 - spec.dataset.eval_fraction).clamp(0.0, 1.0),
                epochs * (train / batch).ceil(),
            )
        }
    }
}

/// The smallest a feature can be stored as in the format (the bound on the sample count).
fn element_bytes(format: &DatasetFormat) -> f64 {
    match format {
        // "1," is the shortest written number.
        DatasetFormat::Csv { .. } => 2.0,
        DatasetFormat::Safetensors { .. } | DatasetFormat::Npy { .. } => 1.0,
        DatasetFormat::Cifar { .. } => 1.0,
        DatasetFormat::Text | DatasetFormat::BpeText { .. } => 1.0,
        DatasetFormat::Tokens { dtype, .. } => dtype.width() as f64,
        DatasetFormat::Shards { shard_format, .. } => element_bytes(shard_format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> JobSpec {
        let path = format!("{}/../jobs/{name}", env!("CARGO_MANIFEST_DIR"));
        JobSpec::from_json(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The shipped jobs' estimates bound their measured CPU times (BENCHMARKS.md, this 2-core
    /// machine, whose matmul ceiling is about 100 GFLOP/s: digits MLP 0.12 s, CNN 2.5 s, the
    /// char model 25.6 s) from above, within two orders of magnitude.
    #[test]
    fn the_shipped_jobs_are_estimated_pessimistically_but_not_absurdly() {
        let cpu = Throughput { gflops: 100.0 };
        let digits = std::fs::metadata(format!(
            "{}/../data/digits.safetensors",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .len();
        let kjv = std::fs::metadata(format!("{}/../data/kjv.txt", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .len();
        let shapes = std::fs::metadata(format!(
            "{}/../data/shapes-cifar.bin",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .len();
        for (name, bytes, measured) in [
            ("digits-mlp.json", digits, 0.12),
            ("digits-cnn.json", digits, 2.5),
            ("kjv-charlm.json", kjv, 25.6),
            // Measured on two threads (the others on one).
            ("shapes-resnet.json", shapes, 17.6),
        ] {
            let est = cpu.estimate_secs(&spec(name), bytes);
            assert!(
                est >= measured * 0.5 && est <= measured * 100.0,
                "{name}: estimated {est:.1} s, measured about {measured} s"
            );
        }
        // More steps, more time.
        let mut longer = spec("kjv-charlm.json");
        longer.training.steps = Some(5_000);
        assert!(
            cpu.estimate_secs(&longer, kjv)
                > 9.0 * cpu.estimate_secs(&spec("kjv-charlm.json"), kjv)
        );
    }

    /// A tokens dataset names its vocabulary: a GPT-2-sized one (50,257 ids) costs the output
    /// layer far more than the 256 characters a text is assumed to have.
    #[test]
    fn a_tokens_vocabulary_is_counted() {
        let cpu = Throughput { gflops: 100.0 };
        let text = spec("kjv-charlm.json");
        let mut tokens = text.clone();
        tokens.dataset.format = DatasetFormat::Tokens {
            dtype: tensorgrid_train::spec::TokenDtype::U16,
            vocab_size: 50_257,
            tokenizer: None,
        };
        let (t, k) = (
            cpu.estimate_secs(&text, 1 << 20),
            cpu.estimate_secs(&tokens, 1 << 20),
        );
        assert!(k > 5.0 * t, "tokens {k:.1} s vs text {t:.1} s");
    }
}
