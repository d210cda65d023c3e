//! Giving memory back to the system after one-off bursts of allocation.

/// Returns jemalloc's unused dirty pages in every arena to the kernel.
///
/// jemalloc keeps freed pages for reuse and only decays them while the
/// arena that owns them is busy. Start-up (parsing the kernel's BTF to load
/// the eBPF programs) and compiling a large route table leave megabytes
/// behind in threads that then idle, and an idle node should not carry
/// them; nothing on a request path calls this.
#[allow(unsafe_code)]
pub fn release_unused() {
    // "arena.<MALLCTL_ARENAS_ALL>.purge", MALLCTL_ARENAS_ALL being 4096.
    const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
    // SAFETY: the name is NUL-terminated, and purge reads and writes no
    // value, so every pointer is null and the length 0, as jemalloc
    // requires for this control.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::debug!(rc, "jemalloc purge failed");
    }
}
