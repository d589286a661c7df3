//! The packed int8 layout: how a quantized weight matrix lies in memory for the CPU
//! kernels, and the quantizer that writes it straight from Hugging Face rows.
//!
//! A decode step multiplies one to a few activation rows by every weight matrix, so it
//! is bound by how fast the weights stream from memory. The layout is chosen for that:
//!
//! - Output columns are grouped in **tiles** of [`TILE`] = 16 (one 512-bit vector of
//!   i32 sums). A tile's weights for the whole input dimension are one contiguous run,
//!   and the tiles of a thread's share are adjacent: each thread reads one sequential
//!   stream, which hardware prefetchers follow at full speed.
//! - Inside a tile the input dimension goes in **blocks** of [`BLOCK_ROWS`] = 16, the
//!   unit with one scale. A block is 256 bytes: 4 groups of 4 consecutive inputs, each
//!   group holding the 4 bytes of every one of the 16 columns side by side. That is the
//!   operand shape of `vpdpbusd` (and of AVX2's `maddubs`): one 64-byte load times 4
//!   broadcast activation bytes gives 16 columns' partial dot products, with no
//!   horizontal sums anywhere.
//! - Values are stored as `q + 128` (unsigned): `vpdpbusd` multiplies unsigned bytes by
//!   signed ones, and the signed side is the activation, broadcast from memory. The
//!   kernels take the offset out exactly (`Σ (q + 128)·x − 128·Σ x`).
//! - Each block of each column has a scale, stored as an f16 **relative** to the
//!   column's own f32 scale: `w ≈ q · rel[block] · column_scale`. Relative scales stay
//!   in f16's precise range whatever the weights' magnitude (a raw f16 scale loses
//!   precision below 6e-5), and cost 2 bytes per 16 weights: 1.125 bytes per weight.
//!
//! The scale of each block is chosen as before (see [`crate::quant`]): of the candidates
//! `max |w| / (127 − j)`, the one with the smallest importance-weighted rounding error;
//! candidates are rounded to what the layout can store before they are compared, so the
//! error the search minimises is the error of the stored matrix.

use std::ops::Range;

use rayon::prelude::*;

use super::{
    quantize_value, round_even, scale_rows, uniform_importance, QuantizedMatrix, BLOCK_ROWS, Q_MAX,
    SCALE_CANDIDATES,
};

/// Output columns per tile.
pub const TILE: usize = 16;
/// Bytes of one block of one tile: `BLOCK_ROWS` inputs × `TILE` columns.
pub const BLOCK_BYTES: usize = BLOCK_ROWS * TILE;
/// Consecutive inputs of one column that share a 32-bit lane.
pub const GROUP: usize = 4;

/// A 64-byte-aligned byte buffer (cache lines and 512-bit loads never split).
#[derive(Clone, Default)]
pub struct AlignedBytes {
    lines: Vec<CacheLine>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CacheLine([u8; 64]);

impl AlignedBytes {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        Self {
            lines: vec![CacheLine([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    pub fn from_slice(bytes: &[u8]) -> Self {
        let mut out = Self::zeroed(bytes.len());
        out.as_mut_slice().copy_from_slice(bytes);
        out
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the lines are plain bytes, contiguous, and hold at least `len` of them.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), self.len) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}

impl PartialEq for AlignedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// An int8 weight matrix in the packed layout (see the module docs).
///
/// # Shapes
/// - weights: `[tiles, blocks, GROUP groups of 4 inputs, TILE columns, 4]` bytes, `q + 128`
/// - scales: `[tiles, blocks, TILE]` f16 bits, relative to the column scale
/// - column_scales: `[tiles · TILE]` f32 (padding columns: 0)
///
/// Padding (inputs past `in_features`, columns past `out_features`) holds `q = 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedInt8 {
    pub in_features: usize,
    pub out_features: usize,
    pub weights: AlignedBytes,
    pub scales: Vec<u16>,
    pub column_scales: Vec<f32>,
}

/// Byte offset of weight `(column, input)` in [`PackedInt8::weights`].
#[inline]
pub fn weight_offset(blocks: usize, column: usize, input: usize) -> usize {
    let (tile, lane) = (column / TILE, column % TILE);
    let (block, within) = (input / BLOCK_ROWS, input % BLOCK_ROWS);
    let (group, byte) = (within / GROUP, within % GROUP);
    (((tile * blocks + block) * (BLOCK_ROWS / GROUP) + group) * TILE + lane) * GROUP + byte
}

impl PackedInt8 {
    /// Blocks along the input dimension.
    pub fn blocks(&self) -> usize {
        scale_rows(self.in_features)
    }

