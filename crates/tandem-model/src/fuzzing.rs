//! What the seeded mutation tests share (`tests/fuzz_parsers.rs` here, the engine's
//! `tests/fuzz_log.rs`): an allocator that records the largest single allocation, so a
//! test can hold a parser to a bound, and a small generator whose fixed seed replays a
//! run exactly. A test binary installs the allocator itself:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: CountingAllocator = CountingAllocator;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, recording the largest single allocation (or reallocation).
pub struct CountingAllocator;

static LARGEST_ALLOCATION: AtomicUsize = AtomicUsize::new(0);

impl CountingAllocator {
    /// Forgets the largest allocation so far (before a case).
    pub fn reset() {
        LARGEST_ALLOCATION.store(0, Ordering::Relaxed);
    }

    /// The largest single allocation since the last [`reset`](Self::reset).
    pub fn largest() -> usize {
        LARGEST_ALLOCATION.load(Ordering::Relaxed)
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; only a size is read.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// SplitMix64: a tiny, well-mixed generator; a fixed seed replays a run exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
