//! CPU matmul kernels for the few-row products of decoding and verification.
//!
//! Decoding multiplies 1 to ~17 rows by each weight matrix. General gemm packs the whole
//! weight matrix for every call, so on flex a 2-row forward cost 2.7× a 1-row one. These
//! kernels stream each weight row once for all input rows instead (the product is
//! memory-bound: the weights are read once, whatever n is), parallel over column chunks.
//! The int8 kernel does the same over i8 weights with per-block scales, for any number of
//! rows (prefill included).

use rayon::prelude::*;

use crate::quant::{scale_rows, BLOCK_ROWS};

/// Products with at most this many rows use the streaming kernels.
pub const SKINNY_MAX_ROWS: usize = 32;

/// Output columns per parallel task: the accumulators (`rows × CHUNK` f32) stay in L1.
const CHUNK: usize = 128;

/// `y[n, m] = x[n, k] · w[k, m]`, all row-major.
pub fn matmul_f32(x: &[f32], n: usize, k: usize, w: &[f32], m: usize) -> Vec<f32> {
    assert_eq!(x.len(), n * k);
    assert_eq!(w.len(), k * m);
    run_tiles(n, n.max(1), m, |r0, rows, c0, width, acc| {
        dispatch_f32(&x[r0 * k..(r0 + rows) * k], rows, k, w, m, c0, width, acc)
    })
}

/// `y[n, m] = Σ_b (x[n, block b] · q[block b, m]) * scale[b, m]`: int8 weights with one
/// scale per column per block of [`BLOCK_ROWS`] input rows (see [`crate::quant`]).
///
/// Any `n`: rows are taken in blocks of [`I8_ROW_BLOCK`] so the accumulators of a task
/// stay in L1 (a 256-token prefill runs as 16 × (m / 128) parallel tasks, each reading
/// its weight panel from L2 after the first row block).
///
/// # Shapes
/// - x: `[n, k]`, q: `[k, m]`, scales: `[k.div_ceil(BLOCK_ROWS), m]` → `[n, m]`
pub fn matmul_i8(x: &[f32], n: usize, k: usize, q: &[i8], scales: &[f32], m: usize) -> Vec<f32> {
    assert_eq!(x.len(), n * k);
    assert_eq!(q.len(), k * m);
    assert_eq!(scales.len(), scale_rows(k) * m);
    run_tiles(n, I8_ROW_BLOCK, m, |r0, rows, c0, width, acc| {
        dispatch_i8(
            &x[r0 * k..(r0 + rows) * k],
            rows,
            k,
            q,
            scales,
            m,
            c0,
            width,
            acc,
        )
    })
}

/// Rows per int8 task: its two accumulators (`rows × CHUNK` f32 each) fit in L1.
const I8_ROW_BLOCK: usize = 16;

/// Splits the `[n, m]` output into tiles of at most `block_rows` rows × [`CHUNK`]
/// columns, runs `kernel(r0, rows, c0, width, acc[rows × width])` on each in parallel
/// (column chunks of one row block are adjacent, so tasks that share a weight panel run
/// close together), and assembles the result.
fn run_tiles(
    n: usize,
    block_rows: usize,
    m: usize,
    kernel: impl Fn(usize, usize, usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let tiles: Vec<(usize, usize)> = (0..n)
        .step_by(block_rows)
        .flat_map(|r0| (0..m).step_by(CHUNK).map(move |c0| (r0, c0)))
        .collect();
    let done: Vec<(usize, usize, Vec<f32>)> = tiles
        .into_par_iter()
        .map(|(r0, c0)| {
            let rows = block_rows.min(n - r0);
            let width = CHUNK.min(m - c0);
            let mut acc = vec![0.0f32; rows * width];
            kernel(r0, rows, c0, width, &mut acc);
            (r0, c0, acc)
        })
        .collect();
    let mut y = vec![0.0f32; n * m];
    for (r0, c0, acc) in done {
        let width = CHUNK.min(m - c0);
        for (t, row) in acc.chunks(width).enumerate() {
            let start = (r0 + t) * m + c0;
            y[start..start + width].copy_from_slice(row);
        }
    }
    y
}

#[allow(clippy::too_many_arguments)]
fn dispatch_f32(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { f32_avx2(x, n, k, w, m, c0, width, acc) };
    }
    f32_body(x, n, k, w, m, c0, width, acc)
}

