//! What this machine's memory delivers, measured with the engine's own threads: the
//! roofline `tandem bench` compares decode speed with.
//!
//! Decoding reads every weight once per token and writes almost nothing, so the figure
//! that bounds it is the read bandwidth of all threads together; a copy (read and write)
//! is reported beside it. The buffer is several times the last-level cache, so neither
//! figure is a cache's.

use std::time::Instant;

use serde::Serialize;

use super::isa::{multiversion, Isa};
use super::pool::{share, Pool};

/// Measured bandwidth.
#[derive(Debug, Clone, Serialize)]
pub struct Bandwidth {
    /// Streaming read of the whole buffer by every pool thread, GB/s (10⁹ bytes).
    pub read_gb_per_sec: f64,
    /// Copy of one half of the buffer onto the other, counting bytes read and written.
    pub copy_gb_per_sec: f64,
    pub buffer_bytes: usize,
    pub threads: usize,
}

/// Sums the words of `x`. A plain reduction: the compiler vectorises it with contiguous
/// loads into several accumulators. (A hand-made array of 16 lanes was vectorised across
/// chunks instead, with a gather per lane — ~5 GB/s on an AMD EPYC whose memory reads
/// 30+, a figure of the gather unit, not of the memory.)
#[inline(always)]
fn read_body(x: &[u64]) -> u64 {
    x.iter().fold(0, |a, &v| a.wrapping_add(v))
}

#[inline(always)]
fn copy_body(src: &[u64], dst: &mut [u64]) {
    dst.copy_from_slice(src);
}

multiversion! {
    fn read(x: &[u64]) -> u64 => read_body
}

multiversion! {
    fn copy(src: &[u64], dst: &mut [u64]) => copy_body
}

/// Bytes of the last-level cache, from sysfs (Linux); `None` elsewhere.
fn last_level_cache_bytes() -> Option<usize> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let mut largest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        // index0, index1, …: each has a `size` such as "48K" or "480M".
        let Ok(size) = std::fs::read_to_string(entry.path().join("size")) else {
            continue;
        };
        let size = size.trim();
        let bytes = if let Some(k) = size.strip_suffix('K') {
            k.parse::<usize>().ok().map(|k| k << 10)
        } else if let Some(m) = size.strip_suffix('M') {
            m.parse::<usize>().ok().map(|m| m << 20)
        } else {
            size.parse().ok()
        };
        largest = largest.max(bytes);
    }
    largest
}

/// Measures read and copy bandwidth over a buffer of at least 1 GiB and four times the
/// last-level cache (the best of `repeats` passes each).
pub fn measure(pool: &Pool, repeats: usize) -> Bandwidth {
    let isa = Isa::selected();
    let bytes = (4 * last_level_cache_bytes().unwrap_or(0)).max(1 << 30);
    let words = bytes / 8;
    // Written once so every page is really mapped (a zero page would be read from cache).
    let mut buffer: Vec<u64> = (0..words as u64).collect();
    let parts = pool.threads();
    let mut best_read = f64::INFINITY;
    let sink = std::sync::atomic::AtomicU64::new(0);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        pool.run(&|part| {
            let sum = read(isa, &buffer[share(words, part, parts)]);
            sink.fetch_add(sum, std::sync::atomic::Ordering::Relaxed);
        });
        best_read = best_read.min(start.elapsed().as_secs_f64());
    }
    let half = words / 2;
    let (src, dst) = buffer.split_at_mut(half);
    let dst = &mut dst[..half];
    let mut best_copy = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let chunks: Vec<std::sync::Mutex<&mut [u64]>> = {
            let mut rest: &mut [u64] = &mut *dst;
            let mut out = Vec::with_capacity(parts);
            for part in 0..parts {
                let len = share(half, part, parts).len();
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
                out.push(std::sync::Mutex::new(head));
                rest = tail;
            }
            out
        };
        let start = Instant::now();
        pool.run(&|part| {
            let mut d = chunks[part].lock().expect("one part per chunk");
            copy(isa, &src[share(half, part, parts)], &mut d);
        });
        best_copy = best_copy.min(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink.into_inner());
    Bandwidth {
        read_gb_per_sec: (words * 8) as f64 / best_read / 1e9,
        copy_gb_per_sec: (2 * half * 8) as f64 / best_copy / 1e9,
        buffer_bytes: words * 8,
        threads: parts,
    }
}
