//! The memory allocator's one setting, made at start before any other thread runs.
//!
//! casewarden uses the C library's allocator. On glibc it turns off the "fast bins"
//! (`mallopt(M_MXFAST, 0)`, see mallopt(3)). glibc keeps each freed block of up to 128 bytes
//! that its per-thread cache has no room for in a fast bin, unmerged with its neighbours, and
//! merges all of them at once (`malloc_consolidate`) before the next allocation of about a
//! kilobyte or more, and after each free of 64 kB or more. A batch of commands or firings frees
//! hundreds of thousands of small blocks (text fields of the rows it read, the values it bound)
//! between its large ones (the values of a multi-row statement), so every large allocation paid
//! for merging everything freed since the one before: a profile of the commands benchmark put
//! a tenth of its time there. With the fast bins off, a small block the cache has no room for is
//! merged as it is freed, and nothing is left to merge in one go.
//!
//! Measured with `cargo bench --bench throughput` on the 2-core machine of docs/performance.md,
//! in runs alternating with glibc's default put back (`GLIBC_TUNABLES=glibc.malloc.mxfast=128`):
//! see "The memory allocator" there. The per-thread cache, which serves most small allocations,
//! is unchanged, and the peak memory of a firings pass stayed about the same.
//!
//! A `GLIBC_TUNABLES` that sets `glibc.malloc.mxfast` itself is left as the operator set it.
//! On other C libraries (musl) and systems nothing is changed.

/// Applies the setting. Call it first in `main`, before the async runtime starts its threads.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.mxfast")) {
            return;
        }
        // SAFETY: mallopt only changes the allocator's parameters; with M_MXFAST and a value in
        // its range (0 to 80 * sizeof(size_t) / 4) it cannot fail, and no other thread is
        // allocating yet.
        unsafe {
            libc::mallopt(libc::M_MXFAST, 0);
        }
    }
}
