//! Mixed precision (`training.mixed_precision`): on CUDA and Metal a step's forward and
//! backward passes run in bf16 or f16 while everything that accumulates stays f32 — the
//! parameters (the "master weights"), the optimizer's moments, the gradients it applies, the
//! loss, and every evaluation (the result is the f32 weights, measured in f32, so a verifier
//! on any device measures what the worker measured).
//!
//! Each step builds its model anew from the f32 parameters cast to the compute type
//! ([`crate::trainer::Built::step_model`]): the casts are nodes of the step's graph, so the
//! gradients flow back through them to the f32 parameters, and the next step's casts see the
//! optimizer's update. Layer norm and softmax compute their statistics in f32 on half inputs
//! ([`crate::kernels`]); the logits come back as f32 before the loss.
//!
//! f16 has too little range for small gradients: its loss is multiplied by a scale before the
//! backward pass and the gradients divided by it after (powers of two: both exact). When a
//! gradient overflows, the step is computed again at the next smaller of
//! [`F16_LOSS_SCALES`]; each step starts from the same scale, so the run keeps no scaling
//! state and a re-run of any segment scales exactly as the original did.
//!
//! The CPU ignores the setting: its half-precision paths are slower than its fused f32
//! kernels, and its results are bit-exact only within its own device class anyway.

use candle_core::{DType, Device};

use crate::spec::{HalfPrecision, TrainingSpec};

/// The loss scales an f16 step tries, in order, until its gradients are all finite: 2¹²
/// (enough to keep GPT-style gradients above f16's smallest subnormal, small enough that they
/// rarely overflow its 65,504), then 2⁶, then none. At most three passes a step, whatever the
/// data: a poster who knows the seed can make later batches overflow, so a worker's time
/// estimate counts every f16 step at three ([`worst_case_passes`]).
pub const F16_LOSS_SCALES: [f64; 3] = [4096.0, 64.0, 1.0];

/// The type a step's forward and backward passes compute in on `device`.
pub fn compute_dtype(t: &TrainingSpec, device: &Device) -> DType {
    on_device(t, device.is_cpu())
}

/// The spec's compute type on a device that is the CPU or not: the CPU always computes in f32.
fn on_device(t: &TrainingSpec, cpu: bool) -> DType {
    match (t.mixed_precision, cpu) {
        (None, _) | (_, true) => DType::F32,
        (Some(HalfPrecision::Bf16), false) => DType::BF16,
        (Some(HalfPrecision::F16), false) => DType::F16,
    }
}

/// The loss scales a step computing in `dtype` tries: only f16 needs any.
pub fn loss_scales(dtype: DType) -> &'static [f64] {
    if dtype == DType::F16 {
        &F16_LOSS_SCALES
    } else {
        &[1.0]
    }
}

/// Forward and backward passes a step may take at most in `dtype`.
pub fn worst_case_passes(dtype: DType) -> u32 {
    loss_scales(dtype).len() as u32
}

/// What a manifest says the steps computed in on a device of kind `device` (a manifest's
/// `device`: `cpu`, `cuda`, `metal`): `None` for f32. The verifier holds a result to it.
pub fn manifest_name(t: &TrainingSpec, device: &str) -> Option<String> {
    match on_device(t, device == "cpu") {
        DType::F32 => None,
        half => Some(dtype_name(half).into()),
    }
}

/// A compute type asked for over the spec's (`tensorgrid bench --precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    F32,
    Half(HalfPrecision),
}

impl Choice {
    /// The spec's training as if it had asked for this.
    pub fn apply(self, t: &mut TrainingSpec) {
        t.mixed_precision = match self {
            Choice::F32 => None,
            Choice::Half(h) => Some(h),
        };
    }
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Choice::F32),
            "bf16" => Ok(Choice::Half(HalfPrecision::Bf16)),
            "f16" => Ok(Choice::Half(HalfPrecision::F16)),
            other => Err(format!("unknown precision `{other}` (f32, bf16, f16)")),
        }
    }
}

/// The name of a compute type, f32 included.
pub fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        _ => "f32",
    }
}
