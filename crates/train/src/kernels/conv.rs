//! 2-D convolution in NHWC as im2col + one gemm. candle's CPU conv backward runs a direct
//! `conv_transpose2d` loop and a conv with the batch as channels; here the backward is two
//! gemms (from `matmul`'s own backward) and a col2im scatter.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::f32s;

/// Geometry of a stride-1, zero-padded, square-kernel convolution over `(B, H, W, C)`.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    k: usize,
    pad: usize,
}

impl Geometry {
    fn out_hw(&self) -> (usize, usize) {
        (
            self.h + 2 * self.pad + 1 - self.k,
            self.w + 2 * self.pad + 1 - self.k,
        )
    }

    /// Elements of one im2col row: one output pixel's receptive field, ordered (ky, kx, c).
    fn row_len(&self) -> usize {
        self.k * self.k * self.c
    }

    /// For output pixel (oy, ox) and kernel tap (ky, kx): the input pixel, if not padding.
    #[inline(always)]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
        let iy = (oy + ky).checked_sub(self.pad).filter(|&v| v < self.h)?;
        let ix = (ox + kx).checked_sub(self.pad).filter(|&v| v < self.w)?;
        Some(iy * self.w + ix)
    }
}

/// `(B, H, W, C)` → `(B·Ho·Wo, k·k·C)`: each output pixel's receptive field as a row, padding
/// as zeros. Each element is written once (a zero fill of the whole matrix first was 7 % of a
/// ResNet step).
fn im2col(x: &[f32], g: &Geometry) -> Vec<f32> {
    let (ho, wo) = g.out_hw();
    let (row, c) = (g.row_len(), g.c);
    let len = g.batch * ho * wo * row;
    // Every image's rows come from its own pixels: without them (an empty map that padding
    // alone would give outputs) the zip below would write nothing before `set_len`.
    assert!(
        g.h > 0 && g.w > 0 && x.len() == g.batch * g.h * g.w * c,
        "im2col: input of {} elements for {g:?}",
        x.len()
    );
    let mut cols: Vec<f32> = Vec::with_capacity(len);
    // One task per image: each writes only its own rows, every element of them.
    cols.spare_capacity_mut()[..len]
        .par_chunks_mut((ho * wo * row).max(1))
        .zip(x.par_chunks((g.h * g.w * c).max(1)))
        .for_each(|(cols, x)| {
            for (p, dst) in cols.chunks_exact_mut(row).enumerate() {
                let (oy, ox) = (p / wo, p % wo);
                for (tap, dst) in dst.chunks_exact_mut(c).enumerate() {
                    match g.source(oy, ox, tap / g.k, tap % g.k) {
                        Some(src) => {
                            for (d, &v) in dst.iter_mut().zip(&x[src * c..(src + 1) * c]) {
                                d.write(v);
                            }
                        }
                        None => {
                            for d in dst {
                                d.write(0.0);
                            }
                        }
                    }
                }
            }
        });
    // SAFETY: the tasks above wrote all `len` elements: the chunks cover `len` exactly
    // (`batch` images of `ho·wo` rows of `row` elements), and each row is `k·k` taps of `c`
    // elements, each tap copied or zeroed.
    unsafe { cols.set_len(len) };
    cols
}

/// `(B, H, W, C)` → `(B·Ho·Wo, k·k·C)`: [`im2col`] as an op, its backward [`Col2Im`].
struct Im2Col {
    k: usize,
    pad: usize,
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "tg-im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s, l, self.name())?;
        let (batch, h, w, c) = l.shape().dims4()?;
        let g = Geometry {
            batch,
            h,
            w,
            c,
            k: self.k,
            pad: self.pad,
        };
        let (ho, wo) = g.out_hw();
        let row = g.row_len();
        let cols = im2col(x, &g);
        Ok((CpuStorage::F32(cols), Shape::from((batch * ho * wo, row))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (batch, h, w, c) = arg.dims4()?;
        let g = Geometry {
            batch,
            h,
            w,
            c,
            k: self.k,
            pad: self.pad,
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Col2Im(g))?))
    }
}

/// The adjoint of [`Im2Col`]: sums each column entry back onto the input pixel it came from.
struct Col2Im(Geometry);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "tg-col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols = f32s(s, l, self.name())?;
        let (ho, wo) = g.out_hw();
        let row = g.row_len();
        if l.shape().dims() != [g.batch * ho * wo, row] {
            bail!("{}: unexpected gradient shape {:?}", self.name(), l.shape())
        }
        let mut dx = vec![0f32; g.batch * g.h * g.w * g.c];
        // Per image, in a fixed pixel and tap order: the same sums whatever the thread count.
        dx.par_chunks_mut((g.h * g.w * g.c).max(1))
            .zip(cols.par_chunks((ho * wo * row).max(1)))
            .for_each(|(dx, cols)| {
                for (p, src) in cols.chunks_exact(row).enumerate() {
                    let (oy, ox) = (p / wo, p % wo);
                    for ky in 0..g.k {
                        for kx in 0..g.k {
                            if let Some(dst) = g.source(oy, ox, ky, kx) {
                                let at = (ky * g.k + kx) * g.c;
                                let dst = &mut dx[dst * g.c..(dst + 1) * g.c];
                                for (d, &v) in dst.iter_mut().zip(&src[at..at + g.c]) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(dx), Shape::from((g.batch, g.h, g.w, g.c))))
    }
}

/// Stride-1 convolution of NHWC `x` `(B, H, W, C_in)` with a PyTorch/candle-layout kernel
/// `(C_out, C_in, k, k)`, zero padding `pad` → NHWC `(B, Ho, Wo, C_out)`. CPU, f32.
pub fn conv2d_nhwc(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
) -> Result<Tensor> {
    let (batch, h, w, c_in) = x.dims4()?;
    let (c_out, wc_in, k, k2) = weight.dims4()?;
    if wc_in != c_in
        || c_in == 0
        || h == 0
        || w == 0
        || k != k2
        || k == 0
        || h + 2 * pad < k
        || w + 2 * pad < k
    {
        bail!(
            "conv2d_nhwc: input {:?} does not fit kernel {:?} with padding {pad}",
            x.shape(),
            weight.shape()
        )
    }
    let (ho, wo) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
    // A 1×1 kernel without padding reads the input as its own im2col matrix.
    let cols = if k == 1 && pad == 0 {
        x.contiguous()?.reshape((batch * h * w, c_in))?
    } else {
        x.contiguous()?.apply_op1(Im2Col { k, pad })?
    };
    // Kernel rows in the columns' (ky, kx, c) order.
    let kernel = weight
        .permute((0, 2, 3, 1))?
        .reshape((c_out, k * k * c_in))?;
    super::linear(&cols, &kernel, bias)?.reshape((batch, ho, wo, c_out))
}
