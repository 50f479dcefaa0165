use candle_core::{Module, Tensor};
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::Result;

/// 3×3 convolutions (padding 1) with ReLU, one 2×2 max-pool, a linear classifier.
pub struct Cnn {
    input_shape: [usize; 3],
    convs: Vec<Conv2d>,
    fc: Linear,
}

impl Cnn {
    pub fn new(
        input_shape: [usize; 3],
        channels: &[usize],
        classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let mut convs = Vec::new();
        let mut c_in = input_shape[0];
        for (i, &c_out) in channels.iter().enumerate() {
            convs.push(conv2d(c_in, c_out, 3, cfg, vb.pp(format!("conv{i}")))?);
            c_in = c_out;
        }
        let flat = c_in * (input_shape[1] / 2) * (input_shape[2] / 2);
        let fc = linear(flat, classes, vb.pp("fc"))?;
        Ok(Self {
            input_shape,
            convs,
            fc,
        })
    }
}

impl Module for Cnn {
    /// `x`: `(batch, C·H·W)` flat samples.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let [c, h, w] = self.input_shape;
        let mut x = x.reshape((x.dim(0)?, c, h, w))?;
        for conv in &self.convs {
            x = conv.forward(&x)?.relu()?;
        }
        let x = x.max_pool2d(2)?.flatten_from(1)?;
        self.fc.forward(&x)
    }
}
