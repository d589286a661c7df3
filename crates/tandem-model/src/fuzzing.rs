//! What the seeded mutation tests share (`tests/fuzz_parsers.rs` here, the engine's
//! `tests/fuzz_log.rs`): an allocator that records the largest single allocation, so a
//! test can hold a parser to a bound, a small generator whose fixed seed replays a run
//! exactly, and the mutator itself. A test binary installs the allocator itself:
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

/// What [`mutate`] puts into its input besides flips, cuts and copies.
pub struct Mutations<'a> {
    /// Numbers that replace a run of digits (aimed at ids, counts, sizes and offsets).
    pub numbers: &'a [&'a str],
    /// The longest stretch duplicated at once.
    pub max_duplicate: usize,
    /// Text inserted at a random place.
    pub insertion: &'a dyn Fn(&mut Rng) -> String,
}

/// One to four mutations of `seed`: a bit flip, a cut, a deletion, a duplicated stretch,
/// a number replaced, or an insertion.
pub fn mutate(rng: &mut Rng, seed: &[u8], how: &Mutations) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => bytes.truncate(rng.below(len)),
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                bytes.drain(start..end);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(how.max_duplicate)).min(len);
                let copy = bytes[start..end].to_vec();
                let at = rng.below(len + 1);
                bytes.splice(at..at, copy);
            }
            4 | 5 => replace_number(rng, &mut bytes, how.numbers),
            _ => {
                let at = rng.below(len + 1);
                let text = (how.insertion)(rng);
                bytes.splice(at..at, text.into_bytes());
            }
        }
    }
    bytes
}

/// Replaces one run of digits with one of `numbers`.
fn replace_number(rng: &mut Rng, bytes: &mut Vec<u8>, numbers: &[&str]) {
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
        .collect();
    if starts.is_empty() {
        return;
    }
    let start = *rng.pick(&starts);
    let end = (start..bytes.len())
        .find(|&i| !bytes[i].is_ascii_digit())
        .unwrap_or(bytes.len());
    let number = rng.pick(numbers).as_bytes().to_vec();
    bytes.splice(start..end, number);
}
