//! The sampler's passes over a whole vocabulary, written to vectorise.
//!
//! A speculative step turns up to 2γ + 1 logits rows into distributions (γ draft rows,
//! γ + 1 target rows); with a 152k-token vocabulary a scalar softmax (a libm `exp` per
//! entry) and a top-5 scan cost about 1 ms per row, several percent of a step once the
//! model itself is fast. These loops run over fixed 16-lane chunks with a polynomial
//! `exp`, compiled for AVX2 where the CPU has it. They do the same float operations in
//! the same order on every CPU (no fused multiply-adds, lanes added in a fixed order), so
//! a seed gives the same tokens everywhere.

/// Lanes of the partial results.
const LANES: usize = 16;

/// `e^x` for `x ≤ 88.7`, about 2 ulp (Cephes' polynomial after reducing by powers of
/// two); 0 below −87.3 (so a masked logit, −∞, has probability exactly 0). Plain
/// multiplies and adds, so it vectorises inside any loop and gives the same bits on
/// every CPU (the CPU engine's SiLU and attention use it too).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const MIN: f32 = -87.336_55;
    let tiny = x < MIN;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Ties-to-even rounding that vectorises (x · log2 e is far below 2²²).
    const MAGIC: f32 = 12_582_912.0;
    // max/min rather than clamp, and the power of two built from bits rather than an
    // `as i32` (which saturates): both vectorise.
    #[allow(clippy::manual_clamp)]
    let x = x.max(MIN).min(88.722_83);
    let n = (x * LOG2E + MAGIC) - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    p = p * (r * r) + r + 1.0;
    // n + 127 is an integer in 1..=254: added to 2²³ it sits in the low mantissa bits.
    let biased = (n + (127.0 + 8_388_608.0)).to_bits() & 0xFF;
    let e = p * f32::from_bits(biased << 23);
    if tiny {
        0.0
    } else {
        e
    }
}

/// Runs `$body` compiled for AVX-512 or AVX2 when the CPU has it (the same operations
/// either way, so the same bits: AVX-512 does a chunk of 16 lanes in one vector, which
/// halves the time of a softmax over a 152k vocabulary).
macro_rules! with_simd {
    ($name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $body:ident) => {
        pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has these features.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// Replaces NaN by −∞ and multiplies by `scale` (1/T), in place; returns the maximum.
#[inline(always)]
fn prepare_body(values: &mut [f32], scale: f32) -> f32 {
    #[inline(always)]
    fn one(v: &mut f32, scale: f32, lane: &mut f32) {
        let x = *v * scale;
        // x != x: NaN, written so that it vectorises.
        #[allow(clippy::eq_op)]
        let x = if x != x { f32::NEG_INFINITY } else { x };
        *v = x;
        *lane = if x > *lane { x } else { *lane };
    }
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = values.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(chunk.iter_mut()) {
            one(v, scale, l);
        }
    }
    for (l, v) in lanes.iter_mut().zip(chunks.into_remainder()) {
        one(v, scale, l);
    }
    chunk_max(&lanes)
}

/// `v ← e^(v − max)`, in place; returns the sum (f32 lanes per chunk of 4096, the
/// chunks added in f64: an f32 running sum over 150k entries drifts).
#[inline(always)]
fn exp_sum_body(values: &mut [f32], max: f32) -> f64 {
    let mut total = 0.0f64;
    for block in values.chunks_mut(4096) {
        let mut lanes = [0.0f32; LANES];
        let mut chunks = block.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for (l, v) in lanes.iter_mut().zip(chunk.iter_mut()) {
                *v = exp(*v - max);
                *l += *v;
            }
        }
        for (l, v) in lanes.iter_mut().zip(chunks.into_remainder()) {
            *v = exp(*v - max);
            *l += *v;
        }
        total += lanes.iter().fold(0.0f64, |a, &l| a + f64::from(l));
    }
    total
}

#[inline(always)]
fn scale_body(values: &mut [f32], factor: f32) {
    for v in values.iter_mut() {
        *v *= factor;
    }
}

/// The largest value of a chunk of 16 (lanes folded pairwise, as a vector would).
#[inline(always)]
fn chunk_max(chunk: &[f32; LANES]) -> f32 {
    let mut m = *chunk;
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            m[i] = if m[i + width] > m[i] {
                m[i + width]
            } else {
                m[i]
            };
        }
        width /= 2;
    }
    m[0]
}

/// Indices of chunks of [`LANES`] values whose maximum exceeds `threshold`, in order,
/// into `out` (cleared first; a last partial chunk is always listed).
#[inline(always)]
fn chunks_above_body(values: &[f32], threshold: f32, out: &mut Vec<usize>) {
    out.clear();
    let chunks = values.chunks_exact(LANES);
    let partial = !chunks.remainder().is_empty();
    for (c, chunk) in chunks.enumerate() {
        let chunk: &[f32; LANES] = chunk.try_into().expect("chunks_exact");
        if chunk_max(chunk) > threshold {
            out.push(c);
        }
    }
    if partial {
        out.push(values.len() / LANES);
    }
}

