//! Fused CPU kernels, as candle `CustomOp`s with their backward passes, for the ops that
//! dominate CPU training time when composed from candle's generic element-wise ops: GELU,
//! softmax, layer norm, cross-entropy, convolution (im2col + gemm), max-pooling and ReLU.
//!
//! Composed, each of these is a chain of strided maps, each allocating its result, with
//! scalar libm `exp`/`tanh`/`powf` inside; fused, it is one or two contiguous passes whose
//! loops the compiler vectorises.
//!
//! Every public function takes the fused path for f32 tensors on the CPU and falls back to
//! candle's own ops elsewhere (CUDA, Metal), so models call one function on any device.
//!
//! Determinism: the kernels are plain loops in a fixed order, built only from IEEE-rounded
//! `+ - * /` and `sqrt` (no FMA contraction, no libm in per-element paths), and where they run
//! in parallel each output element is computed by one thread from the same inputs in the same
//! order. Results are therefore bit-identical across runs, thread counts and x86-64 vector
//! widths.

mod adamw;
mod bias;
mod conv;
mod cross_entropy;
mod fastmath;
mod gelu;
mod layer_norm;
mod pool;
mod relu;
mod softmax;

use candle_core::{backend::BackendStorage, bail, CpuStorage, DType, Layout, Tensor};
use rayon::prelude::*;

pub use adamw::{adamw_step, AdamW};
pub use bias::{dense, linear, linear_in_out};
pub use conv::conv2d_nhwc;
pub use cross_entropy::cross_entropy;
pub use gelu::gelu;
pub use layer_norm::layer_norm;
pub use pool::{max_pool2_nchw, max_pool2_nhwc};
pub use relu::{add_relu, relu};
pub use softmax::{causal_mask, causal_softmax};

/// Rows handed to one rayon task: large enough that scheduling costs nothing next to the work.
const PAR_ELEMS: usize = 1 << 14;

/// Whether `t` takes the fused CPU path.
fn fused(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Whether `t` is in a half type (mixed precision): the fallbacks then take their sums in f32.
fn half(t: &Tensor) -> bool {
    matches!(t.dtype(), DType::F16 | DType::BF16)
}

/// The f32 elements of a contiguous CPU tensor (the public wrappers make inputs contiguous).
fn f32s<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: expected f32, got {:?}", s.dtype())
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&v[start..end]),
        None => bail!("{op}: expected a contiguous tensor"),
    }
}

/// `f` of each element of `x`, in parallel chunks (each element by one thread).
fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(PAR_ELEMS)
        .zip(x.par_chunks(PAR_ELEMS))
        .for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = f(x);
            }
        });
    y
}

/// `f` of each pair of elements of `a` and `b`.
fn map2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let mut y = vec![0f32; a.len()];
    y.par_chunks_mut(PAR_ELEMS)
        .zip(a.par_chunks(PAR_ELEMS).zip(b.par_chunks(PAR_ELEMS)))
        .for_each(|(y, (a, b))| {
            for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
                *y = f(a, b);
            }
        });
    y
}

/// `f` of each triple of elements of `a`, `b` and `c`.
fn map3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32 + Sync) -> Vec<f32> {
    let mut y = vec![0f32; a.len()];
    y.par_chunks_mut(PAR_ELEMS)
        .zip(a.par_chunks(PAR_ELEMS))
        .zip(b.par_chunks(PAR_ELEMS).zip(c.par_chunks(PAR_ELEMS)))
        .for_each(|((y, a), (b, c))| {
            for (((y, &a), &b), &c) in y.iter_mut().zip(a).zip(b).zip(c) {
                *y = f(a, b, c);
            }
        });
    y
}

/// Running sums in a row reduction: [`fold_lanes`] keeps this many, one per element position
/// mod `LANES`, so the adds are independent and vectorise; a single running sum is one chain of
/// dependent adds, a few cycles each.
const LANES: usize = 8;

/// `Σ f(a[i], b[i])` over equal-length `a` and `b` in a fixed order that vectorises: `LANES`
/// running sums over the positions mod `LANES`, added pairwise in a fixed tree, then the
/// tail's terms in order. The order is the code's, not the machine's: the same bits on any
/// thread count and vector width.
#[inline(always)]
fn fold_lanes2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (ca, cb) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += f(ca[l], cb[l]);
        }
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    let mut sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    for (&a, &b) in ta.iter().zip(tb) {
        sum += f(a, b);
    }
    sum
}

/// `Σ f(x[i])`, in [`fold_lanes2`]'s order.
#[inline(always)]
fn fold_lanes(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    fold_lanes2(x, x, |v, _| f(v))
}

/// Rows per parallel task for rows of `width` elements.
fn rows_per_task(width: usize) -> usize {
    (PAR_ELEMS / width.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented order, written out: position i goes to running sum i mod 8 (the full
    /// groups only), the eight are added as ((0+1)+(2+3))+((4+5)+(6+7)), then the tail in order.
    fn reference(x: &[f32]) -> f32 {
        let whole = x.len() / LANES * LANES;
        let mut acc = [0f32; LANES];
        for (i, &v) in x[..whole].iter().enumerate() {
            acc[i % LANES] += v;
        }
        let mut sum =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for &v in &x[whole..] {
            sum += v;
        }
        sum
    }

    #[test]
    fn lane_sums_follow_their_documented_order_at_every_length() {
        // Values of mixed sizes, so that another order gives other bits.
        let x: Vec<f32> = (0..200)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 10f32.powi(i % 7 - 3))
            .collect();
        for n in 0..x.len() {
            let x = &x[..n];
            assert_eq!(
                fold_lanes(x, |v| v).to_bits(),
                reference(x).to_bits(),
                "n = {n}"
            );
            let exact: f64 = x.iter().map(|&v| v as f64).sum();
            let scale: f64 = x.iter().map(|&v| (v as f64).abs()).sum::<f64>().max(1.0);
            assert!(
                (fold_lanes(x, |v| v) as f64 - exact).abs() <= 1e-5 * scale,
                "n = {n}"
            );
        }
        // The sequential sum differs somewhere: the test above would notice a change of order.
        let seq: f32 = x.iter().sum();
        assert_ne!(seq.to_bits(), fold_lanes(&x, |v| v).to_bits());
        let doubled = fold_lanes2(&x, &x, |a, b| a + b);
        assert_eq!(
            doubled.to_bits(),
            reference(&x.iter().map(|v| v + v).collect::<Vec<_>>()).to_bits()
        );
    }
}
