//! The built-in model zoo. Every model takes a batch and returns logits; every parameter is
//! created through a `VarBuilder` on a `VarMap` and then overwritten by [`init::initialize`]
//! from the job's seed (candle's own init is not reproducible).

pub mod cnn;
pub mod init;
pub mod mlp;
pub mod resnet;
pub mod transformer;

use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;

use crate::{data::Split, spec::ModelSpec, Result};

/// A model from the zoo, computing in one dtype: f32, or a half type under mixed precision
/// ([`crate::precision`]). Whatever it computes in, it takes f32 features (or token ids) and
/// returns f32 logits, so losses and metrics are always f32.
pub struct Model {
    net: Net,
    dtype: DType,
}

enum Net {
    Mlp(mlp::Mlp),
    Cnn(cnn::Cnn),
    Resnet(resnet::Resnet),
    CharTransformer(transformer::CharTransformer),
}

/// What a model's shape takes from the data: built once from the [`Split`], kept to build
/// the model again (at a compute dtype, every step) without the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Feature width and class count.
    Table { dim: usize, classes: usize },
    /// Vocabulary size.
    Text { vocab: usize },
}

/// A parameter taken at least as wide as f32: in f32 when the builder's dtype is a half type,
/// else in the builder's. For normalisation gains and biases and embedding tables, whose
/// gradients are sums over many rows (a half type's accumulation would lose them) and whose
/// values a half type would round. Under mixed precision the ops that use them compute in f32
/// ([`crate::kernels::layer_norm`]) or cast their result.
pub(crate) fn wide_param(
    vb: &VarBuilder,
    shape: impl Into<candle_core::Shape>,
    name: &str,
) -> candle_core::Result<Tensor> {
    let dtype = match vb.dtype() {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    };
    vb.get_with_hints_dtype(shape, name, Default::default(), dtype)
}

/// Forward FLOPs per sample/token of the spec's model (multiply-adds × 2), in f64 throughout:
/// it sizes strangers' specs before anything is built.
pub fn forward_flops(model: &crate::spec::ModelSpec, split: &Split) -> f64 {
    use crate::spec::ModelSpec::*;
    match (model, split) {
        (Mlp { hidden, .. }, Split::Table { train, classes, .. }) => {
            let sizes: Vec<usize> = std::iter::once(train.dim)
                .chain(hidden.iter().copied())
                .chain([*classes])
                .collect();
            sizes
                .windows(2)
                .map(|w| 2.0 * w[0] as f64 * w[1] as f64)
                .sum()
        }
        (
            Cnn {
                input_shape,
                channels,
                ..
            },
            Split::Table { classes, .. },
        ) => {
            let (h, w) = (input_shape[1], input_shape[2]);
            let mut c_in = input_shape[0];
            let mut f = 0.0;
            for &c in channels {
                f += 2.0 * c as f64 * c_in as f64 * 9.0 * h as f64 * w as f64;
                c_in = c;
            }
            f + 2.0 * c_in as f64 * (h / 2) as f64 * (w / 2) as f64 * *classes as f64
        }
        (
            Resnet {
                input_shape,
                widths,
                blocks,
                ..
            },
            Split::Table { classes, .. },
        ) => {
            let convs = crate::models::resnet::convs(*input_shape, widths, *blocks);
            convs.iter().map(|v| v.forward_flops()).sum::<f64>()
                + 2.0 * widths.last().copied().unwrap_or(0) as f64 * *classes as f64
        }
        (m, Split::Text { vocab, .. }) if m.transformer().is_some() => {
            let t = m.transformer().expect("a transformer");
            let d = t.d_model as f64;
            // qkv + proj + 4d MLP = 12 d² per layer; attention scores and weighted sum ≈ 2·T·d
            // per token on average (causal half of 4·T·d); the output head 2·d·V.
            let per_layer = 2.0 * 12.0 * d * d + 2.0 * (t.context as f64) * d;
            t.layers as f64 * per_layer + 2.0 * d * vocab.len() as f64
        }
        _ => 0.0,
    }
}

impl Arch {
    pub fn of(data: &Split) -> Self {
        match data {
            Split::Table { train, classes, .. } => Arch::Table {
                dim: train.dim,
                classes: *classes,
            },
            Split::Text { vocab, .. } => Arch::Text { vocab: vocab.len() },
        }
    }
}

impl Model {
    /// Builds the spec's model for a dataset: input size and class count come from the data.
    pub fn build(spec: &ModelSpec, data: &Split, vb: VarBuilder) -> Result<Self> {
        Self::build_for(spec, Arch::of(data), vb)
    }

    /// Builds the spec's model for data of shape `arch`, its parameters from `vb` in `vb`'s
    /// dtype.
    pub fn build_for(spec: &ModelSpec, arch: Arch, vb: VarBuilder) -> Result<Self> {
        let dtype = vb.dtype();
        let net = match (spec, arch) {
            (ModelSpec::Mlp { hidden, .. }, Arch::Table { dim, classes }) => {
                Net::Mlp(mlp::Mlp::new(dim, hidden, classes, vb)?)
            }
            (
                ModelSpec::Cnn {
                    input_shape,
                    channels,
                    ..
                },
                Arch::Table { classes, .. },
            ) => Net::Cnn(cnn::Cnn::new(*input_shape, channels, classes, vb)?),
            (
                ModelSpec::Resnet {
                    input_shape,
                    widths,
                    blocks,
                    ..
                },
                Arch::Table { classes, .. },
            ) => Net::Resnet(resnet::Resnet::new(
                *input_shape,
                widths,
                *blocks,
                classes,
                vb,
            )?),
            (m, Arch::Text { vocab }) if m.transformer().is_some() => {
                let t = m.transformer().expect("a transformer");
                let cfg = transformer::Config {
                    vocab,
                    layers: t.layers,
                    d_model: t.d_model,
                    heads: t.heads,
                    context: t.context,
                    gpt2: t.gpt2,
                };
                Net::CharTransformer(transformer::CharTransformer::new(cfg, vb)?)
            }
            _ => {
                return Err(crate::Error::Format(
                    "model does not fit the dataset kind".into(),
                ))
            }
        };
        Ok(Self { net, dtype })
    }

    /// The language model, if this is one.
    pub fn transformer(&self) -> Option<&transformer::CharTransformer> {
        match &self.net {
            Net::CharTransformer(m) => Some(m),
            _ => None,
        }
    }

    /// The dtype it computes in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Weight-init scale rule for this architecture.
    pub fn init_scheme(&self) -> init::Scheme {
        match self.net {
            Net::CharTransformer(_) => init::Scheme::Normal002,
            _ => init::Scheme::FanIn,
        }
    }
}

impl Module for Model {
    /// Float features are cast to the model's dtype (token ids stay ids); logits come back
    /// as f32. Both casts are free at f32 (`to_dtype` to the same dtype is a clone).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = if x.dtype().is_float() {
            x.to_dtype(self.dtype)?
        } else {
            x.clone()
        };
        let logits = match &self.net {
            Net::Mlp(m) => m.forward(&x),
            Net::Cnn(m) => m.forward(&x),
            Net::Resnet(m) => m.forward(&x),
            Net::CharTransformer(m) => m.forward(&x),
        }?;
        logits.to_dtype(DType::F32)
    }
}
