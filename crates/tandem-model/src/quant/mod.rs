//! Weight-only int8 quantization: symmetric, one scale per output channel per block of
//! [`BLOCK_ROWS`] input rows, each scale chosen to minimise the block's rounding error
//! weighted by how much signal its input channels carry.
//!
//! Every linear layer's `[in, out]` weight becomes i8 values `q` and scales with
//! `W[i, o] ≈ q[i, o] · scale[i / 16, o]`. The CPU kernels stream the packed form
//! ([`packed`]: 16-column tiles laid out for integer dot products, each block's scale an
//! f16 relative to its column's f32 scale, 1.125 bytes per weight) and apply each scale
//! once per block of 16 products. [`QuantizedMatrix`] is the same matrix unpacked to
//! `[in, out]` values and f32 scales, the form the burn backends multiply by.
//!
//! How the scale of a block is chosen: the plain choice, `max |w| / 127`, spends the
//! whole int8 range on the block's largest weight, wherever the others fall. We try
//! [`SCALE_CANDIDATES`] scales from `max |w| / 127` to `max |w| / 64` and keep the one
//! with the smallest `Σ importance[i] · (w[i] − scale · q[i])²`, where `importance[i]` is
//! the mean square of input channel `i` over a calibration text
//! ([`crate::quant::calibration`]): an error on a channel that is usually near zero barely moves
//! the output, one on a loud channel moves it a lot. This is the weighting llama.cpp's
//! importance matrix uses for its quantizers; it needs no extra bits at run time.
//!
//! Measured on SmolLM2-135M (next-token top-1 agreement with f32 over ~900 positions of
//! prose, simulated in f32 by `scripts/int8_schemes.py`): blocks of 32 with `max/127`
//! 96.9%, blocks of 16 with `max/127` 97.6%, blocks of 16 with the unweighted search
//! 98.0%, blocks of 16 with the weighted search 99.2% (mean |logit error| 0.115 → 0.032).
//! Part of the search's gain on our test models comes from their weights being
//! dequantized 4–5-bit GGUF values, which sit on a coarse grid a well-chosen scale can
//! follow; on bf16 checkpoints expect the weighting, not the grid, to do most of the work.

pub mod calibration;
pub mod ggml;
pub mod packed;

pub use packed::{PackedInt8, PackedInt8Builder};

use std::fmt;
use std::str::FromStr;

/// The largest quantized magnitude: symmetric, so -128 is never used and `-q` is exact.
pub(crate) const Q_MAX: f32 = 127.0;

/// Input rows that share one scale per output column.
pub const BLOCK_ROWS: usize = 16;

/// Scales tried per block: `max |w| / (127 − j)` for `j` in `0..SCALE_CANDIDATES`. Coarser
/// steps than `max / 127` can fit the bulk of a block better at the cost of its extremes
/// (never clipped: `|w| / scale ≤ 127 − j`). 64 found 99.2% top-1 on SmolLM2 where 32
/// found 99.0% and 16 98.0%.
pub const SCALE_CANDIDATES: usize = 64;

/// How the weights of the linear layers are held in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Every weight in f32, as loaded (bf16/f16 checkpoints are widened exactly).
    #[default]
    F32,
    /// Linear layers (including the LM head) in int8 with per-block scales; embeddings,
    /// norms and biases stay f32.
    Int8,
    /// Linear layers (including the LM head) in f16, their inputs rounded to f16 for
    /// the product; embeddings, norms, biases and the KV cache stay f32. Burn backends
    /// only (flex, cuda): it is the GPU's half-precision path, and the CPU engine's int8
    /// streams fewer bytes.
    F16,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
            Self::F16 => "f16",
        })
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "int8" | "i8" => Ok(Self::Int8),
            "f16" | "fp16" => Ok(Self::F16),
            other => Err(format!(
                "unknown precision `{other}` (expected f32, f16 or int8)"
            )),
        }
    }
}

/// An int8 weight matrix on the host: `[in, out]` row-major values and one scale per
/// output column for each block of [`BLOCK_ROWS`] input rows (the last block may be
/// shorter).
///
/// # Shapes
/// - values: `[in_features, out_features]`
/// - scales: `[in_features.div_ceil(BLOCK_ROWS), out_features]`
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedMatrix {
    pub in_features: usize,
    pub out_features: usize,
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
}

/// Number of scale rows of a matrix with `in_features` input rows.
pub fn scale_rows(in_features: usize) -> usize {
    in_features.div_ceil(BLOCK_ROWS)
}

/// Rounds to the nearest integer, ties to even, for `|x| < 2²²`: adding and removing
/// 1.5 · 2²³ leaves no fraction bits. Unlike `f32::round` (a libm call without SSE4.1) it
/// vectorises, and the scale search rounds every weight 64 times.
#[inline(always)]
pub(crate) fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

pub(crate) fn quantize_value(w: f32, inverse_scale: f32) -> i8 {
    round_even(w * inverse_scale).clamp(-Q_MAX, Q_MAX) as i8
}

