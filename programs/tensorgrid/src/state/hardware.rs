use anchor_lang::prelude::*;

use crate::errors::TensorgridError;

/// The accelerator a worker trains on.
#[derive(
    AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum DeviceKind {
    /// CPU only.
    #[default]
    Cpu,
    /// An NVIDIA GPU (CUDA).
    Cuda,
    /// An Apple GPU (Metal).
    Metal,
}

/// What a job needs from a worker's device.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequirement {
    /// Any device, CPU included.
    Any,
    /// Any GPU (CUDA or Metal).
    Gpu,
    /// A CUDA GPU.
    Cuda,
    /// A Metal GPU.
    Metal,
}

impl DeviceRequirement {
    /// Whether a worker with a `kind` device may claim a job with this requirement.
    pub fn accepts(&self, kind: DeviceKind) -> bool {
        match self {
            DeviceRequirement::Any => true,
            DeviceRequirement::Gpu => kind != DeviceKind::Cpu,
            DeviceRequirement::Cuda => kind == DeviceKind::Cuda,
            DeviceRequirement::Metal => kind == DeviceKind::Metal,
        }
    }
}

/// A worker's self-reported hardware profile.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Debug, PartialEq, Eq)]
pub struct Hardware {
    /// The device the worker trains on.
    pub device: DeviceKind,
    /// Device memory in MiB (0 for CPU workers).
    pub vram_mib: u32,
    /// Free-form description, e.g. "RTX 4090". At most `MAX_LABEL_LEN` bytes.
    #[max_len(32)]
    pub label: String,
}

impl Hardware {
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.label.len() <= crate::constants::MAX_LABEL_LEN,
            TensorgridError::LabelTooLong
        );
        Ok(())
    }
}

/// The hardware a job requires of the worker that claims it.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobRequirements {
    /// Which devices may claim the job.
    pub device: DeviceRequirement,
    /// Least device memory, in MiB (0: no minimum).
    pub min_vram_mib: u32,
}

impl JobRequirements {
    /// Ok when `hw` can run the job; otherwise the specific mismatch.
    pub fn check(&self, hw: &Hardware) -> Result<()> {
        ensure!(
            self.device.accepts(hw.device),
            TensorgridError::DeviceMismatch
        );
        ensure!(
            hw.vram_mib >= self.min_vram_mib,
            TensorgridError::InsufficientVram
        );
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requirement_matrix() {
        use DeviceKind::*;
        use DeviceRequirement as R;
        let table = [
            (R::Any, [true, true, true]),
            (R::Gpu, [false, true, true]),
            (R::Cuda, [false, true, false]),
            (R::Metal, [false, false, true]),
        ];
        for (req, expect) in table {
            for (kind, ok) in [Cpu, Cuda, Metal].into_iter().zip(expect) {
                assert_eq!(req.accepts(kind), ok, "{req:?} vs {kind:?}");
            }
        }
    }
}
