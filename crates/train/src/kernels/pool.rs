//! 2×2, stride-2 max-pooling (odd trailing rows/columns dropped, as PyTorch does).
//!
//! Not candle's `max_pool2d`: its backward scales the gradient by the window's share of
//! maxima (¼ for a unique maximum) where it should divide by their count, so every layer
//! before the pool trained with a quarter of its gradient (candle-core 0.11.1).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{f32s, fused};

/// Element offset of output pixel `p`'s window in an image of rows `w` pixels wide and `c`
/// channels (outputs `wo` to a row): the window is that pixel, the one to its right and the
/// two below them, each `c` elements from the offset (and `w·c` for the row below).
#[inline(always)]
fn corner(p: usize, wo: usize, w: usize, c: usize) -> usize {
    (2 * (p / wo) * w + 2 * (p % wo)) * c
}

/// The window's four inputs at `top` (from [`corner`]), each a pixel's `c` channels, in scan
/// order.
#[inline(always)]
fn window(x: &[f32], top: usize, w: usize, c: usize) -> [&[f32]; 4] {
    let (a, b) = x[top..top + 2 * c].split_at(c);
    let (d, e) = x[top + w * c..top + (w + 2) * c].split_at(c);
    [a, b, d, e]
}

/// Which of the window's four inputs (scan order) holds the maximum: the first on ties, so
/// forward and backward agree; a NaN is never greater, so the scan passes it by. Branch-free
/// selects over a pixel's channels, which vectorise.
#[inline(always)]
fn winner(v: [f32; 4]) -> (f32, u8) {
    let (mut m, mut k) = (v[0], 0);
    for (i, &x) in v.iter().enumerate().skip(1) {
        let greater = x > m;
        m = if greater { x } else { m };
        k = if greater { i as u8 } else { k };
    }
    (m, k)
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
                    let [a, b, d, e] = window(x, corner(p, wo, w, c), w, c);
                    for ((((y, &a), &b), &d), &e) in y.iter_mut().zip(a).zip(b).zip(d).zip(e) {
                        *y = winner([a, b, d, e]).0;
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
                    let top = corner(p, wo, w, c);
                    let [a, b, d, e] = window(x, top, w, c);
                    // Windows do not overlap: each input gets its window's gradient or 0
                    // (`0 + g`, as the sum into a zeroed gradient gave).
                    let (upper, lower) = dx.split_at_mut(top + w * c);
                    let (da, db) = upper[top..top + 2 * c].split_at_mut(c);
                    let (dd, de) = lower[..2 * c].split_at_mut(c);
                    let xs = a.iter().zip(b).zip(d).zip(e);
                    let ds = da.iter_mut().zip(db.iter_mut()).zip(dd.iter_mut()).zip(de);
                    for (((((&a, &b), &d), &e), (((da, db), dd), de)), &g) in xs.zip(ds).zip(g) {
                        let k = winner([a, b, d, e]).1;
                        let g = 0.0 + g;
                        *da = if k == 0 { g } else { 0.0 };
                        *db = if k == 1 { g } else { 0.0 };
                        *dd = if k == 2 { g } else { 0.0 };
                        *de = if k == 3 { g } else { 0.0 };
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
