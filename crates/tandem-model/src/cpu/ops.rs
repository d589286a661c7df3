//! The row operations of a decoder layer besides the matrix products: RMSNorm (fused
//! with quantizing its output for the int8 kernels), activation quantization, the
//! MLP's gate (SiLU or tanh GELU, fused likewise), RoPE in place, soft-capping, and the
//! vector helpers attention uses.
//!
//! Each works on one row at a time, so a row's result never depends on the other rows
//! of a pass. They are plain Rust over fixed 16-lane chunks, compiled per ISA by
//! [`multiversion`]: no `mul_add`, no reassociation, so every ISA gives the same bits.

use std::ops::Range;

use super::isa::multiversion;
#[cfg(test)]
use super::kernels::QuantizedBuffers;
use super::kernels::{BlockSlots, RowSink};
use crate::config::Activation;
use crate::quant::{BLOCK_ROWS, Q_MAX};

/// Lanes of the partial sums of reductions (one 512-bit vector of f32).
const LANES: usize = 16;

/// `Σ x²` with 16 partial sums, added in lane order at the end.
#[inline(always)]
fn sum_of_squares(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v * v;
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l += v * v;
    }
    lanes.iter().fold(0.0, |a, &l| a + l)
}

/// `1 / sqrt(mean(x²) + eps)`, as transformers computes RMSNorm's factor in f32.
#[inline(always)]
fn inverse_rms(x: &[f32], eps: f32) -> f32 {
    1.0 / (sum_of_squares(x) / x.len() as f32 + eps).sqrt()
}

/// Quantizes one block of 16 values (a short last block padded with zeros) to two int8
/// levels (see [`QuantizedRows`](super::kernels::QuantizedRows)): `hi` with the scale
/// `max |x| / 127` (ties to even), `lo` the remainder at 128 times the resolution.
/// Writes the scale of the combined value `128 · hi + lo` (an all-zero block has scale
/// 0) and the offset the kernels start from. Fixed-size loops and integers taken from
/// the rounding's bits (no saturating `as`), so it vectorises.
#[inline(always)]
fn quantize_block(x: &[f32; BLOCK_ROWS], out: BlockSlots<'_>) {
    let BlockSlots {
        hi,
        lo,
        scale,
        offset,
    } = out;
    // Adding 1.5 · 2²³ rounds to an integer (ties to even) held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: i32 = 0x4B40_0000;
    // max |x| folded pairwise across the 16 lanes (4 steps, not a chain of 16), NaN
    // read as 0: the same value as a running maximum that skips NaN.
    let mut m = [0.0f32; BLOCK_ROWS];
    for (m, &v) in m.iter_mut().zip(x) {
        let a = v.abs();
        *m = if a > 0.0 { a } else { 0.0 };
    }
    let max_abs = fold_pairwise(m, |a, b| if b > a { b } else { a });
    if max_abs.is_nan() || max_abs <= 0.0 {
        *hi = [0; BLOCK_ROWS];
        *lo = [0; BLOCK_ROWS];
        *scale = 0.0;
        *offset = 0;
        return;
    }
    let inverse = Q_MAX / max_abs;
    let (mut high, mut low) = ([0i32; BLOCK_ROWS], [0i32; BLOCK_ROWS]);
    for i in 0..BLOCK_ROWS {
        // |scaled| ≤ 127 and |scaled − top| ≤ 0.5: no clamping needed.
        let scaled = x[i] * inverse;
        let rounded = scaled + MAGIC;
        let top = rounded - MAGIC;
        high[i] = rounded.to_bits() as i32 - MAGIC_BITS;
        low[i] = ((scaled - top) * 128.0 + MAGIC).to_bits() as i32 - MAGIC_BITS;
    }
    // Narrowed whole (one vector narrowing and a 16-byte store each; bytes stored one
    // by one fill the store queue while the line is fetched from the other core).
    *hi = high.map(|v| v as i8);
    *lo = low.map(|v| v as i8);
    *scale = max_abs / Q_MAX / 128.0;
    *offset = -128 * high.iter().sum::<i32>() - low.iter().sum::<i32>();
}

/// Quantizes the values `value(c)` of the channels of `blocks` (blocks of 16 of `0..k`)
/// into `out`.
#[inline(always)]
fn quantize_values(
    k: usize,
    mut value: impl FnMut(usize) -> f32,
    mut out: RowSink<'_>,
    blocks: Range<usize>,
) {
    for b in blocks {
        let start = b * BLOCK_ROWS;
        let mut block = [0.0f32; BLOCK_ROWS];
        for (i, v) in block.iter_mut().enumerate().take(k - start) {
            *v = value(start + i);
        }
        quantize_block(&block, out.block(b));
    }
}