    /// Tiles of output columns.
    pub fn tiles(&self) -> usize {
        self.out_features.div_ceil(TILE)
    }

    /// Bytes a `[in_features, out_features]` matrix takes in this layout.
    pub fn size_for(in_features: usize, out_features: usize) -> usize {
        let (blocks, tiles) = (scale_rows(in_features), out_features.div_ceil(TILE));
        tiles * blocks * (BLOCK_BYTES + 2 * TILE) + tiles * TILE * 4
    }

    pub fn size_bytes(&self) -> usize {
        self.weights.len() + 2 * self.scales.len() + 4 * self.column_scales.len()
    }

    /// A zero matrix to fill (every scale 0 until a quantizer writes it).
    fn zeroed(in_features: usize, out_features: usize) -> Self {
        let (blocks, tiles) = (scale_rows(in_features), out_features.div_ceil(TILE));
        let mut weights = AlignedBytes::zeroed(tiles * blocks * BLOCK_BYTES);
        // q = 0 is stored as 128.
        weights.as_mut_slice().fill(128);
        Self {
            in_features,
            out_features,
            weights,
            scales: vec![0; tiles * blocks * TILE],
            column_scales: vec![0.0; tiles * TILE],
        }
    }

    /// Quantizes Hugging Face `[out, in]` rows with every input channel alike.
    ///
    /// # Shapes
    /// - rows: `[out_features, in_features]`
    pub fn quantize_rows(rows: &[f32], in_features: usize, out_features: usize) -> Self {
        let mut builder = PackedInt8Builder::new(in_features, out_features, None);
        builder.push_part(rows, out_features);
        builder.finish()
    }

    /// The quantized value of `(column, input)`.
    pub fn value(&self, column: usize, input: usize) -> i8 {
        (self.weights.as_slice()[weight_offset(self.blocks(), column, input)] ^ 0x80) as i8
    }

    /// A matrix whose column `c` is column `columns[c]` of this one (`None`: a zero
    /// column). Whole tiles are copied when a new tile is an old one; otherwise each
    /// column's bytes are gathered one group of 4 inputs at a time.
    pub fn with_columns(&self, columns: &[Option<usize>]) -> PackedInt8 {
        let blocks = self.blocks();
        let mut out = PackedInt8::zeroed(self.in_features, columns.len());
        let tile_bytes = blocks * BLOCK_BYTES;
        let (src, dst) = (self.weights.as_slice(), out.weights.as_mut_slice());
        for (t, tile) in columns.chunks(TILE).enumerate() {
            let first = tile[0].filter(|c| c % TILE == 0);
            let whole = tile.len() == TILE
                && first.is_some_and(|f| {
                    f + TILE <= self.out_features
                        && tile.iter().enumerate().all(|(l, c)| *c == Some(f + l))
                });
            if whole {
                let old = first.expect("checked") / TILE;
                dst[t * tile_bytes..][..tile_bytes]
                    .copy_from_slice(&src[old * tile_bytes..][..tile_bytes]);
                out.scales[t * blocks * TILE..][..blocks * TILE]
                    .copy_from_slice(&self.scales[old * blocks * TILE..][..blocks * TILE]);
                out.column_scales[t * TILE..][..TILE]
                    .copy_from_slice(&self.column_scales[old * TILE..][..TILE]);
                continue;
            }
            for (lane, column) in tile.iter().enumerate() {
                let Some(old) = *column else { continue };
                let new = t * TILE + lane;
                for b in 0..blocks {
                    for g in 0..BLOCK_ROWS / GROUP {
                        let i = b * BLOCK_ROWS + g * GROUP;
                        let from = weight_offset(blocks, old, i);
                        let to = weight_offset(blocks, new, i);
                        dst[to..to + GROUP].copy_from_slice(&src[from..from + GROUP]);
                    }
                    let (ot, ol) = (old / TILE, old % TILE);
                    out.scales[(t * blocks + b) * TILE + lane] =
                        self.scales[(ot * blocks + b) * TILE + ol];
                }
                out.column_scales[new] = self.column_scales[old];
            }
        }
        out
    }