/// Uniform importance, for weights quantized without a calibration pass.
pub(crate) fn uniform_importance(in_features: usize) -> Vec<f32> {
    vec![1.0; in_features]
}

impl QuantizedMatrix {
    /// Quantizes a row-major `[in, out]` f32 matrix with every input channel equally
    /// important (see [`quantize_weighted`](Self::quantize_weighted)).
    pub fn quantize(weight: &[f32], in_features: usize, out_features: usize) -> Self {
        Self::quantize_weighted(
            weight,
            in_features,
            out_features,
            &uniform_importance(in_features),
        )
    }

    /// Quantizes a row-major `[in, out]` f32 matrix: for each block of input rows and
    /// each column, the scale with the smallest importance-weighted rounding error (see
    /// the module docs), then `q = round(W / scale)`.
    ///
    /// # Shapes
    /// - weight: `[in, out]`, importance: `[in]`
    pub fn quantize_weighted(
        weight: &[f32],
        in_features: usize,
        out_features: usize,
        importance: &[f32],
    ) -> Self {
        let (k, m) = (in_features, out_features);
        assert_eq!(weight.len(), k * m);
        // One HF-layout part with every column: the packed quantizer does the work.
        let mut rows = vec![0.0f32; k * m];
        for i in 0..k {
            for o in 0..m {
                rows[o * k + i] = weight[i * m + o];
            }
        }
        let mut builder = PackedInt8Builder::new(k, m, Some(importance));
        builder.push_part(&rows, m);
        builder.finish().to_matrix()
    }

    /// The f32 matrix the int8 one stands for (tests and accuracy checks).
    pub fn dequantize(&self) -> Vec<f32> {
        let m = self.out_features;
        let mut out = Vec::with_capacity(self.values.len());
        for (i, row) in self.values.chunks_exact(m.max(1)).enumerate() {
            let s = &self.scales[(i / BLOCK_ROWS) * m..][..m];
            out.extend(row.iter().zip(s).map(|(&q, &s)| q as f32 * s));
        }
        out
    }

    /// Columns `cols` of the f32 matrix, `[in, cols.len()]` row-major, dequantized in
    /// parallel over row blocks.
    pub fn dequantize_columns(&self, cols: std::ops::Range<usize>) -> Vec<f32> {
        use rayon::prelude::*;
        let (k, m, w) = (self.in_features, self.out_features, cols.len());
        assert!(cols.end <= m);
        let mut out = vec![0.0f32; k * w];
        if w == 0 {
            return out;
        }
        out.par_chunks_mut(BLOCK_ROWS * w)
            .enumerate()
            .for_each(|(b, block)| {
                let s = &self.scales[b * m + cols.start..b * m + cols.end];
                for (r, row) in block.chunks_mut(w).enumerate() {
                    let i = b * BLOCK_ROWS + r;
                    let q = &self.values[i * m + cols.start..i * m + cols.end];
                    for ((o, &q), &s) in row.iter_mut().zip(q).zip(s) {
                        *o = q as f32 * s;
                    }
                }
            });
        out
    }

