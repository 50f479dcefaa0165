//! AdamW's update in one pass over a parameter, in place, on the CPU: the very f32 operations,
//! in the same order, that the composed candle ops of [`crate::optim`] perform (an affine map
//! is `v * mul + add`, with `mul` and `add` rounded to f32 first), so the bits are the same,
//! without the dozen full-size temporaries each parameter's update allocates composed.

use std::sync::Mutex;

use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result, Tensor};
use rayon::prelude::*;

use super::{f32s, PAR_ELEMS};

/// One AdamW step's settings (`t` the step number, from 1).
#[derive(Debug, Clone, Copy)]
pub struct AdamW {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub t: i32,
}

/// The step's constants as candle's affine maps round them.
#[derive(Clone, Copy)]
struct Consts {
    b1: f32,
    c1: f32,
    b2: f32,
    c2: f32,
    bc1: f32,
    bc2: f32,
    decay: f32,
    eps: f32,
    lr: f32,
}

impl Consts {
    fn of(a: &AdamW) -> Self {
        Self {
            b1: a.beta1 as f32,
            c1: (1.0 - a.beta1) as f32,
            b2: a.beta2 as f32,
            c2: (1.0 - a.beta2) as f32,
            // `tensor / x` is the affine map `v * (1 / x) + 0`.
            bc1: (1.0 / (1.0 - a.beta1.powi(a.t))) as f32,
            bc2: (1.0 / (1.0 - a.beta2.powi(a.t))) as f32,
            decay: (1.0 - a.lr * a.weight_decay) as f32,
            eps: a.eps as f32,
            lr: a.lr as f32,
        }
    }
}

/// One element: `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`, and the parameter decayed and
/// moved by `lr · m̂ / (√v̂ + ε)`, each operation rounded as its candle op rounds it (the `+ 0.0`
/// and `* 1.0` are those ops' own, kept for their effect on signed zeros).
#[inline(always)]
fn element(k: &Consts, p: f32, g: f32, m: &mut f32, v: &mut f32) -> f32 {
    let m1 = (*m * k.b1 + 0.0) + (g * k.c1 + 0.0);
    let v1 = (*v * k.b2 + 0.0) + ((g * g) * k.c2 + 0.0);
    *m = m1;
    *v = v1;
    let m_hat = m1 * k.bc1 + 0.0;
    let v_hat = v1 * k.bc2 + 0.0;
    let decayed = p * k.decay + 0.0;
    let update = m_hat / (v_hat.sqrt() * 1.0 + k.eps);
    decayed - (update * k.lr + 0.0)
}

struct Step<'a> {
    k: Consts,
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
}

impl InplaceOp2 for Step<'_> {
    fn name(&self) -> &'static str {
        "tg-adamw"
    }

    fn cpu_fwd(&self, p: &mut CpuStorage, pl: &Layout, g: &CpuStorage, gl: &Layout) -> Result<()> {
        let g = f32s(g, gl, self.name())?;
        let CpuStorage::F32(p) = p else {
            bail!("tg-adamw: expected f32 parameters")
        };
        let Some((start, end)) = pl.contiguous_offsets() else {
            bail!("tg-adamw: expected contiguous parameters")
        };
        let p = &mut p[start..end];
        let mut guard = self
            .moments
            .lock()
            .map_err(|_| candle_core::Error::Msg("tg-adamw: moments poisoned".into()))?;
        let (m, v) = &mut *guard;
        if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
            bail!(
                "tg-adamw: {} parameters, {} gradients, {} and {} moments",
                p.len(),
                g.len(),
                m.len(),
                v.len()
            )
        }
        let k = self.k;
        // Each element on its own: any split over threads gives the same bits.
        p.par_chunks_mut(PAR_ELEMS)
            .zip(g.par_chunks(PAR_ELEMS))
            .zip(m.par_chunks_mut(PAR_ELEMS))
            .zip(v.par_chunks_mut(PAR_ELEMS))
            .for_each(|(((p, g), m), v)| {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
                    *p = element(&k, *p, g, m, v);
                }
            });
        Ok(())
    }
}

/// Applies one AdamW step to `param` (an f32 CPU tensor, updated in place) from `grad` (its
/// shape), with the moments `m` and `v` (one value a parameter, updated in place).
pub fn adamw_step(
    a: &AdamW,
    param: &Tensor,
    grad: &Tensor,
    m: &mut [f32],
    v: &mut [f32],
) -> Result<()> {
    if param.dims() != grad.dims() {
        bail!(
            "tg-adamw: parameter {:?}, gradient {:?}",
            param.dims(),
            grad.dims()
        )
    }
    let grad = grad.contiguous()?;
    let op = Step {
        k: Consts::of(a),
        moments: Mutex::new((m, v)),
    };
    param.inplace_op2(&grad, &op)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::Rng;

    use super::*;

    /// The composed update of `crate::optim` (as it was written there), for comparison.
    fn composed(a: &AdamW, p: &Var, g: &Tensor, m: &Tensor, v: &Tensor) -> (Tensor, Tensor) {
        let t = a.t;
        let m = ((m * a.beta1).unwrap() + (g * (1.0 - a.beta1)).unwrap()).unwrap();
        let v = ((v * a.beta2).unwrap() + (g.sqr().unwrap() * (1.0 - a.beta2)).unwrap()).unwrap();
        let m_hat = (&m / (1.0 - a.beta1.powi(t))).unwrap();
        let v_hat = (&v / (1.0 - a.beta2.powi(t))).unwrap();
        let decayed = (p.as_tensor() * (1.0 - a.lr * a.weight_decay)).unwrap();
        let update = (m_hat / (v_hat.sqrt().unwrap() + a.eps).unwrap()).unwrap();
        p.set(&(decayed - (update * a.lr).unwrap()).unwrap())
            .unwrap();
        (m, v)
    }

    /// Ten steps from the same start, fused and composed, on values that include zeros of
    /// both signs, tiny and large gradients: the same bits throughout.
    #[test]
    fn the_fused_step_is_the_composed_one_to_the_bit() {
        let mut r = crate::rng::stream(1, "adamw-test", 0);
        let n = 70_001; // several parallel chunks and a ragged end
        let start: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
        let (fused_p, composed_p) = (
            Var::from_slice(&start, n, &Device::Cpu).unwrap(),
            Var::from_slice(&start, n, &Device::Cpu).unwrap(),
        );
        let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
        let (mut cm, mut cv) = (
            Tensor::zeros(n, candle_core::DType::F32, &Device::Cpu).unwrap(),
            Tensor::zeros(n, candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
        for t in 1..=10 {
            let grad: Vec<f32> = (0..n)
                .map(|i| match i % 7 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => r.random_range(-1e-30..1e-30),
                    3 => r.random_range(-1e4..1e4),
                    _ => r.random_range(-1.0..1.0),
                })
                .collect();
            let g = Tensor::from_slice(&grad, n, &Device::Cpu).unwrap();
            let a = AdamW {
                lr: 3e-3 * (1.0 - t as f64 / 20.0),
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
                t,
            };
            adamw_step(&a, fused_p.as_tensor(), &g, &mut m, &mut v).unwrap();
            (cm, cv) = composed(&a, &composed_p, &g, &cm, &cv);
            let bits = |t: &Tensor| -> Vec<u32> {
                t.to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect()
            };
            assert_eq!(
                bits(fused_p.as_tensor()),
                bits(composed_p.as_tensor()),
                "step {t}"
            );
            let host = |x: &[f32]| x.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(host(&m), bits(&cm), "m, step {t}");
            assert_eq!(host(&v), bits(&cv), "v, step {t}");
        }
    }
}
