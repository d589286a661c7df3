//! Weight-only int8 quantization: symmetric, one scale per output channel per block of
//! [`BLOCK_ROWS`] input rows.
//!
//! Every linear layer's `[in, out]` weight becomes i8 values `q` and f32 scales with
//! `W[i, o] ≈ q[i, o] · scale[i / 32, o]`. The kernels stream the i8 values (a quarter of
//! the f32 bytes; decoding is memory-bound) and apply each scale once per block of 32
//! products, so the scales cost 1/32 of the work and 1/8 byte per weight.
//!
//! Why blocks rather than one scale per output channel: with one scale per column the
//! step is set by the column's largest weight over all inputs. On the GGUF-derived test
//! models (their weights come in blocks of 32 with their own scales) per-channel int8
//! flipped the next-token argmax at 2.9% (Qwen2.5-Coder-0.5B) and 3.7% (SmolLM2-135M)
//! of the positions of ~900 tokens of prose; blocks of 32 cut the mean logit error
//! 3× and 2× and the flips to 0.8% and 3.1%. (Measured by simulating each scheme in f32.)

use std::fmt;
use std::str::FromStr;

/// The largest quantized magnitude: symmetric, so -128 is never used and `-q` is exact.
const Q_MAX: f32 = 127.0;

/// Input rows that share one scale per output column.
pub const BLOCK_ROWS: usize = 32;