#[inline(always)]
fn quantize_row_body(x: &[f32], out: RowSink<'_>, blocks: Range<usize>) {
    quantize_values(x.len(), |c| x[c], out, blocks);
}

#[inline(always)]
fn rms_norm_body(x: &[f32], gamma: &[f32], eps: f32, out: &mut [f32]) {
    let inv = inverse_rms(x, eps);
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(gamma) {
        *o = g * (v * inv);
    }
}

/// `x += rms_norm(branch)`: the normalized value is added as transformers adds it,
/// `residual + normed`.
#[inline(always)]
fn rms_norm_add_body(branch: &[f32], gamma: &[f32], eps: f32, x: &mut [f32]) {
    let inv = inverse_rms(branch, eps);
    for ((o, &v), &g) in x.iter_mut().zip(branch).zip(gamma) {
        *o += g * (v * inv);
    }
}

multiversion! {
    /// Adds the RMSNorm of `branch` into `x` (Gemma 2/3's norms of a branch's output).
    pub fn rms_norm_add(branch: &[f32], gamma: &[f32], eps: f32, x: &mut [f32]) => rms_norm_add_body
}

/// RMSNorm whose output goes straight into the int8 quantizer, a block at a time: the
/// normalized row is never written out in f32.
#[inline(always)]
fn rms_norm_quantized_body(
    x: &[f32],
    gamma: &[f32],
    eps: f32,
    out: RowSink<'_>,
    blocks: Range<usize>,
) {
    let inv = inverse_rms(x, eps);
    quantize_values(x.len(), |c| gamma[c] * (x[c] * inv), out, blocks);
}

pub(crate) use tandem_decode::vector::exp;

/// `x · sigmoid(x)`.
#[inline(always)]
fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// GELU with the tanh approximation, as PyTorch's `gelu(x, approximate="tanh")`:
/// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const BETA: f32 = 0.797_884_6; // √(2/π)
    const KAPPA: f32 = 0.044_715;
    let inner = BETA * (x + KAPPA * (x * x * x));
    0.5 * x * (1.0 + inner.tanh())
}

#[inline(always)]
fn gate_mul_body(activation: Activation, gate: &[f32], up: &[f32], out: &mut [f32]) {
    // One loop per activation, so that SiLU's vectorises (a branch per value, with
    // GELU's call to tanh in the other arm, kept it scalar).
    match activation {
        Activation::Silu => {
            for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                *o = silu(g) * u;
            }
        }
        Activation::GeluTanh => {
            for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                *o = gelu_tanh(g) * u;
            }
        }
    }
}

/// `cap · tanh(x / cap)`: Gemma 2's soft-capping of attention scores and logits, in
/// transformers' order of operations.
#[inline(always)]
pub(crate) fn soft_cap(x: f32, cap: f32) -> f32 {
    (x / cap).tanh() * cap
}

/// `a · b` with 16 partial sums, added pairwise (lanes 0–7 plus 8–15, then halves
/// again): four vector steps where a left-to-right sum of the lanes was a chain of 15
/// dependent scalar adds, which made attention's scores its slowest part.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        // Whole 16-lane chunks as arrays: one vector each (zipped slices came out as
        // 8-byte loads and shuffles).
        let (x, y): (&[f32; LANES], &[f32; LANES]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for i in 0..LANES {
            lanes[i] += x[i] * y[i];
        }
    }
    for ((l, &x), &y) in lanes.iter_mut().zip(ca.remainder()).zip(cb.remainder()) {
        *l += x * y;
    }
    fold_pairwise(lanes, |a, b| a + b)
}

/// `f` folding `N` lanes pairwise, `lanes[i] = f(lanes[i], lanes[i + N/2])` and then
/// halves again (`N` a power of two): log₂ N vector steps where a fold from left to
/// right is a chain of N − 1 dependent scalar ones, in the same order on every ISA.
#[inline(always)]
pub(crate) fn fold_pairwise<const N: usize>(
    mut lanes: [f32; N],
    f: impl Fn(f32, f32) -> f32,
) -> f32 {
    debug_assert!(N.is_power_of_two());
    let mut width = N / 2;
    while width > 0 {
        for i in 0..width {
            lanes[i] = f(lanes[i], lanes[i + width]);
        }
        width /= 2;
    }
    lanes[0]
}

/// `y += a · x`.
#[inline(always)]
pub(crate) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

multiversion! {
    /// RMSNorm of one row: `out = gamma · (x / rms(x))`.
    pub fn rms_norm(x: &[f32], gamma: &[f32], eps: f32, out: &mut [f32]) => rms_norm_body
}