#[allow(clippy::too_many_arguments)]
fn dispatch_i8(
    x: &[f32],
    n: usize,
    k: usize,
    q: &[i8],
    scales: &[f32],
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
) {
    assert!(x.len() >= n * k && q.len() >= k * m && c0 + width <= m);
    assert!(scales.len() >= scale_rows(k) * m && acc.len() >= n * width);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features, and the slice bounds are checked above.
        return unsafe { i8_avx2(x, n, k, q, scales, m, c0, width, acc) };
    }
    i8_body(x, n, k, q, scales, m, c0, width, acc, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn f32_avx2(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
) {
    f32_body(x, n, k, w, m, c0, width, acc)
}

/// The int8 kernel with its accumulators in registers: for each row and each strip of 64
/// columns, 8 vectors of block sums live in registers while the 16 rows of a block
/// stream by (one load-and-widen, one convert and one FMA per 8 weights), then are
/// scaled into `acc`. The auto-vectorised [`i8_body`] instead loads and stores its sums
/// for every FMA; this is 2× faster for one row. Columns past the last full strip go
/// to `i8_body`.
///
/// # Safety
/// The CPU supports AVX2 and FMA, and the slices are as large as [`dispatch_i8`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_avx2(
    x: &[f32],
    n: usize,
    k: usize,
    q: &[i8],
    scales: &[f32],
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
) {
    use std::arch::x86_64::*;
    const STRIP: usize = 64;
    let full = width / STRIP * STRIP;
    for strip in (0..full).step_by(STRIP) {
        let col = c0 + strip;
        for t in 0..n {
            let x_row = x.as_ptr().add(t * k);
            let out = acc.as_mut_ptr().add(t * width + strip);
            for (b, i0) in (0..k).step_by(BLOCK_ROWS).enumerate() {
                let mut sums = [_mm256_setzero_ps(); 8];
                for i in i0..(i0 + BLOCK_ROWS).min(k) {
                    let xv = _mm256_set1_ps(*x_row.add(i));
                    let q_row = q.as_ptr().add(i * m + col);
                    for (j, sum) in sums.iter_mut().enumerate() {
                        let bytes = _mm_loadl_epi64(q_row.add(8 * j) as *const __m128i);
                        let w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
                        *sum = _mm256_fmadd_ps(xv, w, *sum);
                    }
                }
                let s_row = scales.as_ptr().add(b * m + col);
                for (j, sum) in sums.iter().enumerate() {
                    let a = out.add(8 * j);
                    let scaled = _mm256_fmadd_ps(
                        *sum,
                        _mm256_loadu_ps(s_row.add(8 * j)),
                        _mm256_loadu_ps(a),
                    );
                    _mm256_storeu_ps(a, scaled);
                }
            }
        }
    }
    if full < width {
        i8_body(
            x,
            n,
            k,
            q,
            scales,
            m,
            c0 + full,
            width - full,
            &mut acc[full..],
            width,
        );
    }
}

/// For each input feature i: acc[t, :] += x[t, i] · w[i, c0..c0+width]. Written so the
/// inner loop auto-vectorises (fixed-size slices, no bounds checks inside).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn f32_body(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
) {
    for i in 0..k {
        let w_row = &w[i * m + c0..i * m + c0 + width];
        for t in 0..n {
            let xv = x[t * k + i];
            if xv == 0.0 {
                continue;
            }
            let a = &mut acc[t * width..(t + 1) * width];
            for (a, &wv) in a.iter_mut().zip(w_row) {
                *a = xv.mul_add(wv, *a);
            }
        }
    }
}

