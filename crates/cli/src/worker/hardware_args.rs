use anyhow::Result;
use clap::{Args, ValueEnum};
use tensorgrid_client::state::{DeviceKind, Hardware};
use tensorgrid_train::device::DeviceChoice;

use tensorgrid_worker::hardware::{detect, truncate};

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DeviceKindArg {
    Cpu,
    Cuda,
    Metal,
}

/// The hardware to record: detected (`--detect auto|cpu|cuda|metal`) with any field given
/// overriding it.
#[derive(Args, Debug, Clone, Default)]
pub struct HardwareArgs {
    /// Detect the device: auto, cpu, cuda or metal.
    #[arg(long, default_value = "auto")]
    pub detect: DeviceChoice,
    /// The device kind, instead of detecting it.
    #[arg(long, value_enum)]
    pub device: Option<DeviceKindArg>,
    /// Device memory in MiB (GPUs).
    #[arg(long)]
    pub vram: Option<u32>,
    /// A description, e.g. "RTX 4090" (at most 32 bytes).
    #[arg(long)]
    pub label: Option<String>,
}

impl HardwareArgs {
    pub fn given(&self) -> bool {
        self.device.is_some() || self.vram.is_some() || self.label.is_some()
    }

    pub fn resolve(&self) -> Result<Hardware> {
        let (mut h, _) = detect(match self.device {
            Some(_) => DeviceChoice::Cpu,
            None => self.detect,
        })?;
        if let Some(d) = self.device {
            h.device = match d {
                DeviceKindArg::Cpu => DeviceKind::Cpu,
                DeviceKindArg::Cuda => DeviceKind::Cuda,
                DeviceKindArg::Metal => DeviceKind::Metal,
            };
            if h.device != DeviceKind::Cpu && self.label.is_none() {
                h.label = String::new();
            }
        }
        if let Some(v) = self.vram {
            h.vram_mib = v;
        }
        if let Some(l) = &self.label {
            if l.len() > tensorgrid_client::constants::MAX_LABEL_LEN {
                anyhow::bail!("--label {l:?} is longer than 32 bytes");
            }
            h.label = truncate(l, tensorgrid_client::constants::MAX_LABEL_LEN);
        }
        Ok(h)
    }
}
