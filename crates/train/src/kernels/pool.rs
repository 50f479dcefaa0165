//! 2×2, stride-2 max-pooling (odd trailing rows/columns dropped, as PyTorch does).
//!
//! Not candle's `max_pool2d`: its backward scales the gradient by the window's share of
//! maxima (¼ for a unique maximum) where it should divide by their count, so every layer
//! before the pool trained with a quarter of its gradient (candle-core 0.11.1).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{f32s, fused};

/// Offsets (in pixels) of the four inputs of output pixel (oy, ox), in scan order; the first
/// maximum wins, so forward and backward agree on ties.
#[inline(always)]
fn window(oy: usize, ox: usize, w: usize) -> [usize; 4] {
    let top = 2 * oy * w + 2 * ox;
    [top, top + 1, top + w, top + w + 1]
}

/// Index within `window` of the maximum of channel `ch` (first one on ties).
#[inline(always)]
fn argmax(x: &[f32], win: &[usize; 4], c: usize, ch: usize) -> usize {
    let mut best = win[0];
    for &p in &win[1..] {
        if x[p * c + ch] > x[best * c + ch] {
            best = p;
        }
    }
    best
}

struct MaxPool2;

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "tg-max-pool2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s, l, self.name())?;
        let (b, h, w, c) = l.shape().dims4()?;
        let (ho, wo) = (h / 2, w / 2);
        let mut y = vec![0f32; b * ho * wo * c];
        y.par_chunks_mut((ho * wo * c).max(1))
            .zip(x.par_chunks((h * w * c).max(1)))
            .for_each(|(y, x)| {
                for (p, y) in y.chunks_exact_mut(c).enumerate() {
                    let win = window(p / wo, p % wo, w);
                    for (ch, y) in y.iter_mut().enumerate() {
                        *y = x[argmax(x, &win, c, ch) * c + ch];
                    }
                }
            });
        Ok((CpuStorage::F32(y), Shape::from((b, ho, wo, c))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            arg.apply_op2_no_bwd(&grad.contiguous()?, &MaxPool2Grad)?,
        ))
    }
}

/// (input, upstream gradient) → each output's gradient routed to its window's maximum.
struct MaxPool2Grad;

impl CustomOp2 for MaxPool2Grad {
    fn name(&self) -> &'static str {
        "tg-max-pool2-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let g = f32s(s2, l2, self.name())?;
        let (b, h, w, c) = l1.shape().dims4()?;
        let (ho, wo) = (h / 2, w / 2);
        if l2.shape().dims() != [b, ho, wo, c] {
            candle_core::bail!(
                "{}: unexpected gradient shape {:?}",
                self.name(),
                l2.shape()
            )
        }
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut((h * w * c).max(1))
            .zip(
                x.par_chunks((h * w * c).max(1))
                    .zip(g.par_chunks((ho * wo * c).max(1))),
            )
            .for_each(|(dx, (x, g))| {
                for (p, g) in g.chunks_exact(c).enumerate() {
                    let win = window(p / wo, p % wo, w);
                    for (ch, &g) in g.iter().enumerate() {
                        dx[argmax(x, &win, c, ch) * c + ch] += g;
                    }
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// 2×2 max-pool with stride 2 of NHWC `x` `(B, H, W, C)` → `(B, H/2, W/2, C)`.
pub fn max_pool2_nhwc(x: &Tensor) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    if h < 2 || w < 2 || c == 0 {
        candle_core::bail!(
            "max_pool2_nhwc: input {:?} is smaller than one window",
            x.shape()
        )
    }
    if fused(x) {
        return x.contiguous()?.apply_op1(MaxPool2);
    }
    let (ho, wo) = (h / 2, w / 2);
    x.narrow(1, 0, 2 * ho)?
        .narrow(2, 0, 2 * wo)?
        .reshape((b, ho, 2, wo, 2, c))?
        .max(4)?
        .max(2)
}

/// 2×2 max-pool with stride 2 of NCHW `x` `(B, C, H, W)` → `(B, C, H/2, W/2)`, from candle's
/// max reductions (whose backward is right) on any device.
pub fn max_pool2_nchw(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if h < 2 || w < 2 || c == 0 {
        candle_core::bail!(
            "max_pool2_nchw: input {:?} is smaller than one window",
            x.shape()
        )
    }
    let (ho, wo) = (h / 2, w / 2);
    x.narrow(2, 0, 2 * ho)?
        .narrow(3, 0, 2 * wo)?
        .reshape((b, c, ho, 2, wo, 2))?
        .max(5)?
        .max(3)
}