/// How the weights of the linear layers are held in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Every weight in f32, as loaded (bf16/f16 checkpoints are widened exactly).
    #[default]
    F32,
    /// Linear layers (including the LM head) in int8 with per-block scales; embeddings,
    /// norms and biases stay f32.
    Int8,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
        })
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "int8" | "i8" => Ok(Self::Int8),
            other => Err(format!(
                "unknown precision `{other}` (expected f32 or int8)"
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

/// Scale and reciprocal for a group of weights with the given largest magnitude. An
/// all-zero group gets scale 1 so dequantization never divides by zero.
fn group_scale(max_abs: f32) -> (f32, f32) {
    let scale = if max_abs > 0.0 && max_abs.is_finite() {
        max_abs / Q_MAX
    } else {
        1.0
    };
    (scale, 1.0 / scale)
}

fn quantize_value(w: f32, inverse_scale: f32) -> i8 {
    (w * inverse_scale).round().clamp(-Q_MAX, Q_MAX) as i8
}

impl QuantizedMatrix {
    /// Quantizes a row-major `[in, out]` f32 matrix: for each block of input rows and
    /// each column, `scale = max |W| / 127` over the block and `q = round(W / scale)`.
    pub fn quantize(weight: &[f32], in_features: usize, out_features: usize) -> Self {
        let (k, m) = (in_features, out_features);
        assert_eq!(weight.len(), k * m);
        let mut values = vec![0i8; k * m];
        let mut scales = Vec::with_capacity(scale_rows(k) * m);
        for i0 in (0..k).step_by(BLOCK_ROWS) {
            let rows = i0..(i0 + BLOCK_ROWS).min(k);
            let mut max_abs = vec![0.0f32; m];
            for i in rows.clone() {
                for (a, w) in max_abs.iter_mut().zip(&weight[i * m..(i + 1) * m]) {
                    *a = a.max(w.abs());
                }
            }
            let (block_scales, inverse): (Vec<f32>, Vec<f32>) =
                max_abs.into_iter().map(group_scale).unzip();
            for i in rows {
                let q_row = &mut values[i * m..(i + 1) * m];
                for ((q, &w), &inv) in q_row.iter_mut().zip(&weight[i * m..]).zip(&inverse) {
                    *q = quantize_value(w, inv);
                }
            }
            scales.extend(block_scales);
        }
        Self {
            in_features,
            out_features,
            values,
            scales,
        }
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

/// Quantizes Hugging Face `[out, in]` weights straight into one fused `[in, Σ out]` int8
/// matrix, the layout [`transpose_and_concat`](crate::layers::transpose_and_concat)
/// gives in f32. A block of one output channel is a contiguous run of an HF row, so its
/// scale needs no transposed copy: quantizing holds one part's f32 values at a time and
/// never builds the fused f32 matrix.
pub struct FusedQuantizer {
    in_features: usize,
    total_out: usize,
    next_column: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
}

impl FusedQuantizer {
    pub fn new(in_features: usize, total_out: usize) -> Self {
        Self {
            in_features,
            total_out,
            next_column: 0,
            values: vec![0; in_features * total_out],
            scales: vec![0.0; scale_rows(in_features) * total_out],
        }
    }

    /// Appends the next part's output channels as columns.
    ///
    /// # Shapes
    /// - part: `[out, in_features]`
    pub fn push_part(&mut self, part: &[f32], out: usize) {
        let (k, m) = (self.in_features, self.total_out);
        assert_eq!(part.len(), out * k, "part shape");
        assert!(self.next_column + out <= m, "too many columns");
        let col0 = self.next_column;
        // 32 × 32 tiles (output channels × one block of inputs), as in the blocked
        // transpose of `transpose_and_concat`: reads and writes stay within a few cache
        // lines even for a 150k-column LM head.
        const TILE: usize = 32;
        let mut inverse = [0.0f32; TILE];
        for o0 in (0..out).step_by(TILE) {
            let o1 = (o0 + TILE).min(out);
            for (b, i0) in (0..k).step_by(BLOCK_ROWS).enumerate() {
                let i1 = (i0 + BLOCK_ROWS).min(k);
                for o in o0..o1 {
                    let block = &part[o * k + i0..o * k + i1];
                    let max_abs = block.iter().fold(0.0f32, |a, w| a.max(w.abs()));
                    let (scale, inv) = group_scale(max_abs);
                    self.scales[b * m + col0 + o] = scale;
                    inverse[o - o0] = inv;
                }
                for i in i0..i1 {
                    let dst = &mut self.values[i * m + col0 + o0..i * m + col0 + o1];
                    for (j, q) in dst.iter_mut().enumerate() {
                        *q = quantize_value(part[(o0 + j) * k + i], inverse[j]);
                    }
                }
            }
        }
        self.next_column += out;
    }

    pub fn finish(self) -> QuantizedMatrix {
        assert_eq!(self.next_column, self.total_out, "missing parts");
        QuantizedMatrix {
            in_features: self.in_features,
            out_features: self.total_out,
            values: self.values,
            scales: self.scales,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_parses_and_prints() {
        assert_eq!("int8".parse::<Precision>().unwrap(), Precision::Int8);
        assert_eq!("F32".parse::<Precision>().unwrap(), Precision::F32);
        assert!("fp8".parse::<Precision>().unwrap_err().contains("fp8"));
        assert_eq!(Precision::Int8.to_string(), "int8");
        assert_eq!(Precision::default(), Precision::F32);
    }

    #[test]
    fn each_block_of_each_column_has_its_own_scale() {
        // [40 in, 2 out]: blocks of rows 0..32 and 32..40. Column 0 spans ±2 in the
        // first block and ±0.5 in the second; column 1 is ±0.01 throughout.
        let (k, m) = (40, 2);
        let mut w = vec![0.0f32; k * m];
        for i in 0..k {
            let big = if i < 32 { 2.0 } else { 0.5 };
            w[i * m] = big * ((i % 5) as f32 - 2.0) / 2.0;
            w[i * m + 1] = 0.01 * ((i % 3) as f32 - 1.0);
        }
        let q = QuantizedMatrix::quantize(&w, k, m);
        assert_eq!(scale_rows(k), 2);
        assert_eq!(
            q.scales,
            vec![2.0 / 127.0, 0.01 / 127.0, 0.5 / 127.0, 0.01 / 127.0]
        );
        for (i, (a, b)) in q.dequantize().iter().zip(&w).enumerate() {
            let step = q.scales[(i / m / BLOCK_ROWS) * m + i % m];
            assert!((a - b).abs() <= step / 2.0 + 1e-9, "{i}: {a} vs {b}");
        }
        assert_eq!(q.size_bytes(), k * m + 4 * 4);
        let full = q.dequantize();
        let right = q.dequantize_columns(1..2);
        assert_eq!(
            right,
            full.iter().skip(1).step_by(2).copied().collect::<Vec<_>>()
        );
    }

    #[test]
    fn rounding_is_symmetric_and_saturates_at_127() {
        let q = QuantizedMatrix::quantize(&[1.0, -1.0, 0.5, -0.25], 4, 1);
        assert_eq!(q.values, vec![127, -127, 64, -32]); // 63.5 rounds away from zero
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
        let fused = crate::layers::transpose_and_concat(&[(&a, 5), (&b, 3)], k);
        let want = QuantizedMatrix::quantize(&fused, k, 8);
        let mut quantizer = FusedQuantizer::new(k, 8);
        quantizer.push_part(&a, 5);
        quantizer.push_part(&b, 3);
        assert_eq!(quantizer.finish(), want);
    }

    #[test]
    fn zero_blocks_get_unit_scale() {
        let q = QuantizedMatrix::quantize(&[0.0, 1.0, 0.0, -1.0], 2, 2);
        assert_eq!(q.scales, vec![1.0, 1.0 / 127.0]);
        assert_eq!(q.values, vec![0, 127, 0, -127]);
    }
}
