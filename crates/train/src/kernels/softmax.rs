//! Scaled, causally masked softmax over the last dimension — attention weights in one pass,
//! instead of scale, add a −∞ mask, and candle's five-op softmax.

use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Result, Shape, Tensor, D,
};
use rayon::prelude::*;

use super::{f32s, fastmath, fused, rows_per_task};

/// `(…, T, T)` scores → `softmax(scale · scores)` along the last dim, row `i` attending only to
/// columns `≤ i`; masked weights are exactly 0.
struct CausalSoftmax {
    scale: f32,
}

/// Rows of `(…, T, T)`: `(rows, T)`, after checking the shape is square in its last two dims.
fn square_rows(shape: &Shape, op: &str) -> Result<(usize, usize)> {
    let dims = shape.dims();
    let n = dims.len();
    if n < 2 || dims[n - 1] != dims[n - 2] {
        bail!("{op}: expected (…, T, T), got {shape:?}")
    }
    Ok((shape.elem_count() / dims[n - 1].max(1), dims[n - 1]))
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "tg-causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s, l, self.name())?;
        let (_, t) = square_rows(l.shape(), self.name())?;
        let mut y = vec![0f32; x.len()];
        // Whole T×T blocks per task, so a row's index within its chunk gives its query position.
        let chunk = (rows_per_task(t * t) * t * t).max(1);
        let scale = self.scale;
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(y, x)| {
                for (k, (y, x)) in y.chunks_exact_mut(t).zip(x.chunks_exact(t)).enumerate() {
                    let valid = (k % t) + 1;
                    softmax_row(&x[..valid], &mut y[..valid], scale);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let g = grad.contiguous()?;
        Ok(Some(res.apply_op2_no_bwd(
            &g,
            &SoftmaxGrad { scale: self.scale },
        )?))
    }
}

fn softmax_row(x: &[f32], y: &mut [f32], scale: f32) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * scale));
    let mut sum = 0f32;
    for (y, &x) in y.iter_mut().zip(x) {
        *y = fastmath::exp(x * scale - max);
    }
    for &y in y.iter() {
        sum += y;
    }
    let inv = 1.0 / sum;
    for y in y.iter_mut() {
        *y *= inv;
    }
}

/// (softmax output y, upstream gradient g) → scale · y ⊙ (g − Σ g⊙y), per row.
struct SoftmaxGrad {
    scale: f32,
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "tg-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (f32s(s1, l1, self.name())?, f32s(s2, l2, self.name())?);
        let t = l1.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut dx = vec![0f32; y.len()];
        let chunk = rows_per_task(t) * t;
        let scale = self.scale;
        dx.par_chunks_mut(chunk)
            .zip(y.par_chunks(chunk).zip(g.par_chunks(chunk)))
            .for_each(|(dx, (y, g))| {
                let rows = dx
                    .chunks_exact_mut(t)
                    .zip(y.chunks_exact(t).zip(g.chunks_exact(t)));
                for (dx, (y, g)) in rows {
                    let mut dot = 0f32;
                    for (&y, &g) in y.iter().zip(g) {
                        dot += y * g;
                    }
                    for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                        *dx = scale * y * (g - dot);
                    }
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `(T, T)`: 0 where row `i` may attend to column `j` (`j ≤ i`), −∞ above the diagonal.
pub fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..t * t)
        .map(|i| {
            if i % t > i / t {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(v, (t, t), device)
}

/// Attention weights from raw `(…, T, T)` scores: `softmax(scale · scores + causal mask)`.
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    if !(scale > 0.0 && scale.is_finite()) {
        bail!("causal_softmax: scale must be positive, got {scale}")
    }
    if fused(scores) {
        return scores.contiguous()?.apply_op1(CausalSoftmax {
            scale: scale as f32,
        });
    }
    let t = scores.dim(D::Minus1)?;
    // Mixed precision: the exponentials and their sum in f32, the weights back in the half
    // type. Other types compute in their own.
    let wide = if super::half(scores) {
        DType::F32
    } else {
        scores.dtype()
    };
    let mask = causal_mask(t, scores.device())?.to_dtype(wide)?;
    candle_nn::ops::softmax(
        &(scores.to_dtype(wide)? * scale)?.broadcast_add(&mask)?,
        D::Minus1,
    )?
    .to_dtype(scores.dtype())
}
