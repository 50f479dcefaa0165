//! Layer norm over the last dimension with a learned scale and shift, forward and backward each
//! one pass (candle's fused `layer_norm` has no backward; `layer_norm_slow` is ten ops).

use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{f32s, fold_lanes, fold_lanes2, fused, rows_per_task};

struct LayerNorm {
    eps: f32,
}

/// `(mean, 1/σ)` of one row (sums in [`fold_lanes`]'s order: a ResNet's group norm takes a
/// whole 32×32×16 map as its row, where one running sum spent a fifth of the step).
#[inline(always)]
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = fold_lanes(x, |v| v) / n;
    let var = fold_lanes(x, |v| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// The row width, after checking that weight and bias match the input's last dim.
fn width(x: &Layout, w: &Layout, b_len: usize, op: &str) -> Result<usize> {
    let d = x.shape().dims().last().copied().unwrap_or(0);
    if w.shape().dims() != [d] || b_len != d || d == 0 {
        bail!(
            "{op}: input {:?} needs weight and bias of shape [{d}], got {:?} and [{b_len}]",
            x.shape(),
            w.shape()
        )
    }
    Ok(d)
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "tg-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let b = f32s(s3, l3, self.name())?;
        let d = width(l1, l2, b.len(), self.name())?;
        let mut y = vec![0f32; x.len()];
        let chunk = rows_per_task(d) * d;
        let eps = self.eps;
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                    let (mean, rstd) = moments(x, eps);
                    for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
                        *y = (x - mean) * rstd * w + b;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let rows = x.elem_count() / w.elem_count();
        let all = x.apply_op3_no_bwd(w, &grad.contiguous()?, &LayerNormGrad { eps: self.eps })?;
        let dx = all.narrow(0, 0, rows)?.reshape(x.shape())?;
        // dw and db copied out: as views they would keep the whole `(rows + 2, d)` buffer
        // alive as long as the parameters' gradients (the backward keeps a first gradient as
        // it is, vendor/README.md).
        let (dw, db) = (all.get(rows)?.copy()?, all.get(rows + 1)?.copy()?);
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// (x, weight, upstream gradient) → `(rows + 2, d)`: the rows of dx, then d weight, d bias.
struct LayerNormGrad {
    eps: f32,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "tg-layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let g = f32s(s3, l3, self.name())?;
        let d = width(l1, l2, w.len(), self.name())?;
        let rows = x.len() / d;
        // Each row's (mean, 1/σ), once: both passes below need them.
        let stats: Vec<(f32, f32)> = x
            .par_chunks_exact(d)
            .map(|x| moments(x, self.eps))
            .collect();
        let mut out = vec![0f32; (rows + 2) * d];
        let (dx, dwb) = out.split_at_mut(rows * d);
        let per_task = rows_per_task(d);
        // dx = rstd · (g·w − mean(g·w) − x̂ · mean(g·w·x̂)), row by row (parallel).
        dx.par_chunks_mut(per_task * d)
            .zip(x.par_chunks(per_task * d).zip(g.par_chunks(per_task * d)))
            .zip(stats.par_chunks(per_task))
            .for_each(|((dx, (x, g)), stats)| {
                let mut gw = vec![0f32; d];
                let rows = dx
                    .chunks_exact_mut(d)
                    .zip(x.chunks_exact(d).zip(g.chunks_exact(d)));
                for ((dx, (x, g)), &(mean, rstd)) in rows.zip(stats) {
                    for ((gw, &g), &w) in gw.iter_mut().zip(g).zip(w) {
                        *gw = g * w;
                    }
                    let sum_gw = fold_lanes(&gw, |gw| gw);
                    let sum_gwx = fold_lanes2(&gw, x, |gw, x| gw * ((x - mean) * rstd));
                    let (a, c) = (sum_gw / d as f32, sum_gwx / d as f32);
                    for ((dx, &gw), &x) in dx.iter_mut().zip(&gw).zip(x) {
                        *dx = rstd * (gw - a - (x - mean) * rstd * c);
                    }
                }
            });
        // dw = Σ g·x̂, db = Σ g over rows, in row order on one thread (a fixed summation order).
        let (dw, db) = dwb.split_at_mut(d);
        let per_row = x.chunks_exact(d).zip(g.chunks_exact(d)).zip(&stats);
        for ((x, g), &(mean, rstd)) in per_row {
            for (((dw, db), &g), &x) in dw.iter_mut().zip(db.iter_mut()).zip(g).zip(x) {
                *dw += g * ((x - mean) * rstd);
                *db += g;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, d))))
    }
}

/// `(x − mean) / √(var + eps) · weight + bias` over the last dimension of `x`.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    if fused(x) {
        x.contiguous()?.apply_op3(
            &weight.contiguous()?,
            &bias.contiguous()?,
            LayerNorm { eps },
        )
    } else if !super::half(x) {
        candle_nn::ops::layer_norm_slow(x, weight, bias, eps)
    } else {
        // Mixed precision: a half type's mean and variance over a row lose the small
        // differences that normalisation is about, so they are taken in f32.
        let f32 = |t: &Tensor| t.to_dtype(DType::F32);
        candle_nn::ops::layer_norm_slow(&f32(x)?, &f32(weight)?, &f32(bias)?, eps)?
            .to_dtype(x.dtype())
    }
}
