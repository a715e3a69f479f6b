//! Hints to the CPU that std has no safe form of.

/// Asks the CPU to start loading the cache line that holds `value`, so
/// that a read of it a little later does not wait for memory. Only a
/// hint: it cannot fault and changes nothing, so it is safe for any
/// reference.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only moves a line into the cache; it never faults
    // (the address comes from a reference anyway), and SSE, which brought
    // it, is part of every x86_64 CPU.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