/// As [`f32_body`] over i8 weights, widened to f32 in registers. Products of one block
/// of input rows accumulate in `partial`, which is scaled into `acc` at the block's end:
/// one multiply-add per output per 16 inputs. `acc` rows are `acc_stride` apart.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn i8_body(
    x: &[f32],
    n: usize,
    k: usize,
    q: &[i8],
    scales: &[f32],
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
    acc_stride: usize,
) {
    let mut widened = [0.0f32; CHUNK];
    let mut partial = vec![0.0f32; n * width];
    for (b, i0) in (0..k).step_by(BLOCK_ROWS).enumerate() {
        partial.fill(0.0);
        for i in i0..(i0 + BLOCK_ROWS).min(k) {
            let q_row = &q[i * m + c0..i * m + c0 + width];
            let w_row = &mut widened[..width];
            for (w, &qv) in w_row.iter_mut().zip(q_row) {
                *w = qv as f32;
            }
            for t in 0..n {
                let xv = x[t * k + i];
                let p = &mut partial[t * width..(t + 1) * width];
                for (p, &wv) in p.iter_mut().zip(w_row.iter()) {
                    *p = xv.mul_add(wv, *p);
                }
            }
        }
        let s_row = &scales[b * m + c0..b * m + c0 + width];
        for t in 0..n {
            let a = &mut acc[t * acc_stride..t * acc_stride + width];
            let p = &partial[t * width..(t + 1) * width];
            for ((a, &p), &s) in a.iter_mut().zip(p).zip(s_row) {
                *a = p.mul_add(s, *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_models::pseudo_random_values as values;

    fn naive(x: &[f32], n: usize, k: usize, w: &[f32], m: usize) -> Vec<f32> {
        let mut y = vec![0.0; n * m];
        for t in 0..n {
            for j in 0..m {
                y[t * m + j] = (0..k).map(|i| x[t * k + i] * w[i * m + j]).sum();
            }
        }
        y
    }

    #[test]
    fn f32_kernel_matches_naive_for_odd_shapes() {
        for (n, k, m) in [(1, 7, 5), (3, 64, 300), (17, 33, 129), (2, 1, 1)] {
            let x = values(n * k, 1);
            let w = values(k * m, 2);
            let got = matmul_f32(&x, n, k, &w, m);
            let want = naive(&x, n, k, &w, m);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{n}x{k}x{m}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn i8_kernel_applies_block_scales() {
        // 70 rows: several row blocks, the last one partial (the prefill path); k = 40
        // and 70: a partial last block of input rows.
        for (n, k, m) in [(3, 40, 260), (70, 70, 129), (1, 1, 1), (17, 64, 128)] {
            let x = values(n * k, 3);
            let q: Vec<i8> = (0..k * m)
                .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
                .collect();
            let scales: Vec<f32> = (0..scale_rows(k) * m)
                .map(|j| 0.01 + j as f32 * 1e-4)
                .collect();
            let dequant: Vec<f32> = (0..k * m)
                .map(|i| q[i] as f32 * scales[(i / m / BLOCK_ROWS) * m + i % m])
                .collect();
            let want = naive(&x, n, k, &dequant, m);
            let got = matmul_i8(&x, n, k, &q, &scales, m);
            // The portable body too (the dispatcher picks AVX2 where it can).
            let mut portable = vec![0.0f32; n * m];
            for c0 in (0..m).step_by(CHUNK) {
                let width = CHUNK.min(m - c0);
                i8_body(&x, n, k, &q, &scales, m, c0, width, &mut portable[c0..], m);
            }
            for ((a, p), b) in got.iter().zip(&portable).zip(&want) {
                assert!((a - b).abs() < 1e-3, "{n}x{k}x{m}: {a} vs {b}");
                assert!((p - b).abs() < 1e-3, "{n}x{k}x{m}: portable {p} vs {b}");
            }
        }
    }
}
