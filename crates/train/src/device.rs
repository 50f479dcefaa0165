//! Device choice, made once per run: a forced choice is honoured or fails clearly; `auto`
//! prefers CUDA, then Metal, then the CPU.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "metal" => Ok(Self::Metal),
            other => Err(format!("unknown device `{other}` (auto, cpu, cuda, metal)")),
        }
    }
}

pub fn select(choice: DeviceChoice) -> Result<Device> {
    let unavailable =
        |what: &str, why: String| Error::Device(format!("{what} requested but unavailable: {why}"));
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => {
            if !candle_core::utils::cuda_is_available() {
                return Err(unavailable(
                    "cuda",
                    "this build lacks the `cuda` feature".into(),
                ));
            }
            Device::new_cuda(0).map_err(|e| unavailable("cuda", e.to_string()))
        }
        DeviceChoice::Metal => {
            if !candle_core::utils::metal_is_available() {
                return Err(unavailable(
                    "metal",
                    "this build lacks the `metal` feature".into(),
                ));
            }
            Device::new_metal(0).map_err(|e| unavailable("metal", e.to_string()))
        }
        DeviceChoice::Auto => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            if candle_core::utils::metal_is_available() {
                if let Ok(d) = Device::new_metal(0) {
                    return Ok(d);
                }
            }
            Ok(Device::Cpu)
        }
    }
}

/// The accelerator's own name and memory in MiB, as the driver reports them (`None` for the
/// CPU, or where the backend does not say). What a provider registers on chain.
pub fn accelerator(device: &Device) -> Option<(String, u64)> {
    match device {
        Device::Cpu => None,
        #[cfg(feature = "cuda")]
        Device::Cuda(d) => {
            let stream = d.cuda_stream();
            let ctx = stream.context();
            let name = ctx.name().unwrap_or_else(|_| "CUDA GPU".into());
            let mib = ctx.total_mem().map_or(0, |b| (b as u64) >> 20);
            Some((name, mib))
        }
        #[cfg(feature = "metal")]
        Device::Metal(_) => {
            // Apple GPUs share the machine's memory; Metal's working-set figure is not exposed
            // through candle's device, so none is claimed.
            Some(("Apple GPU (Metal)".into(), 0))
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// An accelerator's class within its kind: bits agree only between devices of one class. On
/// CUDA, cuBLAS picks its GEMM algorithms by architecture and SM count (its documentation
/// promises bit-wise equal results only for the same architecture, SM count and toolkit), so
/// the class is the model, compute capability and SM count, e.g. `NVIDIA H200 sm_90 132 SMs`.
/// Metal does not expose as much through candle: the class is the kind alone.
pub fn accelerator_class(device: &Device) -> String {
    match device {
        Device::Cpu => cpu_isa(),
        #[cfg(feature = "cuda")]
        Device::Cuda(d) => {
            use candle_core::cuda_backend::cudarc::driver::sys::CUdevice_attribute;
            let stream = d.cuda_stream();
            let ctx = stream.context();
            let name = ctx.name().unwrap_or_else(|_| "CUDA GPU".into());
            let (major, minor) = ctx.compute_capability().unwrap_or((0, 0));
            let sms = ctx
                .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                .unwrap_or(0);
            format!("{name} sm_{major}{minor} {sms} SMs")
        }
        #[allow(unreachable_patterns)]
        _ => String::new(),
    }
}

/// Short name recorded in the result manifest.
pub fn name(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Metal(_) => "metal",
    }
}

/// The CPU's ISA class: results are bit-exact only between machines of the same class
/// (FMA changes rounding).
pub fn cpu_isa() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        match (avx2 && fma, avx512) {
            (true, true) => "x86_64-v4 (avx512f, avx2, fma)".into(),
            (true, false) => "x86_64-v3 (avx2, fma)".into(),
            _ => format!("x86_64 (avx2={avx2}, fma={fma})"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}