    /// Bytes the matrix occupies (values and scales).
    pub fn size_bytes(&self) -> usize {
        self.values.len() + 4 * self.scales.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_models::pseudo_random_values as values;

    #[test]
    fn precision_parses_and_prints() {
        assert_eq!("int8".parse::<Precision>().unwrap(), Precision::Int8);
        assert_eq!("F32".parse::<Precision>().unwrap(), Precision::F32);
        assert!("fp8".parse::<Precision>().unwrap_err().contains("fp8"));
        assert_eq!(Precision::Int8.to_string(), "int8");
        assert_eq!("fp16".parse::<Precision>().unwrap(), Precision::F16);
        assert_eq!(Precision::F16.to_string(), "f16");
        assert_eq!(Precision::default(), Precision::F32);
    }

    /// Σ importance · (w − dequantized w)² of a whole matrix.
    fn weighted_error(q: &QuantizedMatrix, w: &[f32], importance: &[f32]) -> f64 {
        let m = q.out_features;
        q.dequantize()
            .iter()
            .zip(w)
            .enumerate()
            .map(|(i, (a, b))| importance[i / m] as f64 * ((a - b) as f64).powi(2))
            .sum()
    }

    #[test]
    fn each_block_of_each_column_has_its_own_scale() {
        // [40 in, 2 out]: blocks of rows 0..16, 16..32 and 32..40. Column 0 spans ±2 in
        // the first two blocks and ±0.5 in the last; column 1 is ±0.01 throughout.
        let (k, m) = (40, 2);
        let mut w = vec![0.0f32; k * m];
        for i in 0..k {
            let big = if i < 32 { 2.0 } else { 0.5 };
            w[i * m] = big * ((i % 5) as f32 - 2.0) / 2.0;
            w[i * m + 1] = 0.01 * ((i % 3) as f32 - 1.0);
        }
        let q = QuantizedMatrix::quantize(&w, k, m);
        assert_eq!(scale_rows(k), 3);
        assert_eq!(q.scales.len(), 3 * m);
        for (b, max) in [(0, [2.0f32, 0.01]), (1, [2.0, 0.01]), (2, [0.5, 0.01])] {
            for (o, max) in max.iter().enumerate() {
                let s = q.scales[b * m + o];
                assert!(
                    s >= max / 127.0 * 0.999 && s <= max / 64.0 * 1.001,
                    "{b},{o}: {s}"
                );
            }
        }
        // These blocks hold a few evenly spaced values: the search finds a scale that
        // represents them up to the f16 rounding of the stored relative scale.
        for (a, b) in q.dequantize().iter().zip(&w) {
            assert!((a - b).abs() <= b.abs() / 1024.0 + 1e-9, "{a} vs {b}");
        }
        assert_eq!(q.size_bytes(), k * m + 4 * 3 * m);
        let full = q.dequantize();
        let right = q.dequantize_columns(1..2);
        assert_eq!(
            right,
            full.iter().skip(1).step_by(2).copied().collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_search_finds_an_exact_scale_max_over_127_misses() {
        // max/127 puts 0.5 at 63.5 and 0.25 at 31.75. max/124 would hit all four but is
        // not exact once stored as an f16 relative scale (127/124); max/64 is (127/64),
        // and the search finds it.
        let w = [1.0, -1.0, 0.5, -0.25];
        let q = QuantizedMatrix::quantize(&w, 4, 1);
        assert_eq!(q.values, vec![64, -64, 32, -16]);
        assert_eq!(q.dequantize(), w);
    }

    #[test]
    fn values_never_leave_plus_minus_127() {
        assert_eq!(quantize_value(200.0, 1.0), 127);
        assert_eq!(quantize_value(-200.0, 1.0), -127);
        assert_eq!(round_even(2.5), 2.0);
        assert_eq!(round_even(-3.5), -4.0);
        assert_eq!(round_even(-0.4), 0.0);
    }

    #[test]
    fn search_is_never_worse_than_max_over_127_and_follows_the_importance() {
        let (k, m) = (64, 24);
        let w = values(k * m, 7);
        // Channels 0..8 carry 1000× the signal of the others.
        let importance: Vec<f32> = (0..k).map(|i| if i < 8 { 1000.0 } else { 1.0 }).collect();
        let plain = {
            let mut values = vec![0i8; k * m];
            let mut scales = vec![0.0f32; scale_rows(k) * m];
            for i in 0..k {
                for o in 0..m {
                    let b = i / BLOCK_ROWS;
                    let max = (b * BLOCK_ROWS..((b + 1) * BLOCK_ROWS).min(k))
                        .map(|r| w[r * m + o].abs())
                        .fold(0.0f32, f32::max);
                    scales[b * m + o] = max / Q_MAX;
                    values[i * m + o] = quantize_value(w[i * m + o], Q_MAX / max);
                }
            }
            QuantizedMatrix {
                in_features: k,
                out_features: m,
                values,
                scales,
            }
        };
        let weighted = QuantizedMatrix::quantize_weighted(&w, k, m, &importance);
        let uniform = QuantizedMatrix::quantize(&w, k, m);
        let e_plain = weighted_error(&plain, &w, &importance);
        let e_weighted = weighted_error(&weighted, &w, &importance);
        let e_uniform = weighted_error(&uniform, &w, &importance);
        assert!(e_weighted < e_plain, "{e_weighted} vs {e_plain}");
        assert!(e_weighted <= e_uniform, "{e_weighted} vs {e_uniform}");
        // And the unweighted search is never worse than max/127 on the plain error.
        let ones = vec![1.0; k];
        assert!(weighted_error(&uniform, &w, &ones) <= weighted_error(&plain, &w, &ones));
    }

    #[test]
    fn fused_quantizer_equals_quantizing_the_fused_f32_matrix() {
        // Two HF parts, [5 out, 70 in] and [3 out, 70 in]: three blocks, one partial.
        let k = 70;
        let a: Vec<f32> = (0..5 * k)
            .map(|i| ((i * 17 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..3 * k)
            .map(|i| ((i * 5 % 9) as f32 - 4.0) / 300.0)
            .collect();
        let fused = crate::families::layers::transpose_and_concat(&[(&a, 5), (&b, 3)], k);
        let want = QuantizedMatrix::quantize(&fused, k, 8);
        let mut builder = PackedInt8Builder::new(k, 8, None);
        builder.push_part(&a, 5);
        builder.push_part(&b, 3);
        assert_eq!(builder.finish().to_matrix(), want);
    }

    #[test]
    fn zero_blocks_get_unit_scale() {
        let q = QuantizedMatrix::quantize(&[0.0, 1.0, 0.0, -1.0], 2, 2);
        assert_eq!(q.scales, vec![1.0, 1.0 / 127.0]);
        assert_eq!(q.values, vec![0, 127, 0, -127]);
    }
}