    /// The effective scale of block `block` of `column`: `rel · column_scale`.
    pub fn scale(&self, column: usize, block: usize) -> f32 {
        let (tile, lane) = (column / TILE, column % TILE);
        let rel = half::f16::from_bits(self.scales[(tile * self.blocks() + block) * TILE + lane]);
        rel.to_f32() * self.column_scales[column]
    }

    /// The same matrix as `[in, out]` values with f32 scales per block, the form the
    /// burn backends multiply by (flex's reference kernel, CUDA).
    pub fn to_matrix(&self) -> QuantizedMatrix {
        let (k, m, blocks) = (self.in_features, self.out_features, self.blocks());
        let mut values = vec![0i8; k * m];
        values
            .par_chunks_mut(m.max(1))
            .enumerate()
            .for_each(|(i, row)| {
                for (o, v) in row.iter_mut().enumerate() {
                    *v = self.value(o, i);
                }
            });
        let mut scales = vec![0.0f32; blocks * m];
        for b in 0..blocks {
            for o in 0..m {
                scales[b * m + o] = self.scale(o, b);
            }
        }
        QuantizedMatrix {
            in_features: k,
            out_features: m,
            values,
            scales,
        }
    }

    /// The f32 matrix this stands for, `[in, out]` (tests and accuracy checks).
    pub fn dequantize(&self) -> Vec<f32> {
        self.to_matrix().dequantize()
    }
}

/// Rounds a positive finite `x` to the nearest f16 value (ties to even), as f32. Plain
/// bit arithmetic for f16's normal range, so the scale search vectorises; the rare
/// smaller values go through `half`.
#[inline(always)]
fn round_to_f16(x: f32) -> f32 {
    const F16_MIN_NORMAL: f32 = 6.103_515_6e-5;
    if x < F16_MIN_NORMAL {
        return half::f16::from_f32(x).to_f32();
    }
    let bits = x.to_bits();
    // 13 mantissa bits go: add just under half an f16 ulp, plus one if the kept part is
    // odd (ties to even), then clear them.
    f32::from_bits((bits + 0xFFF + ((bits >> 13) & 1)) & !0x1FFF)
}

/// The f32 scale of one column: its largest magnitude over 127 (1 for a zero or
/// non-finite column, whose blocks are all zero or get scale 1).
fn column_scale(row: &[f32]) -> f32 {
    let max_abs = row.iter().fold(0.0f32, |a, w| a.max(w.abs()));
    if max_abs > 0.0 && max_abs.is_finite() {
        max_abs / Q_MAX
    } else {
        1.0
    }
}

/// Quantizes one column (an HF row) block by block: the relative f16 scale of each block
/// into `rel`, its values into `q`. Compiled for AVX2 where the CPU has it: the scale
/// search is most of the cost of quantizing a model.
///
/// # Shapes
/// - row, importance, q: `[in]`; rel: `[in.div_ceil(BLOCK_ROWS)]`
fn quantize_column(row: &[f32], importance: &[f32], column: f32, q: &mut [i8], rel: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { quantize_column_avx2(row, importance, column, q, rel) };
    }
    quantize_column_body(row, importance, column, q, rel)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_column_avx2(
    row: &[f32],
    importance: &[f32],
    column: f32,
    q: &mut [i8],
    rel: &mut [u16],
) {
    quantize_column_body(row, importance, column, q, rel)
}

#[inline(always)]
fn quantize_column_body(
    row: &[f32],
    importance: &[f32],
    column: f32,
    q: &mut [i8],
    rel: &mut [u16],
) {
    for (b, i0) in (0..row.len()).step_by(BLOCK_ROWS).enumerate() {
        let i1 = (i0 + BLOCK_ROWS).min(row.len());
        let (relative, inverse) = block_scale(&row[i0..i1], &importance[i0..i1], column);
        rel[b] = half::f16::from_f32(relative).to_bits();
        for (q, &w) in q[i0..i1].iter_mut().zip(&row[i0..i1]) {
            *q = quantize_value(w, inverse);
        }
    }
}

/// The relative scale of one block (an f16 value, as f32) and the reciprocal of its
/// effective scale: of the candidate scales, as stored, the one with the smallest
/// importance-weighted squared rounding error. An all-zero or non-finite block gets
/// relative scale 1 (its values are 0 or clamped).
#[inline(always)]
fn block_scale(block: &[f32], importance: &[f32], column: f32) -> (f32, f32) {
    debug_assert!(block.len() <= BLOCK_ROWS && importance.len() == block.len());
    let max_abs = block.iter().fold(0.0f32, |a, w| a.max(w.abs()));
    if !(max_abs > 0.0 && max_abs.is_finite()) {
        return (1.0, 1.0 / column);
    }
    let mut relative = [0.0f32; SCALE_CANDIDATES];
    let mut scales = [0.0f32; SCALE_CANDIDATES];
    let mut inverses = [0.0f32; SCALE_CANDIDATES];
    for (j, ((r, s), inv)) in relative
        .iter_mut()
        .zip(&mut scales)
        .zip(&mut inverses)
        .enumerate()
    {
        *r = round_to_f16(max_abs / (Q_MAX - j as f32) / column);
        *s = *r * column;
        // A block 10⁸ times smaller than its column rounds to 0: it is stored as zeros.
        *inv = if *s > 0.0 { 1.0 / *s } else { 0.0 };
    }
    // Weights outside, candidates inside: each weight updates the running errors of all
    // candidates at once (8 per AVX2 instruction), with no sums across lanes.
    let mut errors = [0.0f32; SCALE_CANDIDATES];
    for (&w, &imp) in block.iter().zip(importance) {
        for ((e, &s), &inv) in errors.iter_mut().zip(&scales).zip(&inverses) {
            let d = w - round_even(w * inv).clamp(-Q_MAX, Q_MAX) * s;
            *e += imp * d * d;
        }
    }
    // The first smallest error; candidate 0 (max/127) stays if every error is NaN (a
    // broken calibration).
    let mut best = 0;
    for (j, &e) in errors.iter().enumerate().skip(1) {
        if e < errors[best] {
            best = j;
        }
    }
    (relative[best], inverses[best])
}

/// Quantizes Hugging Face `[out, in]` weights straight into one fused packed matrix
/// whose columns are the parts' output channels side by side (fused QKV and gate/up).
/// A block of one column is a contiguous run of an HF row, so quantizing holds one
/// part's f32 values at a time and never builds a fused f32 matrix.
pub struct PackedInt8Builder {
    next_column: usize,
    /// Mean square of each input channel (uniform when there was no calibration).
    importance: Vec<f32>,
    packed: PackedInt8,
}

impl PackedInt8Builder {
    /// # Shapes
    /// - importance: `[in_features]`
    pub fn new(in_features: usize, total_out: usize, importance: Option<&[f32]>) -> Self {
        let importance = match importance {
            Some(importance) => {
                assert_eq!(importance.len(), in_features, "importance length");
                importance.to_vec()
            }
            None => uniform_importance(in_features),
        };
        Self {
            next_column: 0,
            importance,
            packed: PackedInt8::zeroed(in_features, total_out),
        }
    }

