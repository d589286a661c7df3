//! The ceiling the int8 kernels work under: how many 512-bit `vpdpbusd` a core retires
//! per second with nothing else to do (16 independent accumulators, register operands),
//! on one thread and on every core. Compare `cpu_kernels -- l2` (the kernel itself on
//! weights held in L2) against it: the kernel multiplies each product twice (two
//! activation levels), so its share of the peak is `2 · kernel GMAC/s ÷ peak GMAC/s`.
//!
//! Then the same products with their activations broadcast from memory, as the kernels
//! take them, and which of the other operations of a kernel block share the pipes
//! `vpdpbusd` runs on: each is issued twice beside 8 `vpdpbusd` (independent chains),
//! and the extra time per operation is counted in `vpdpbusd` slots (0: it runs
//! elsewhere, for free; 1: it takes the place of a product). A block of the int8 kernel
//! issues, per row, 8 `vpdpbusd`, one shift, one int→float conversion, one multiply and
//! one fused multiply-add (an integer add is timed too: the candidate to replace the
//! multiply, see docs/benchmarks.md).
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

/// As [`products`], with each product's 4 activation bytes broadcast from memory as the
/// kernels take them (a row's 4 groups of a block, 8 rows).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn products_from_memory(iters: usize, x: &[i32; 64]) -> i32 {
    use std::arch::x86_64::*;
    let w: [__m512i; 4] = std::array::from_fn(|g| _mm512_set1_epi32(0x0101_0101 * (g as i32 + 1)));
    let mut acc = [_mm512_setzero_si512(); 8];
    for i in 0..iters {
        // Two halves of the buffer in turn, so the loads are not hoisted.
        let half = x.as_ptr().add((i & 1) * 32);
        for (r, sum) in acc.iter_mut().enumerate() {
            for (g, w) in w.iter().enumerate() {
                *sum = _mm512_dpbusd_epi32(*sum, *w, _mm512_set1_epi32(*half.add(r * 4 + g)));
            }
        }
    }
    let total = acc
        .iter()
        .fold(_mm512_setzero_si512(), |s, &v| _mm512_add_epi32(s, v));
    _mm512_reduce_add_epi32(total)
}

/// The operation issued beside the products in [`beside`].
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
enum Beside {
    Nothing,
    FusedMultiplyAdd,
    Multiply,
    IntToFloat,
    Shift,
    IntAdd,
}

/// `iters` rounds of 8 independent `vpdpbusd` and 2 of `op`, each on its own chain.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn beside(iters: usize, op: Beside) -> f32 {
    use std::arch::x86_64::*;
    let a = std::hint::black_box(_mm512_set1_epi32(0x0102_0304));
    let b = std::hint::black_box(_mm512_set1_epi32(0x0101_0101));
    let f = std::hint::black_box(_mm512_set1_ps(1.0001));
    let mut acc = [_mm512_setzero_si512(); 8];
    let mut other = [_mm512_setzero_si512(); 2];
    for _ in 0..iters {
        for sum in acc.iter_mut() {
            *sum = _mm512_dpbusd_epi32(*sum, a, b);
        }
        for o in other.iter_mut() {
            *o = match op {
                Beside::Nothing => *o,
                Beside::FusedMultiplyAdd => {
                    _mm512_castps_si512(_mm512_fmadd_ps(_mm512_castsi512_ps(*o), f, f))
                }
                Beside::Multiply => _mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(*o), f)),
                Beside::IntToFloat => _mm512_castps_si512(_mm512_cvtepi32_ps(*o)),
                Beside::Shift => _mm512_slli_epi32::<1>(*o),
                Beside::IntAdd => _mm512_add_epi32(*o, a),
            };
        }
    }
    let total = acc
        .iter()
        .chain(&other)
        .fold(_mm512_setzero_si512(), |s, &v| _mm512_add_epi32(s, v));
    _mm512_reduce_add_epi32(total) as f32
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

/// Seconds of [`beside`] with `op`, the best of three.
#[cfg(target_arch = "x86_64")]
fn seconds_beside(op: Beside) -> f64 {
    const ITERS: usize = 20_000_000;
    (0..3)
        .map(|_| {
            let start = Instant::now();
            // SAFETY: main checked that the CPU has AVX-512 VNNI.
            std::hint::black_box(unsafe { beside(ITERS, op) });
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni") {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!("vpdpbusd zmm, one thread: {:.1} GMAC/s", gmacs(1));
        println!("vpdpbusd zmm, {cores} threads: {:.1} GMAC/s", gmacs(cores));
        const ITERS: usize = 5_000_000;
        let x: [i32; 64] = std::hint::black_box(std::array::from_fn(|i| i as i32 * 0x0102_0304));
        let start = Instant::now();
        // SAFETY: checked above.
        std::hint::black_box(unsafe { products_from_memory(ITERS, &x) });
        let rate = (ITERS * 32 * 64) as f64 / start.elapsed().as_secs_f64() / 1e9;
        println!("vpdpbusd zmm, activations broadcast from memory, one thread: {rate:.1} GMAC/s");
        let alone = seconds_beside(Beside::Nothing);
        for op in [
            Beside::FusedMultiplyAdd,
            Beside::Multiply,
            Beside::IntToFloat,
            Beside::Shift,
            Beside::IntAdd,
        ] {
            let slots = 8.0 * (seconds_beside(op) / alone - 1.0) / 2.0;
            println!("{op:?} beside 8 vpdpbusd: {slots:.2} vpdpbusd slots");
        }
        return;
    }
    println!("this CPU has no AVX-512 VNNI: nothing to measure");
}
