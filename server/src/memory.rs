//! How the process gives memory back to the system (glibc's allocator; elsewhere these do
//! nothing).
//!
//! glibc serves a large allocation with a mapping of its own, returned on free, only while it
//! is above a threshold that the first such free raises to the freed size (up to 32 MiB).
//! Concord's first large free is the 19 MiB argon2 block of the start-up dummy hash, so from
//! then on every password hash is carved out of a thread's arena and stays resident there
//! after it is freed: an idle server that had served one sign-in held 80 MiB against 38 MiB
//! (BENCHMARKS.md, 2026-12-05, night), and 1.1 GiB after 50 sign-ins. [`configure`] fixes the
//! threshold at 256 KiB, as the benchmarks have always run it (`MALLOC_MMAP_THRESHOLD_=262144`),
//! unless that variable is set. [`release_free_memory`] hands back what start-up freed.

/// Threshold above which an allocation gets a mapping of its own (glibc's own starting value is
/// 128 KiB; every benchmark in BENCHMARKS.md ran with this one).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Fixes the allocator's mapping threshold, unless `MALLOC_MMAP_THRESHOLD_` sets one. Call it
/// first in `main`, before any thread starts.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called before any other
        // thread exists.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok != 1 {
            eprintln!("concord: could not set the allocator's mapping threshold");
        }
    }
}

/// Returns free memory at the top of and inside the allocator's arenas to the system: start-up
/// builds and drops large structures (the OpenAPI document, migrations, configuration) whose
/// pages would otherwise stay resident until reused.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks and may be called from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