    /// Appends the next part's output channels as columns, quantizing in parallel over
    /// the tiles they fall in.
    ///
    /// # Shapes
    /// - part: `[out, in_features]`
    pub fn push_part(&mut self, part: &[f32], out: usize) {
        let k = self.packed.in_features;
        assert_eq!(part.len(), out * k, "part shape");
        assert!(
            self.next_column + out <= self.packed.out_features,
            "too many columns"
        );
        let columns = self.next_column..self.next_column + out;
        let blocks = scale_rows(k);
        let importance = &self.importance;
        let packed = &mut self.packed;
        packed
            .weights
            .as_mut_slice()
            .par_chunks_mut((blocks * BLOCK_BYTES).max(1))
            .zip(packed.scales.par_chunks_mut((blocks * TILE).max(1)))
            .zip(packed.column_scales.par_chunks_mut(TILE))
            .enumerate()
            .filter(|(tile, _)| overlaps(*tile, &columns))
            .for_each(|(tile, ((weights, scales), column_scales))| {
                let mut q = vec![0i8; k];
                let mut rel = vec![0u16; blocks];
                for lane in 0..TILE {
                    let column = tile * TILE + lane;
                    if !columns.contains(&column) {
                        continue;
                    }
                    let row = &part[(column - columns.start) * k..][..k];
                    let scale = column_scale(row);
                    quantize_column(row, importance, scale, &mut q, &mut rel);
                    column_scales[lane] = scale;
                    for (i, &v) in q.iter().enumerate() {
                        weights[weight_offset(blocks, lane, i)] = (v as u8) ^ 0x80;
                    }
                    for (b, &r) in rel.iter().enumerate() {
                        scales[b * TILE + lane] = r;
                    }
                }
            });
        self.next_column += out;
    }

