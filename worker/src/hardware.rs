//! The hardware a provider registers: detected from the training device (CUDA: the card's
//! name and memory from the driver; Metal: the Apple GPU; else the CPU's model and threads).
//! The wallet CLI's `worker register` uses the same detection.

use tensorgrid_client::{
    constants::MAX_LABEL_LEN,
    state::{DeviceKind, Hardware},
};
use tensorgrid_train::device::{self, DeviceChoice};

/// The device `choice` selects on this machine and how it is registered.
pub fn detect(
    choice: DeviceChoice,
) -> tensorgrid_train::Result<(Hardware, tensorgrid_train::Device)> {
    let dev = device::select(choice)?;
    let (kind, label, mib) = match (device::name(&dev), device::accelerator(&dev)) {
        ("cuda", Some((name, mib))) => (DeviceKind::Cuda, name, mib),
        ("cuda", None) => (DeviceKind::Cuda, "CUDA GPU".to_string(), 0),
        ("metal", acc) => (
            DeviceKind::Metal,
            acc.map_or_else(|| "Apple GPU".to_string(), |(n, _)| n),
            0,
        ),
        _ => (DeviceKind::Cpu, cpu_label(), 0),
    };
    Ok((
        Hardware {
            device: kind,
            vram_mib: u32::try_from(mib).unwrap_or(u32::MAX),
            label: truncate(&label, MAX_LABEL_LEN),
        },
        dev,
    ))
}

/// `"AMD EPYC 7B13 x2"`: the model name from /proc/cpuinfo (or the architecture) and the
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

/// Whether what is registered differs from what is detected (re-registered with
/// `worker_update` at start when it does).
pub fn changed(registered: &Hardware, detected: &Hardware) -> bool {
    registered.device != detected.device
        || registered.vram_mib != detected.vram_mib
        || registered.label != detected.label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_detection_fits_the_label() {
        let (h, dev) = detect(DeviceChoice::Cpu).unwrap();
        assert_eq!(h.device, DeviceKind::Cpu);
        assert!(dev.is_cpu());
        assert_eq!(h.vram_mib, 0);
        assert!(
            !h.label.is_empty() && h.label.len() <= MAX_LABEL_LEN,
            "{}",
            h.label
        );
        assert_eq!(truncate("héllo", 2), "h");
        let mut other = h.clone();
        assert!(!changed(&h, &other));
        other.vram_mib = 1;
        assert!(changed(&h, &other));
    }

    #[test]
    #[cfg(not(feature = "cuda"))]
    fn a_gpu_that_this_build_cannot_drive_is_a_clear_error() {
        let e = detect(DeviceChoice::Cuda).unwrap_err().to_string();
        assert!(e.contains("cuda") && e.contains("feature"), "{e}");
    }
}