multiversion! {
    /// RMSNorm of one row, quantized into `out` (see [`quantize_row`]); only the blocks
    /// of `blocks`, the norm's factor taken from the whole row.
    pub fn rms_norm_quantized(
        x: &[f32],
        gamma: &[f32],
        eps: f32,
        out: RowSink<'_>,
        blocks: Range<usize>,
    ) => rms_norm_quantized_body
}

multiversion! {
    /// Quantizes the blocks `blocks` of one row for the int8 kernels into `out`: per
    /// block of 16 values, two int8 levels with scale `max |x| / 127 / 128` (the inputs
    /// past the end in the last block are 0). Threads given disjoint block ranges of the
    /// same rows write disjoint, contiguous parts of the block-major buffers.
    pub fn quantize_row(x: &[f32], out: RowSink<'_>, blocks: Range<usize>) => quantize_row_body
}

multiversion! {
    /// `out = silu(gate) · up`, the SwiGLU gate.
    pub fn gate_mul(activation: Activation, gate: &[f32], up: &[f32], out: &mut [f32]) => gate_mul_body
}

#[inline(always)]
fn gate_mul_quantize_block_body(
    activation: Activation,
    gate: &[f32],
    up: &[f32],
    out: BlockSlots<'_>,
) {
    let (mut g, mut u) = ([0.0f32; BLOCK_ROWS], [0.0f32; BLOCK_ROWS]);
    g[..gate.len()].copy_from_slice(gate);
    u[..up.len()].copy_from_slice(up);
    // Padding: act(0) · 0 = 0.
    let mut block = [0.0f32; BLOCK_ROWS];
    gate_mul_body(activation, &g, &u, &mut block);
    quantize_block(&block, out)
}

multiversion! {
    /// `silu(gate) · up` of one block (at most 16 values), quantized into `out` as
    /// [`quantize_row`] quantizes each block of a row.
    pub fn gate_mul_quantize_block(
        activation: Activation,
        gate: &[f32],
        up: &[f32],
        out: BlockSlots<'_>,
    ) => gate_mul_quantize_block_body
}

/// Rotates each `head_dim` chunk of `x` in place by one position's angles, in the
/// rotate-half convention: `(a, b) → (a·cos − b·sin, b·cos + a·sin)` for the pairs
/// `(i, i + half)`, `half = cos.len()`: the first `2 · half` dimensions of each head
/// rotate, the rest pass (Phi-3's partial rotary embedding).
///
/// # Shapes
/// - x: `[heads · head_dim]`; cos, sin: `[rotary_dim / 2]`
pub fn rope_in_place(x: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32]) {
    let half = cos.len();
    for head in x.chunks_exact_mut(head_dim) {
        let (first, second) = head[..2 * half].split_at_mut(half);
        for (((a, b), &c), &s) in first.iter_mut().zip(second).zip(cos).zip(sin) {
            let (x1, x2) = (*a, *b);
            *a = x1 * c - x2 * s;
            *b = x2 * c + x1 * s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::isa::Isa;
    use crate::test_models::pseudo_random_values as values;

    #[test]
    fn every_isa_gives_the_portable_bits() {
        // 70 values: four full blocks and a partial one.
        let x: Vec<f32> = values(70, 5).iter().map(|v| v * 3.0).collect();
        let gamma: Vec<f32> = values(70, 6).iter().map(|v| 1.0 + v / 10.0).collect();
        let up = values(70, 7);
        let quantized = |f: &dyn Fn(&mut super::super::kernels::QuantizedRowsMut<'_>)| {
            let mut buffers = QuantizedBuffers::new(2, 70);
            // Row 1 of 2: the other row's slots stay as they were.
            f(&mut buffers.rows(2, 70));
            buffers
        };
        let run = |isa: Isa, activation: Activation| {
            let mut norm = vec![0.0f32; 70];
            rms_norm(isa, &x, &gamma, 1e-5, &mut norm);
            let normed =
                quantized(&|out| rms_norm_quantized(isa, &x, &gamma, 1e-5, out.row(1), 0..5));
            let mut act = vec![0.0f32; 70];
            gate_mul(isa, activation, &x, &up, &mut act);
            let gated = quantized(&|out| {
                let mut row = out.row(1);
                for (j, (g, u)) in x.chunks(16).zip(up.chunks(16)).enumerate() {
                    gate_mul_quantize_block(isa, activation, g, u, row.block(j));
                }
            });
            (norm, normed, act, gated)
        };
        for activation in [Activation::GeluTanh, Activation::Silu] {
            let portable = run(Isa::Portable, activation);
            for isa in Isa::available() {
                assert!(run(isa, activation) == portable, "{isa} {activation:?}");
            }
        }
        let portable = run(Isa::Portable, Activation::Silu);
        // A gated block is the gate's output quantized as a row is.
        let row = quantized(&|out| quantize_row(Isa::Portable, &portable.2, out.row(1), 0..5));
        assert!(row == portable.3);
    }

    #[test]
    fn two_levels_round_trip_within_half_a_fine_step_block_major() {
        let x: Vec<f32> = values(40, 9).iter().map(|v| v * 5.0).collect();
        let mut buffers = QuantizedBuffers::new(2, 40);
        let mut out = buffers.rows(2, 40);
        quantize_row(Isa::selected(), &x, out.row(1), 0..3);
        let rows = out.into_rows();
        for (i, &v) in x.iter().enumerate() {
            // Row 1 of 2, block b at b · 2 + 1.
            let at = (i / 16) * 2 + 1;
            let (hi, lo) = (
                rows.hi[at * 16 + i % 16] as f32,
                rows.lo[at * 16 + i % 16] as f32,
            );
            assert!(lo.abs() <= 64.0);
            let back = (128.0 * hi + lo) * rows.scales[at];
            assert!(
                (back - v).abs() <= 0.5 * rows.scales[at] * 1.001,
                "{v} vs {back}"
            );
        }
        assert_eq!(
            &rows.hi[5 * 16 + 8..6 * 16],
            &[0; 8],
            "padding of the last block"
        );
        for b in 0..3 {
            let at = b * 2 + 1;
            let sum = |q: &[i8]| {
                q[at * 16..(at + 1) * 16]
                    .iter()
                    .map(|&v| v as i32)
                    .sum::<i32>()
            };
            assert_eq!(rows.offsets[at], -128 * sum(rows.hi) - sum(rows.lo));
        }
        // A zero block has scale 0 and zero values.
        let mut buffers = QuantizedBuffers::new(1, 16);
        let mut out = buffers.rows(1, 16);
        quantize_row(Isa::Portable, &[0.0; 16], out.row(0), 0..1);
        let rows = out.into_rows();
        assert_eq!(
            (rows.hi, rows.lo, rows.scales, rows.offsets),
            (&[0i8; 16][..], &[0i8; 16][..], &[0.0f32][..], &[0][..])
        );
    }

    #[test]
    fn norm_and_gate_match_their_definitions() {
        let x = [3.0f32, 4.0];
        let mut out = [0.0f32; 2];
        rms_norm(Isa::Portable, &x, &[1.0, 2.0], 0.0, &mut out);
        let rms = 12.5f32.sqrt();
        assert!((out[0] - 3.0 / rms).abs() < 1e-6 && (out[1] - 8.0 / rms).abs() < 1e-6);
        let mut act = [0.0f32; 2];
        gate_mul(
            Isa::Portable,
            Activation::Silu,
            &[1.0, -2.0],
            &[2.0, 3.0],
            &mut act,
        );
        let silu = |v: f32| v / (1.0 + (-v).exp());
        assert!((act[0] - 2.0 * silu(1.0)).abs() < 1e-6);
        assert!((act[1] - 3.0 * silu(-2.0)).abs() < 1e-6);
        gate_mul(
            Isa::Portable,
            Activation::GeluTanh,
            &[1.0, -2.0],
            &[2.0, 3.0],
            &mut act,
        );
        // torch.nn.functional.gelu(x, approximate="tanh") at 1 and −2.
        assert!((act[0] - 2.0 * 0.841_192).abs() < 1e-5, "{}", act[0]);
        assert!((act[1] - 3.0 * -0.045_402_3).abs() < 1e-5, "{}", act[1]);
        assert!(
            (soft_cap(100.0, 5.0) - 5.0).abs() < 1e-4 && (soft_cap(0.1, 5.0) - 0.1).abs() < 1e-3
        );
        // Partial rotation: with cos/sin of one frequency only dims 0 and 1 of 4 turn.
        let mut head = [1.0f32, 0.0, 7.0, 9.0];
        rope_in_place(&mut head, 4, &[0.0], &[1.0]);
        assert_eq!(head, [0.0, 1.0, 7.0, 9.0]);
        let mut head = [1.0f32, 0.0, 0.0, 1.0];
        let angle = 0.5f32;
        rope_in_place(&mut head, 4, &[angle.cos(); 2], &[angle.sin(); 2]);
        assert!((head[0] - angle.cos()).abs() < 1e-6 && (head[2] - angle.sin()).abs() < 1e-6);
        assert!((head[1] + angle.sin()).abs() < 1e-6 && (head[3] - angle.cos()).abs() < 1e-6);
    }
}
