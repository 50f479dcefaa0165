//! The hardware a provider registers: detected from the training device, or given. Shared
//! with the worker daemon, which registers (and updates) the same way.

use anyhow::Result;
use tensorgrid_client::{
    constants::MAX_LABEL_LEN,
    state::{DeviceKind, Hardware},
};
use tensorgrid_train::device::{self, DeviceChoice};

/// The device `choice` selects on this machine: its kind and a label (the CPU model and
/// thread count for a CPU). GPU memory is not measured here; pass it with `--vram`.
pub fn detect(choice: DeviceChoice) -> Result<Hardware> {
    let dev = device::select(choice)?;
    let (kind, label) = match device::name(&dev) {
        "cuda" => (DeviceKind::Cuda, "CUDA GPU".to_string()),
        "metal" => (DeviceKind::Metal, "Apple GPU".to_string()),
        _ => (DeviceKind::Cpu, cpu_label()),
    };
    Ok(Hardware {
        device: kind,
        vram_mib: 0,
        label: truncate(&label, MAX_LABEL_LEN),
    })
}

/// `"AMD EPYC 7B13 ×2"`: the model name from /proc/cpuinfo (or the architecture) and the
/// threads available.
fn cpu_label() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let suffix = format!(" x{threads}");
    format!("{}{suffix}", truncate(&model, MAX_LABEL_LEN - suffix.len()))
}

/// At most `max` bytes, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_detection_fits_the_label() {
        let h = detect(DeviceChoice::Cpu).unwrap();
        assert_eq!(h.device, DeviceKind::Cpu);
        assert!(
            !h.label.is_empty() && h.label.len() <= MAX_LABEL_LEN,
            "{}",
            h.label
        );
        assert_eq!(truncate("héllo", 2), "h");
    }
}
