//! The process's heap allocations, for the load generator's allocations per message
//! (docs/performance.md): with the `count-allocations` feature the global allocator is
//! `std::alloc::System` wrapped by [`stats_alloc`], which counts every call in atomics, and the
//! admin `/metrics` shows the counts as two counters ([`ALLOCATIONS`], [`ALLOCATED_BYTES`]),
//! read when the text is rendered. Without the feature (every production and Lambda build)
//! nothing is counted and the counters do not appear at all, so that no one reads a zero as a
//! measurement.
//!
//! `stats_alloc` rather than a hand-written wrapper: implementing `GlobalAlloc` takes `unsafe`,
//! which the workspace forbids; the crate is a few hundred lines with no dependencies, and
//! counts exactly what is needed (its atomics are `SeqCst`, the same instruction as `Relaxed`
//! for an addition on x86-64).
//!
//! Declared here, in the library, rather than in `main.rs`: every binary linking the library
//! with the feature counts — the `xdm-connect` binary, and the tests, whose in-process bridges
//! then show the counters too.

/// Counter: heap allocations since the process started (`alloc`, `alloc_zeroed` and `realloc`
/// count one each). Only in builds with the `count-allocations` feature.
pub const ALLOCATIONS: &str = "xdm_allocations_total";
/// Counter: bytes those allocations asked for (a `realloc` counts what it grows by). Only in
/// builds with the `count-allocations` feature.
pub const ALLOCATED_BYTES: &str = "xdm_allocated_bytes_total";

#[cfg(feature = "count-allocations")]
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// What has been allocated since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocated {
    /// `alloc`, `alloc_zeroed` and `realloc` calls.
    pub allocations: u64,
    /// Bytes they asked for; a `realloc` counts what it grows by.
    pub bytes: u64,
}

/// The counts so far; `None` in a build without the `count-allocations` feature.
pub fn allocated() -> Option<Allocated> {
    #[cfg(feature = "count-allocations")]
    {
        let stats = stats_alloc::INSTRUMENTED_SYSTEM.stats();
        let allocations = stats.allocations.saturating_add(stats.reallocations);
        Some(Allocated {
            allocations: u64::try_from(allocations).unwrap_or(u64::MAX),
            bytes: u64::try_from(stats.bytes_allocated).unwrap_or(u64::MAX),
        })
    }
    #[cfg(not(feature = "count-allocations"))]
    {
        None
    }
}

/// Sets the two counters to the counts so far (nothing without the feature); called before the
/// Prometheus text is rendered.
pub fn record() {
    if let Some(a) = allocated() {
        metrics::counter!(ALLOCATIONS).absolute(a.allocations);
        metrics::counter!(ALLOCATED_BYTES).absolute(a.bytes);
    }
}

/// Registers the `# HELP` lines (with the feature only: without it the counters do not exist).
pub fn describe() {
    #[cfg(feature = "count-allocations")]
    {
        metrics::describe_counter!(
            ALLOCATIONS,
            metrics::Unit::Count,
            "Heap allocations since the process started (alloc, alloc_zeroed and realloc count one each). Only in builds with the count-allocations feature."
        );
        metrics::describe_counter!(
            ALLOCATED_BYTES,
            metrics::Unit::Bytes,
            "Bytes asked for by those allocations since the process started (a realloc counts what it grows by). Only in builds with the count-allocations feature."
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::allocated;

    #[cfg(feature = "count-allocations")]
    #[test]
    fn a_known_allocation_raises_both_counters() {
        let before = allocated().unwrap();
        let v = std::hint::black_box(Vec::<u8>::with_capacity(100_000));
        let after = allocated().unwrap();
        drop(v);
        // Other tests may allocate meanwhile: at least this one is counted.
        assert!(
            after.allocations > before.allocations,
            "{before:?} {after:?}"
        );
        assert!(
            after.bytes >= before.bytes + 100_000,
            "{before:?} {after:?}"
        );

        let mut grown = std::hint::black_box(Vec::<u8>::with_capacity(10));
        let before = allocated().unwrap();
        grown.reserve_exact(50_000);
        let grown = std::hint::black_box(grown);
        let after = allocated().unwrap();
        drop(grown);
        assert!(
            after.allocations > before.allocations,
            "a realloc counts one"
        );
        assert!(after.bytes >= before.bytes + 49_990, "{before:?} {after:?}");
    }

    #[cfg(not(feature = "count-allocations"))]
    #[test]
    fn without_the_feature_nothing_is_counted_not_even_a_zero() {
        assert_eq!(allocated(), None);
    }
}
