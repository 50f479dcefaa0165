//! GELU, tanh approximation (what candle's `gelu` and PyTorch's `approximate="tanh"` compute).

use super::{f32s, fastmath, fused, map, map2};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};

const K: f32 = 0.797_884_6; // √(2/π)
const C: f32 = 0.044_715;

#[inline(always)]
fn forward(x: f32) -> f32 {
    0.5 * x * (1.0 + fastmath::tanh(K * (x + C * x * x * x)))
}

/// d gelu / dx.
#[inline(always)]
fn derivative(x: f32) -> f32 {
    let t = fastmath::tanh(K * (x + C * x * x * x));
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * K * (1.0 + 3.0 * C * x * x)
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "tg-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s, l, self.name())?;
        Ok((CpuStorage::F32(map(x, forward)), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?))
    }
}

/// (x, upstream gradient) → gradient with respect to x.
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "tg-gelu-grad"
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
            CpuStorage::F32(map2(x, g, |x, g| g * derivative(x))),
            l1.shape().clone(),
        ))
    }
}

/// GELU (tanh approximation), element-wise.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if fused(x) {
        x.contiguous()?.apply_op1(Gelu)
    } else if super::half(x) {
        // Mixed precision: candle's GELU backward cubes its input in the tensor's own type,
        // which overflows f16 for |x| > 40 and turns the gradient into inf · 0 = NaN.
        x.to_dtype(DType::F32)?.gelu()?.to_dtype(x.dtype())
    } else {
        x.gelu()
    }
}
