//! Allocator tuning for processes that train.
//!
//! candle allocates a fresh buffer for every tensor op. glibc serves requests above its mmap
//! threshold with a fresh mapping and unmaps (or trims) on free, so every training step
//! page-faults its working set in again and the kernel zeroes each page — about a fifth of CPU
//! time on the char transformer (`perf`: `clear_page_erms` under `exc_page_fault`). Keeping
//! freed memory in the heap lets the next step reuse it.

/// glibc's largest accepted mmap threshold on 64-bit (`HEAP_MAX_SIZE / 2`): bigger tensors
/// still get their own mapping, but then the work per op dwarfs the fault.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Call once at process start. A no-op where the allocator is not glibc's.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; both values are in glibc's valid range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}
