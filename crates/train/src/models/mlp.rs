use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use crate::{kernels, Result};

/// Linear layers `fc0…fcN` with ReLU between them.
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    pub fn new(input: usize, hidden: &[usize], classes: usize, vb: VarBuilder) -> Result<Self> {
        let sizes: Vec<usize> = std::iter::once(input)
            .chain(hidden.iter().copied())
            .chain([classes])
            .collect();
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| linear(w[0], w[1], vb.pp(format!("fc{i}"))))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { layers })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut x = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = kernels::dense(layer, &x)?;
            if i < last {
                x = kernels::relu(&x)?;
            }
        }
        Ok(x)
    }
}
