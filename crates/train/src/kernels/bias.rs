//! Dense layers on 2-D activations: `x · Wᵀ + b` as one gemm and a fused bias add whose
//! backward sums the gradient's rows in one contiguous pass (candle's `broadcast_add` backward
//! is a strided reduction over dim 0).

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{f32s, fused, rows_per_task};

/// `(rows, C) + (C)`.
struct AddBias;

/// Checks `x: (…, C)` against `bias: (C)`; returns C.
fn width(x: &Layout, bias: &Layout, op: &str) -> Result<usize> {
    let c = x.shape().dims().last().copied().unwrap_or(0);
    if bias.shape().dims() != [c] || c == 0 {
        bail!(
            "{op}: input {:?} needs a bias of shape [{c}], got {:?}",
            x.shape(),
            bias.shape()
        )
    }
    Ok(c)
}

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "tg-add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let b = f32s(s2, l2, self.name())?;
        let c = width(l1, l2, self.name())?;
        let mut y = vec![0f32; x.len()];
        let chunk = rows_per_task(c) * c;
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                    for ((y, &x), &b) in y.iter_mut().zip(x).zip(b) {
                        *y = x + b;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = grad.contiguous()?.apply_op1_no_bwd(&SumRows)?;
        Ok((Some(grad.clone()), Some(db)))
    }
}

/// `(…, C)` → `(C)`: the sum over all leading dims, rows added in order (one thread, so the
/// summation order never depends on the thread count).
struct SumRows;

impl CustomOp1 for SumRows {
    fn name(&self) -> &'static str {
        "tg-sum-rows"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = f32s(s, l, self.name())?;
        let c = l.shape().dims().last().copied().unwrap_or(0).max(1);
        let mut sum = vec![0f32; c];
        for row in g.chunks_exact(c) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        Ok((CpuStorage::F32(sum), Shape::from(c)))
    }
}

/// `x · weightᵀ + bias` for `x: (rows, in)`, `weight: (out, in)` (candle/PyTorch layout).
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    add_bias(x.matmul(&weight.t()?)?, bias)
}

/// `x · weight + bias` for `x: (rows, in)`, `weight: (in, out)` (GPT-2's `Conv1D` layout).
pub fn linear_in_out(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    add_bias(x.matmul(weight)?, bias)
}

fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) if fused(&y) => y.apply_op2(&b.contiguous()?, AddBias),
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// A candle-nn `Linear` applied to 2-D `x` through [`linear`].
pub fn dense(layer: &candle_nn::Linear, x: &Tensor) -> Result<Tensor> {
    linear(x, layer.weight(), layer.bias())
}
