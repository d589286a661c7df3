//! CPU matmul kernels for the few-row products of decoding and verification.
//!
//! Decoding multiplies 1 to ~17 rows by each weight matrix. General gemm packs the whole
//! weight matrix for every call, so on flex a 2-row forward cost 2.7× a 1-row one. These
//! kernels stream each weight row once for all input rows instead (the product is
//! memory-bound: the weights are read once, whatever n is), parallel over column chunks.
//! The int8 kernel does the same over i8 weights with per-output-channel scales.

use rayon::prelude::*;

/// Products with at most this many rows use the streaming kernels.
pub const SKINNY_MAX_ROWS: usize = 32;

/// Output columns per parallel task: the accumulators (`rows × CHUNK` f32) stay in L1.
const CHUNK: usize = 128;

/// `y[n, m] = x[n, k] · w[k, m]`, all row-major.
pub fn matmul_f32(x: &[f32], n: usize, k: usize, w: &[f32], m: usize) -> Vec<f32> {
    assert_eq!(x.len(), n * k);
    assert_eq!(w.len(), k * m);
    run_chunks(n, m, |c0, width, acc| {
        dispatch_f32(x, n, k, w, m, c0, width, acc)
    })
}

/// `y[n, m] = (x[n, k] · q[k, m]) * scale[m]`: int8 weights with per-column scales.
pub fn matmul_i8(x: &[f32], n: usize, k: usize, q: &[i8], scales: &[f32], m: usize) -> Vec<f32> {
    assert_eq!(x.len(), n * k);
    assert_eq!(q.len(), k * m);
    assert_eq!(scales.len(), m);
    run_chunks(n, m, |c0, width, acc| {
        dispatch_i8(x, n, k, q, m, c0, width, acc);
        for row in acc.chunks_mut(width) {
            for (a, s) in row.iter_mut().zip(&scales[c0..c0 + width]) {
                *a *= s;
            }
        }
    })
}

/// Splits the columns into chunks, runs `kernel(c0, width, acc[n × width])` on each in
/// parallel, and assembles the `[n, m]` result.
fn run_chunks(n: usize, m: usize, kernel: impl Fn(usize, usize, &mut [f32]) + Sync) -> Vec<f32> {
    let chunks: Vec<(usize, Vec<f32>)> = (0..m)
        .step_by(CHUNK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|c0| {
            let width = CHUNK.min(m - c0);
            let mut acc = vec![0.0f32; n * width];
            kernel(c0, width, &mut acc);
            (c0, acc)
        })
        .collect();
    let mut y = vec![0.0f32; n * m];
    for (c0, acc) in chunks {
        let width = acc.len() / n.max(1);
        for (t, row) in acc.chunks(width).enumerate() {
            y[t * m + c0..t * m + c0 + width].copy_from_slice(row);
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
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: as above.
        return unsafe { i8_avx2(x, n, k, q, m, c0, width, acc) };
    }
    i8_body(x, n, k, q, m, c0, width, acc)
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_avx2(
    x: &[f32],
    n: usize,
    k: usize,
    q: &[i8],
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
) {
    i8_body(x, n, k, q, m, c0, width, acc)
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

/// As [`f32_body`] over i8 weights, widened to f32 in registers (the scale is applied
/// once per column at the end).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn i8_body(
    x: &[f32],
    n: usize,
    k: usize,
    q: &[i8],
    m: usize,
    c0: usize,
    width: usize,
    acc: &mut [f32],
) {
    let mut widened = [0.0f32; CHUNK];
    for i in 0..k {
        let q_row = &q[i * m + c0..i * m + c0 + width];
        let w_row = &mut widened[..width];
        for (w, &qv) in w_row.iter_mut().zip(q_row) {
            *w = qv as f32;
        }
        for t in 0..n {
            let xv = x[t * k + i];
            let a = &mut acc[t * width..(t + 1) * width];
            for (a, &wv) in a.iter_mut().zip(w_row.iter()) {
                *a = xv.mul_add(wv, *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], n: usize, k: usize, w: &[f32], m: usize) -> Vec<f32> {
        let mut y = vec![0.0; n * m];
        for t in 0..n {
            for j in 0..m {
                y[t * m + j] = (0..k).map(|i| x[t * k + i] * w[i * m + j]).sum();
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
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
    fn i8_kernel_applies_column_scales() {
        let (n, k, m) = (3, 40, 260);
        let x = values(n * k, 3);
        let q: Vec<i8> = (0..k * m)
            .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
            .collect();
        let scales: Vec<f32> = (0..m).map(|j| 0.01 + j as f32 * 1e-4).collect();
        let dequant: Vec<f32> = (0..k * m).map(|i| q[i] as f32 * scales[i % m]).collect();
        let got = matmul_i8(&x, n, k, &q, &scales, m);
        let want = naive(&x, n, k, &dequant, m);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }
}
