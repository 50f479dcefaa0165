//! ReLU, and a residual's sum followed by ReLU, with one-pass backward passes.
//!
//! candle's ReLU backward builds a zero tensor, compares the input with it, converts the
//! comparison to floats and multiplies: four passes and three buffers per ReLU, on every
//! activation map of the CNN and the ResNet. These compute the same values in one pass: the
//! forward is candle's `max(x, 0)`, the backward `g · [x ≥ 0]` (its mask, so the bits are
//! candle's own).

use super::{f32s, fused, map, map2, map3};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// candle's ReLU backward factor: 1 where the input is ≥ 0 (zero included), else 0.
#[inline(always)]
fn mask(x: f32) -> f32 {
    if x >= 0.0 {
        1.0
    } else {
        0.0
    }
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "tg-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s, l, self.name())?;
        Ok((CpuStorage::F32(map(x, |x| x.max(0.0))), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &ReluGrad)?))
    }
}

/// (x, upstream gradient) → gradient with respect to x.
struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "tg-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (f32s(s1, l1, self.name())?, f32s(s2, l2, self.name())?);
        Ok((
            CpuStorage::F32(map2(x, g, |x, g| g * mask(x))),
            l1.shape().clone(),
        ))
    }
}

/// ReLU of `a + b`.
struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "tg-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (f32s(s1, l1, self.name())?, f32s(s2, l2, self.name())?);
        Ok((
            CpuStorage::F32(map2(a, b, |a, b| (a + b).max(0.0))),
            l1.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // The sum is recomputed (one add, exact) rather than kept: the output alone cannot
        // tell a sum of 0 (gradient passes) from a negative one (it does not).
        let g = a.apply_op3_no_bwd(b, &grad.contiguous()?, &AddReluGrad)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// (a, b, upstream gradient) → `g · [a + b ≥ 0]`, the gradient of both.
struct AddReluGrad;

impl CustomOp3 for AddReluGrad {
    fn name(&self) -> &'static str {
        "tg-add-relu-grad"
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
        let name = self.name();
        let (a, b, g) = (
            f32s(s1, l1, name)?,
            f32s(s2, l2, name)?,
            f32s(s3, l3, name)?,
        );
        Ok((
            CpuStorage::F32(map3(a, b, g, |a, b, g| g * mask(a + b))),
            l1.shape().clone(),
        ))
    }
}

/// ReLU, element-wise.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if fused(x) {
        x.contiguous()?.apply_op1(Relu)
    } else {
        x.relu()
    }
}

/// ReLU of `a + b` (same shapes): a residual block's output.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fused(a) && fused(b) && a.shape() == b.shape() {
        a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
    } else {
        (a + b)?.relu()
    }
}
