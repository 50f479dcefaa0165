//! The built-in model zoo. Every model takes a batch and returns logits; every parameter is
//! created through a `VarBuilder` on a `VarMap` and then overwritten by [`init::initialize`]
//! from the job's seed (candle's own init is not reproducible).

pub mod cnn;
pub mod init;
pub mod mlp;
pub mod resnet;
pub mod transformer;

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use crate::{data::Split, spec::ModelSpec, Result};

/// A model from the zoo.
pub enum Model {
    Mlp(mlp::Mlp),
    Cnn(cnn::Cnn),
    Resnet(resnet::Resnet),
    CharTransformer(transformer::CharTransformer),
}

impl Model {
    /// Builds the spec's model for a dataset: input size and class count come from the data.
    pub fn build(spec: &ModelSpec, data: &Split, vb: VarBuilder) -> Result<Self> {
        Ok(match (spec, data) {
            (ModelSpec::Mlp { hidden, .. }, Split::Table { train, classes, .. }) => {
                Model::Mlp(mlp::Mlp::new(train.dim, hidden, *classes, vb)?)
            }
            (
                ModelSpec::Cnn {
                    input_shape,
                    channels,
                    ..
                },
                Split::Table { classes, .. },
            ) => Model::Cnn(cnn::Cnn::new(*input_shape, channels, *classes, vb)?),
            (
                ModelSpec::Resnet {
                    input_shape,
                    widths,
                    blocks,
                    ..
                },
                Split::Table { classes, .. },
            ) => Model::Resnet(resnet::Resnet::new(
                *input_shape,
                widths,
                *blocks,
                *classes,
                vb,
            )?),
            (m, Split::Text { vocab, .. }) if m.transformer().is_some() => {
                let t = m.transformer().expect("a transformer");
                let cfg = transformer::Config {
                    vocab: vocab.len(),
                    layers: t.layers,
                    d_model: t.d_model,
                    heads: t.heads,
                    context: t.context,
                    gpt2: t.gpt2,
                };
                Model::CharTransformer(transformer::CharTransformer::new(cfg, vb)?)
            }
            _ => {
                return Err(crate::Error::Format(
                    "model does not fit the dataset kind".into(),
                ))
            }
        })
    }

    /// Weight-init scale rule for this architecture.
    pub fn init_scheme(&self) -> init::Scheme {
        match self {
            Model::CharTransformer(_) => init::Scheme::Normal002,
            _ => init::Scheme::FanIn,
        }
    }
}

impl Module for Model {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Model::Mlp(m) => m.forward(x),
            Model::Cnn(m) => m.forward(x),
            Model::Resnet(m) => m.forward(x),
            Model::CharTransformer(m) => m.forward(x),
        }
    }
}
