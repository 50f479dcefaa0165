use candle_core::{DType, Module, Tensor};
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::{kernels, Result};

/// 3×3 kernels with padding 1 keep the spatial size.
const PADDING: usize = 1;

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
            padding: PADDING,
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

impl Cnn {
    /// CPU path: NHWC activations, im2col + gemm convolutions (see [`kernels`]). Returns the
    /// pooled features in NCHW order, so the classifier (and the saved weights) are the same
    /// as on the NCHW path.
    fn features_nhwc(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.permute((0, 2, 3, 1))?;
        for conv in &self.convs {
            x = kernels::relu(&kernels::conv2d_nhwc(
                &x,
                conv.weight(),
                conv.bias(),
                PADDING,
            )?)?;
        }
        kernels::max_pool2_nhwc(&x)?.permute((0, 3, 1, 2))
    }

    /// GPU path: candle's NCHW convolutions (cuDNN where enabled); the pool from
    /// [`kernels::max_pool2_nchw`], since candle's own has a wrong gradient.
    fn features_nchw(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for conv in &self.convs {
            x = kernels::relu(&conv.forward(&x)?)?;
        }
        kernels::max_pool2_nchw(&x)
    }
}

impl Module for Cnn {
    /// `x`: `(batch, C·H·W)` flat samples.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let [c, h, w] = self.input_shape;
        let x = x.reshape((x.dim(0)?, c, h, w))?;
        let pooled = if x.device().is_cpu() && x.dtype() == DType::F32 {
            self.features_nhwc(&x)?
        } else {
            self.features_nchw(&x)?
        };
        kernels::dense(&self.fc, &pooled.flatten_from(1)?)
    }
}
