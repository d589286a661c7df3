//! The ceiling the int8 kernels work under: how many 512-bit `vpdpbusd` a core retires
//! per second with nothing else to do (16 independent accumulators, register operands),
//! on one thread and on every core. Compare `cpu_kernels -- l2` (the kernel itself on
//! weights held in L2) against it: the kernel multiplies each product twice (two
//! activation levels), so its share of the peak is `2 · kernel GMAC/s ÷ peak GMAC/s`.
//!
//! `cargo run --release -p tandem-model --example vnni_peak`

use std::time::Instant;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn products(iters: usize) -> i32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_epi32(0x0102_0304);
    let b = _mm512_set1_epi32(0x0101_0101);
    let mut acc = [_mm512_setzero_si512(); 16];
    for _ in 0..iters {
        for sum in acc.iter_mut() {
            *sum = _mm512_dpbusd_epi32(*sum, a, b);
        }
    }
    let total = acc
        .iter()
        .fold(_mm512_setzero_si512(), |s, &v| _mm512_add_epi32(s, v));
    _mm512_reduce_add_epi32(total)
}

/// Multiply-adds per second (each `vpdpbusd` is 64) of `threads` threads.
#[cfg(target_arch = "x86_64")]
fn gmacs(threads: usize) -> f64 {
    const ITERS: usize = 20_000_000;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        // SAFETY: main checked that the CPU has AVX-512 VNNI.
        .map(|_| std::thread::spawn(|| std::hint::black_box(unsafe { products(ITERS) })))
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    (threads * ITERS * 16 * 64) as f64 / start.elapsed().as_secs_f64() / 1e9
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni") {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!("vpdpbusd zmm, one thread: {:.1} GMAC/s", gmacs(1));
        println!("vpdpbusd zmm, {cores} threads: {:.1} GMAC/s", gmacs(cores));
        return;
    }
    println!("this CPU has no AVX-512 VNNI: nothing to measure");
}