with_simd!(prepare(values: &mut [f32], scale: f32) -> f32 => prepare_body);
with_simd!(exp_sum(values: &mut [f32], max: f32) -> f64 => exp_sum_body);
with_simd!(scale(values: &mut [f32], factor: f32) => scale_body);
with_simd!(chunks_above(values: &[f32], threshold: f32, out: &mut Vec<usize>) => chunks_above_body);

/// The softmax of `values` times `scale` (1/T), in place; NaN counts as −∞, and a row
/// with nothing finite becomes uniform. The sampler calls the two halves itself (it
/// masks between them); tests use the whole.
#[cfg(test)]
pub(crate) fn softmax_in_place(values: &mut [f32], scale_by: f32) {
    let max = prepare(values, scale_by);
    softmax_prepared(values, max);
}

/// The softmax of values [`prepare`] left (NaN gone, already scaled), `max` being
/// what it returned; a row with nothing finite becomes uniform.
pub(crate) fn softmax_prepared(values: &mut [f32], max: f32) {
    if max == f32::NEG_INFINITY {
        let uniform = 1.0 / values.len() as f32;
        values.iter_mut().for_each(|v| *v = uniform);
        return;
    }
    let sum = exp_sum(values, max);
    scale(values, (1.0 / sum) as f32);
}

/// Chunk size of [`top_k`]'s scan.
pub(crate) const CHUNK: usize = LANES;

/// Calls `visit(index, value)` for every value of `values` that may enter a running
/// top-k: all of them at first, then only those in chunks whose maximum beats
/// `threshold()`, re-read after each chunk (the k-th best so far).
pub(crate) fn scan_candidates(
    values: &[f32],
    mut threshold: impl FnMut() -> f32,
    mut visit: impl FnMut(usize, f32),
) {
    // The first chunks fill the top-k; after that most chunks are skipped whole.
    let mut hot = Vec::with_capacity(64);
    let mut start = 0;
    while start < values.len() {
        // Batches of 64 chunks between threshold updates: the threshold rises fast.
        let end = (start + 64 * CHUNK).min(values.len());
        chunks_above(&values[start..end], threshold(), &mut hot);
        for &c in &hot {
            let first = start + c * CHUNK;
            for (i, &v) in values[first..(first + CHUNK).min(end)].iter().enumerate() {
                visit(first + i, v);
            }
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_std() {
        for i in -2000..=800 {
            let x = i as f32 * 0.1;
            let (got, want) = (exp(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 4e-7 || want < 1.2e-38,
                "{x}: {got} vs {want}"
            );
        }
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn softmax_sums_to_one_and_handles_nan_and_all_masked() {
        let mut v: Vec<f32> = (0..1000).map(|i| (i % 37) as f32 / 5.0).collect();
        v[3] = f32::NAN;
        softmax_in_place(&mut v, 0.5);
        let sum: f64 = v.iter().map(|&p| f64::from(p)).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        assert_eq!(v[3], 0.0);
        let mut masked = vec![f32::NEG_INFINITY; 4];
        softmax_in_place(&mut masked, 1.0);
        assert_eq!(masked, vec![0.25; 4]);
    }

    #[test]
    fn the_simd_paths_give_the_portable_bits() {
        // 5,000 values: a chunk of 4,096 and a partial one, a partial last 16; NaN, −∞
        // and values far below the maximum (exp underflows to 0).
        let values: Vec<f32> = (0..5000)
            .map(|i| match i {
                7 => f32::NAN,
                8 => f32::NEG_INFINITY,
                _ => ((i * 7919) % 1013) as f32 / 7.0 - 120.0,
            })
            .collect();
        let (mut simd, mut portable) = (values.clone(), values.clone());
        let (m, m0) = (prepare(&mut simd, 0.7), prepare_body(&mut portable, 0.7));
        assert_eq!(m.to_bits(), m0.to_bits());
        let (s, s0) = (exp_sum(&mut simd, m), exp_sum_body(&mut portable, m0));
        assert_eq!(s.to_bits(), s0.to_bits());
        scale(&mut simd, 0.3);
        scale_body(&mut portable, 0.3);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&simd), bits(&portable));
        let (mut above, mut above0) = (Vec::new(), Vec::new());
        chunks_above(&values, 0.0, &mut above);
        chunks_above_body(&values, 0.0, &mut above0);
        assert_eq!(above, above0);
    }

    #[test]
    fn the_scan_visits_every_value_above_the_threshold() {
        let values: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32).collect();
        let mut seen = Vec::new();
        scan_candidates(&values, || 990.0, |i, v| seen.push((i, v)));
        let want: Vec<usize> = (0..1000).filter(|&i| values[i] > 990.0).collect();
        for i in want {
            assert!(seen.iter().any(|&(j, _)| j == i), "{i} missed");
        }
    }
}
