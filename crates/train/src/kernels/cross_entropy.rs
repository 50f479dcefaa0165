//! Mean cross-entropy of logits against class indices, forward and backward each one pass
//! (candle-nn's is log-softmax — five ops — then a gather, a sum and a division).

use candle_core::{
    backend::BackendStorage, bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor,
};
use rayon::prelude::*;
use std::sync::Mutex;

use super::{f32s, fastmath, fused, rows_per_task};

/// Class indices from a u32 or i64 tensor, each checked against the class count.
fn targets(s: &CpuStorage, l: &Layout, classes: usize, op: &str) -> Result<Vec<usize>> {
    let Some((start, end)) = l.contiguous_offsets() else {
        bail!("{op}: expected contiguous targets")
    };
    let idx: Vec<i64> = match s {
        CpuStorage::U32(v) => v[start..end].iter().map(|&t| t as i64).collect(),
        CpuStorage::I64(v) => v[start..end].to_vec(),
        other => bail!("{op}: targets must be u32 or i64, got {:?}", other.dtype()),
    };
    idx.into_iter()
        .map(|t| {
            usize::try_from(t)
                .ok()
                .filter(|&t| t < classes)
                .ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "{op}: target {t} is not a class in 0..{classes}"
                    ))
                })
        })
        .collect()
}

/// The logits as `(rows, classes)` and the targets, checked against each other.
fn logits_and_targets<'a>(
    s1: &'a CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    op: &str,
) -> Result<(&'a [f32], Vec<usize>, usize)> {
    let x = f32s(s1, l1, op)?;
    let classes = l1.shape().dims().last().copied().unwrap_or(0);
    let t = targets(s2, l2, classes, op)?;
    match l1.shape().dims() {
        &[rows, classes] if rows == t.len() && rows > 0 && classes > 0 => Ok((x, t, classes)),
        _ => bail!(
            "{op}: logits {:?} do not match {} targets",
            l1.shape(),
            t.len()
        ),
    }
}

/// log Σ exp(row), computed around the row's maximum.
#[inline(always)]
fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0f32;
    for &v in row {
        sum += fastmath::exp(v - max);
    }
    max + sum.ln()
}

/// Keeps each row's log Σ exp from the forward pass for the backward pass, which needs the
/// same numbers (recomputing them was two of the five passes over the logits, a tenth of a
/// GPT-2 step at a 2,048-word vocabulary).
#[derive(Default)]
struct CrossEntropy {
    lse: Mutex<Option<Vec<f32>>>,
}

/// Each row's log Σ exp, in parallel (each row by one thread, so the same numbers whatever
/// the thread count).
fn row_lse(x: &[f32], classes: usize) -> Vec<f32> {
    let mut lse = vec![0f32; x.len() / classes];
    let per_task = rows_per_task(classes);
    lse.par_chunks_mut(per_task)
        .zip(x.par_chunks(per_task * classes))
        .for_each(|(lse, x)| {
            for (lse, row) in lse.iter_mut().zip(x.chunks_exact(classes)) {
                *lse = log_sum_exp(row);
            }
        });
    lse
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "tg-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, t, classes) = logits_and_targets(s1, l1, s2, l2, self.name())?;
        let rows = t.len();
        let lse = row_lse(x, classes);
        // Summed in f64, in row order: exact enough and independent of threading.
        let total: f64 = x
            .chunks_exact(classes)
            .zip(&t)
            .zip(&lse)
            .map(|((row, &t), &lse)| (lse - row[t]) as f64)
            .sum();
        *self.lse.lock().unwrap_or_else(|e| e.into_inner()) = Some(lse);
        Ok((
            CpuStorage::F32(vec![(total / rows as f64) as f32]),
            Shape::from(()),
        ))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let lse = self.lse.lock().unwrap_or_else(|e| e.into_inner()).take();
        let d = logits.apply_op3_no_bwd(targets, &grad.contiguous()?, &CrossEntropyGrad { lse })?;
        Ok((Some(d), None))
    }
}

/// (logits, targets, upstream scalar gradient) → `g/rows · (softmax(logits) − onehot(target))`,
/// with the forward pass's per-row log Σ exp when it kept them.
struct CrossEntropyGrad {
    lse: Option<Vec<f32>>,
}

impl CustomOp3 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "tg-cross-entropy-grad"
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
        let (x, t, classes) = logits_and_targets(s1, l1, s2, l2, self.name())?;
        let rows = t.len();
        let g = f32s(s3, l3, self.name())?;
        let &[g] = g else {
            bail!("{}: expected a scalar gradient", self.name())
        };
        let coeff = g / rows as f32;
        let lse = match &self.lse {
            Some(lse) if lse.len() == rows => std::borrow::Cow::Borrowed(lse),
            _ => std::borrow::Cow::Owned(row_lse(x, classes)),
        };
        let mut dx = vec![0f32; x.len()];
        let chunk = rows_per_task(classes);
        dx.par_chunks_mut(chunk * classes)
            .zip(x.par_chunks(chunk * classes).zip(t.par_chunks(chunk)))
            .zip(lse.par_chunks(chunk))
            .for_each(|((dx, (x, t)), lse)| {
                for (((dx, x), &t), &lse) in dx
                    .chunks_exact_mut(classes)
                    .zip(x.chunks_exact(classes))
                    .zip(t)
                    .zip(lse)
                {
                    for (dx, &x) in dx.iter_mut().zip(x) {
                        *dx = fastmath::exp(x - lse) * coeff;
                    }
                    dx[t] -= coeff;
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// Mean cross-entropy of `(rows, classes)` logits against `(rows)` class indices (u32 or i64).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if fused(logits) {
        logits
            .contiguous()?
            .apply_op2(&targets.contiguous()?, CrossEntropy::default())
    } else {
        candle_nn::loss::cross_entropy(logits, targets)
    }
}