    pub fn finish(self) -> PackedInt8 {
        assert_eq!(self.next_column, self.packed.out_features, "missing parts");
        self.packed
    }
}

fn overlaps(tile: usize, columns: &Range<usize>) -> bool {
    let tile_columns = tile * TILE..(tile + 1) * TILE;
    tile_columns.start < columns.end && columns.start < tile_columns.end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_models::pseudo_random_values as values;

    #[test]
    fn f16_rounding_matches_half() {
        for x in [
            1.0f32,
            1.000_488_3,
            1.000_488_4,
            0.333_333,
            1.999_9,
            6.2e-5,
            7.0e-6,
            3.0,
        ] {
            assert_eq!(round_to_f16(x), half::f16::from_f32(x).to_f32(), "{x}");
        }
        for (i, x) in values(4000, 3).into_iter().enumerate() {
            let x = x.abs() * (1 + i % 7) as f32 + 1e-4;
            assert_eq!(round_to_f16(x), half::f16::from_f32(x).to_f32(), "{x}");
        }
    }

    #[test]
    fn layout_places_each_weight_where_the_offset_says() {
        // 3 parts, 37 columns (a partial third tile) and 40 inputs (a partial last block).
        let k = 40;
        let parts: Vec<(Vec<f32>, usize)> = [(5, 1), (20, 2), (12, 3)]
            .into_iter()
            .map(|(out, seed)| (values(out * k, seed), out))
            .collect();
        let total: usize = parts.iter().map(|p| p.1).sum();
        let mut builder = PackedInt8Builder::new(k, total, None);
        for (part, out) in &parts {
            builder.push_part(part, *out);
        }
        let packed = builder.finish();
        assert_eq!(packed.tiles(), 3);
        assert_eq!(packed.blocks(), 3);
        assert_eq!(packed.size_bytes(), PackedInt8::size_for(k, total));
        // Every column on its own gives the same values and scales.
        let mut column = 0;
        for (part, out) in &parts {
            let alone = PackedInt8::quantize_rows(part, k, *out);
            for o in 0..*out {
                for i in 0..k {
                    assert_eq!(packed.value(column + o, i), alone.value(o, i));
                }
                for b in 0..3 {
                    assert_eq!(packed.scale(column + o, b), alone.scale(o, b));
                }
            }
            column += out;
        }
        // Padding: inputs 40..48 and columns 37..48 are q = 0.
        for o in 0..48 {
            for i in 0..48 {
                if o >= total || i >= k {
                    let byte = packed.weights.as_slice()[weight_offset(3, o, i)];
                    assert_eq!(byte, 128, "({o}, {i})");
                }
            }
        }
    }

    #[test]
    fn gathered_columns_are_the_columns_asked_for() {
        let (k, m) = (40, 37);
        let packed = PackedInt8::quantize_rows(&values(m * k, 4), k, m);
        // Whole tiles (0..16), a tile from the middle of others, a gap, and the last
        // partial tile.
        let mut columns: Vec<Option<usize>> = (0..16).map(Some).collect();
        columns.extend((20..36).map(Some));
        columns.extend([None, Some(36), Some(3)]);
        let gathered = packed.with_columns(&columns);
        assert_eq!(gathered.out_features, columns.len());
        for (c, column) in columns.iter().enumerate() {
            for i in 0..k {
                let want = column.map_or(0, |o| packed.value(o, i));
                assert_eq!(gathered.value(c, i), want, "({c}, {i})");
            }
            for b in 0..packed.blocks() {
                let want = column.map_or(0.0, |o| packed.scale(o, b));
                assert_eq!(gathered.scale(c, b), want);
            }
        }
    }

    #[test]
    fn dequantized_weights_are_close_and_scales_are_stored_exactly() {
        let (k, m) = (64, 20);
        let rows = values(k * m, 11);
        let packed = PackedInt8::quantize_rows(&rows, k, m);
        let deq = packed.dequantize();
        for o in 0..m {
            for i in 0..k {
                let (w, d) = (rows[o * k + i], deq[i * m + o]);
                // Half a step of the block's scale, at most max/64.
                let step = packed.scale(o, i / BLOCK_ROWS);
                assert!((w - d).abs() <= 0.5 * step + 1e-7, "{w} vs {d}");
                assert!(step <= 1.0 / 64.0 + 1e-6);
            }
        }
        let matrix = packed.to_matrix();
        assert_eq!(matrix.dequantize(), deq);
    }
}
