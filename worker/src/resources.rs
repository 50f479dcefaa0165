//! This machine's memory and disk, read when a job is checked: a job that would not fit is
//! refused before it is claimed (memory), or claiming pauses until there is room (disk).

use std::path::Path;

use tensorgrid_client::state::{DeviceKind, Hardware};

/// Bytes of memory a job may use: a GPU's memory as registered, or for the CPU what the
/// system has available now (capped by this process's cgroup limit); never more than `cap`.
/// `None` when it cannot be read (then only `cap` applies, if any).
pub fn job_memory(hw: &Hardware, cap: Option<u64>) -> Option<u64> {
    let device = match hw.device {
        DeviceKind::Cpu => host_available(),
        DeviceKind::Cuda | DeviceKind::Metal if hw.vram_mib > 0 => {
            Some(u64::from(hw.vram_mib) << 20)
        }
        // Unified memory (Metal) or an unknown card: the host's.
        _ => host_available(),
    };
    match (device, cap) {
        (Some(d), Some(c)) => Some(d.min(c)),
        (d, c) => d.or(c),
    }
}

/// Bytes of this machine's memory a job may use (where datasets are parsed, whatever the
/// training device): what is available now, within the cgroup limit, never more than `cap`.
pub fn host_memory(cap: Option<u64>) -> Option<u64> {
    match (host_available(), cap) {
        (Some(d), Some(c)) => Some(d.min(c)),
        (d, c) => d.or(c),
    }
}

/// `MemAvailable` from /proc/meminfo, and the room left under a cgroup v2 memory limit.
fn host_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())?
        .saturating_mul(1024);
    Some(match cgroup_room() {
        Some(room) => available.min(room),
        None => available,
    })
}

/// `memory.max − memory.current` of this process's cgroup (v2), when it has a limit.
fn cgroup_room() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?;
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// Bytes free for this user on the filesystem holding `path`.
pub fn free_disk(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `s` a buffer of the right type; statvfs
    // fills it on success (return 0), which is the only case it is read.
    let rc = unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let s = unsafe { s.assume_init() };
    // The field types differ between platforms (u64 on Linux, u32 elsewhere).
    #[allow(clippy::unnecessary_cast)]
    Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_memory_and_disk() {
        let cpu = tensorgrid_client::defaults::cpu("t");
        let m = job_memory(&cpu, None).expect("readable on Linux");
        assert!(m > 1 << 20, "{m}");
        assert_eq!(
            job_memory(&cpu, Some(1 << 20)),
            Some(1 << 20),
            "the cap applies"
        );
        let gpu = Hardware {
            device: DeviceKind::Cuda,
            vram_mib: 8_192,
            label: "g".into(),
        };
        assert_eq!(job_memory(&gpu, None), Some(8 << 30));
        assert!(free_disk(Path::new("/")).unwrap() > 0);
        assert_eq!(free_disk(Path::new("/no/such/dir")), None);
    }
}
