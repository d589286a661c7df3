//! The CPU engine's matrix kernels, one file per weight type and ISA (as ggml-cpu keeps
//! them), all computing the same thing: `out[r, c] = Σ_i x[r, i] · W[i, c]` for a few
//! activation rows and a range of 16-column tiles of a packed weight matrix.
//!
//! What every path guarantees, and the tests check:
//! - **Each weight is read once per call**, whatever the row count: the loop over rows
//!   sits inside the loop over a tile's weights, so a verify pass of γ + 1 rows streams
//!   the matrix once, as a decode step does.
//! - **Batch invariance**: a row's result does not depend on which other rows are in the
//!   call. Each output is accumulated in the same order with the same operations for any
//!   row count (rows are only ever grouped, never mixed), so each row of a verify pass
//!   is bit-identical to that row computed alone, the property greedy speculative
//!   decoding's exactness rests on.
//! - **Every ISA path gives the same bits as the portable one.** The int8 dot products
//!   are exact integer sums, and the float steps around them (scale, accumulate,
//!   epilogue) are the same IEEE operations in the same order on every path.
//!
//! The int8 kernels multiply two-level int8 activations ([`QuantizedRows`]: per row,
//! one f32 scale per block of 16 inputs) by the packed int8 weights of
//! [`crate::quant::packed`]. Per tile, block and row: the block's exact integer dot
//! product `128 · Σ w·hi + Σ w·lo`, then `acc += float(dot) · (block_scale ·
//! activation_scale)`; at the end `out = acc · column_scale + bias`. The f32 kernels read [`PackedF32`] tiles and keep two
//! accumulators per output (even and odd inputs), summed at the end.

// Kernels index register arrays by row and half: clearer than iterator chains here.
#![allow(clippy::needless_range_loop)]

mod f32_avx2;
mod f32_avx512;
mod f32_portable;
mod int8_avx2;
mod int8_avx512;
mod int8_avxvnni;
mod int8_portable;

use std::ops::Range;

use super::isa::Isa;
use crate::quant::packed::{AlignedBytes, PackedInt8, TILE};
use crate::quant::BLOCK_ROWS;

/// Activation rows quantized for the int8 kernels, in two int8 levels: per row and
/// block of 16 inputs, `x ≈ scale · (128 · hi + lo)`, where `hi` is the block quantized
/// to ±127 and `lo` (within ±64) its rounding remainder at 128 times the resolution.
/// Together that is a 15-bit activation: one level alone (llama.cpp's Q8 activations)
/// cost SmolLM2-135M 2.3 points of top-1 agreement with f32, most of it at the RMSNorm
/// outputs, whose blocks mix a few loud channels with quiet ones. The kernels run the
/// integer dot products of both levels (`128 · Σ w·hi + Σ w·lo`, exact in i32) and
/// apply the scales once.
///
/// `offsets` hold `−128 · Σ hi − Σ lo`, which takes the weights' `+ 128` out of
/// `vpdpbusd`'s products: a kernel starts the sum there, adds the high level, shifts
/// by 7 bits and adds the low level, which gives `128 · (offset + Σ (q+128)·hi) +
/// Σ (q+128)·lo = 128 · Σ q·hi + Σ q·lo`. One start value and no add between the levels
/// saves one vector operation in twelve on the pipes the products run on (8 rows of
/// Qwen 1.5B's shapes from L2: 164 → 190 GMAC/s a thread).
///
/// Block-major: a block's 16 values of every row lie side by side, so a kernel reaches
/// a row group's block from one pointer at fixed offsets.
///
/// # Shapes
/// - hi, lo: `[blocks, rows, 16]` (padding inputs are 0)
/// - scales, offsets: `[blocks, rows]`
#[derive(Clone, Copy)]
pub struct QuantizedRows<'a> {
    pub hi: &'a [i8],
    pub lo: &'a [i8],
    pub scales: &'a [f32],
    pub offsets: &'a [i32],
    pub rows: usize,
    pub blocks: usize,
}

impl QuantizedRows<'_> {
    fn check(&self, w: &PackedInt8) {
        assert_eq!(self.blocks, w.blocks(), "activation and weight blocks");
        let values = self.rows * self.blocks * BLOCK_ROWS;
        assert!(self.hi.len() >= values && self.lo.len() >= values);
        assert!(self.scales.len() >= self.rows * self.blocks);
        assert!(self.offsets.len() >= self.rows * self.blocks);
    }
}

/// Buffers a row quantizer writes [`QuantizedRows`] into (see
/// [`quantize_row`](crate::cpu::ops::quantize_row)).
pub struct QuantizedRowsMut<'a> {
    hi: &'a mut [i8],
    lo: &'a mut [i8],
    scales: &'a mut [f32],
    offsets: &'a mut [i32],
    rows: usize,
    blocks: usize,
}

/// The buffers of [`QuantizedRowsMut`] for up to `rows` rows of up to `in_features`
/// inputs, allocated once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantizedBuffers {
    hi: Vec<i8>,
    lo: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<i32>,
}

impl QuantizedBuffers {
    pub fn new(rows: usize, in_features: usize) -> Self {
        let blocks = crate::quant::scale_rows(in_features);
        Self {
            hi: vec![0; rows * blocks * BLOCK_ROWS],
            lo: vec![0; rows * blocks * BLOCK_ROWS],
            scales: vec![0.0; rows * blocks],
            offsets: vec![0; rows * blocks],
        }
    }

    /// `rows` rows of `in_features` inputs as the quantizer last wrote them.
    pub fn read(&self, rows: usize, in_features: usize) -> QuantizedRows<'_> {
        let blocks = crate::quant::scale_rows(in_features);
        let values = rows * blocks * BLOCK_ROWS;
        QuantizedRows {
            hi: &self.hi[..values],
            lo: &self.lo[..values],
            scales: &self.scales[..rows * blocks],
            offsets: &self.offsets[..rows * blocks],
            rows,
            blocks,
        }
    }

    /// Room for `rows` rows of `in_features` inputs to be quantized into (panics if the
    /// buffers are smaller).
    pub fn rows(&mut self, rows: usize, in_features: usize) -> QuantizedRowsMut<'_> {
        let blocks = crate::quant::scale_rows(in_features);
        let values = rows * blocks * BLOCK_ROWS;
        assert!(
            self.hi.len() >= values,
            "quantized activation buffers too small"
        );
        QuantizedRowsMut {
            hi: &mut self.hi[..values],
            lo: &mut self.lo[..values],
            scales: &mut self.scales[..rows * blocks],
            offsets: &mut self.offsets[..rows * blocks],
            rows,
            blocks,
        }
    }
}

/// A [`QuantizedRowsMut`] several threads write, each its own blocks.
pub struct SharedQuantizedRows<'a> {
    hi: *mut i8,
    lo: *mut i8,
    scales: *mut f32,
    offsets: *mut i32,
    rows: usize,
    blocks: usize,
    _rows: std::marker::PhantomData<&'a mut [i8]>,
}

// SAFETY: `put` is unsafe and its callers write disjoint blocks (the engine's split).
unsafe impl Sync for SharedQuantizedRows<'_> {}

impl<'a> SharedQuantizedRows<'a> {
    pub fn new(rows: QuantizedRowsMut<'a>) -> Self {
        Self {
            hi: rows.hi.as_mut_ptr(),
            lo: rows.lo.as_mut_ptr(),
            scales: rows.scales.as_mut_ptr(),
            offsets: rows.offsets.as_mut_ptr(),
            rows: rows.rows,
            blocks: rows.blocks,
            _rows: std::marker::PhantomData,
        }
    }

    /// Where row `row`'s blocks are written, as [`QuantizedRowsMut::row`].
    ///
    /// # Safety
    /// No other thread writes the blocks written through this sink meanwhile (threads
    /// may share a row if each writes its own blocks).
    pub(crate) unsafe fn row(&self, row: usize) -> RowSink<'_> {
        assert!(row < self.rows);
        RowSink {
            hi: self.hi,
            lo: self.lo,
            scales: self.scales,
            offsets: self.offsets,
            rows: self.rows,
            row,
            blocks: self.blocks,
            _rows: std::marker::PhantomData,
        }
    }

    /// The rows, once every writer is done.
    pub fn into_rows(self) -> QuantizedRows<'a> {
        let values = self.rows * self.blocks * BLOCK_ROWS;
        // SAFETY: the pointers came from slices of these lengths borrowed for 'a, and
        // the writers are done (the caller's split has returned).
        unsafe {
            QuantizedRows {
                hi: std::slice::from_raw_parts(self.hi, values),
                lo: std::slice::from_raw_parts(self.lo, values),
                scales: std::slice::from_raw_parts(self.scales, self.rows * self.blocks),
                offsets: std::slice::from_raw_parts(self.offsets, self.rows * self.blocks),
                rows: self.rows,
                blocks: self.blocks,
            }
        }
    }
}

impl<'a> QuantizedRowsMut<'a> {
    /// Where row `row`'s blocks are written.
    pub fn row(&mut self, row: usize) -> RowSink<'_> {
        assert!(row < self.rows);
        RowSink {
            hi: self.hi.as_mut_ptr(),
            lo: self.lo.as_mut_ptr(),
            scales: self.scales.as_mut_ptr(),
            offsets: self.offsets.as_mut_ptr(),
            rows: self.rows,
            row,
            blocks: self.blocks,
            _rows: std::marker::PhantomData,
        }
    }

    pub fn as_rows(&self) -> QuantizedRows<'_> {
        QuantizedRows {
            hi: self.hi,
            lo: self.lo,
            scales: self.scales,
            offsets: self.offsets,
            rows: self.rows,
            blocks: self.blocks,
        }
    }

    pub fn into_rows(self) -> QuantizedRows<'a> {
        QuantizedRows {
            hi: self.hi,
            lo: self.lo,
            scales: self.scales,
            offsets: self.offsets,
            rows: self.rows,
            blocks: self.blocks,
        }
    }
}

/// One row of a [`QuantizedRowsMut`] (or of a [`SharedQuantizedRows`]) that a row
/// quantizer writes block by block, straight into the buffers: no staging copy and no
/// call per block (a verify pass quantizes some 6,000 blocks a layer).
pub struct RowSink<'a> {
    hi: *mut i8,
    lo: *mut i8,
    scales: *mut f32,
    offsets: *mut i32,
    rows: usize,
    row: usize,
    blocks: usize,
    _rows: std::marker::PhantomData<&'a mut [i8]>,
}

/// The slots of one block of one row: `x ≈ scale · (128 · hi + lo)`, and the offset its
/// integer sum starts from (`−128 · Σ hi − Σ lo`, see [`QuantizedRows`]).
pub struct BlockSlots<'a> {
    pub hi: &'a mut [i8; BLOCK_ROWS],
    pub lo: &'a mut [i8; BLOCK_ROWS],
    pub scale: &'a mut f32,
    pub offset: &'a mut i32,
}

impl RowSink<'_> {
    /// The slots of block `block` of this row.
    #[inline(always)]
    pub fn block(&mut self, block: usize) -> BlockSlots<'_> {
        assert!(block < self.blocks, "block {block} of {}", self.blocks);
        let at = block * self.rows + self.row;
        // SAFETY: `at` is inside the buffers (row < rows, block < blocks), and this sink
        // is the only writer of its row's blocks (or, shared, of the blocks it writes).
        unsafe {
            BlockSlots {
                hi: &mut *(self.hi.add(at * BLOCK_ROWS) as *mut [i8; BLOCK_ROWS]),
                lo: &mut *(self.lo.add(at * BLOCK_ROWS) as *mut [i8; BLOCK_ROWS]),
                scale: &mut *self.scales.add(at),
                offset: &mut *self.offsets.add(at),
            }
        }
    }
}

/// f32 activation rows, `[rows, stride]` with `in_features <= stride` values used.
#[derive(Clone, Copy)]
pub struct F32Rows<'a> {
    pub x: &'a [f32],
    pub rows: usize,
    pub stride: usize,
}

/// Where a kernel writes: `rows` rows `stride` floats apart, of which it writes the
/// columns of its tiles. Threads given disjoint tile ranges write disjoint columns of
/// the same rows, so the target is a raw pointer.
#[derive(Clone, Copy)]
pub struct OutRows {
    ptr: *mut f32,
    stride: usize,
    rows: usize,
    cols: usize,
}

// SAFETY: an `OutRows` is only written through by kernels given disjoint tile ranges
// (the engine's thread split), so no two threads write the same element.
unsafe impl Send for OutRows {}
unsafe impl Sync for OutRows {}

impl OutRows {
    /// The first `rows` rows of `out` (`stride` apart), `cols` columns wide.
    pub fn new(out: &mut [f32], rows: usize, stride: usize, cols: usize) -> Self {
        assert!(cols <= stride && out.len() >= rows.saturating_sub(1) * stride + cols);
        Self {
            ptr: out.as_mut_ptr(),
            stride,
            rows,
            cols,
        }
    }

    /// Pointer to `(row, col)`.
    ///
    /// # Safety
    /// `row < rows` and `col < cols`.
    #[inline(always)]
    unsafe fn at(&self, row: usize, col: usize) -> *mut f32 {
        self.ptr.add(row * self.stride + col)
    }

    /// Columns `cols` of row `row`, as a kernel left them.
    ///
    /// # Safety
    /// The caller's own columns (its tiles), written by a kernel call that has returned,
    /// with no other thread writing them.
    pub unsafe fn read(&self, row: usize, cols: Range<usize>) -> &[f32] {
        assert!(row < self.rows && cols.end <= self.cols);
        std::slice::from_raw_parts(self.at(row, cols.start), cols.len())
    }
}

/// What happens to a tile's result before it is stored.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Added to every row (`[out_features]`).
    pub bias: Option<&'a [f32]>,
    /// Add into what `out` holds (a residual connection) instead of overwriting it.
    pub accumulate: bool,
}

/// An f32 weight matrix packed for the f32 kernels: tiles of 16 output columns, each
/// tile `[in_features, 16]` contiguous, so a thread streams its tiles sequentially.
///
/// # Shapes
/// - values: `[tiles, in_features, 16]` f32 (padding columns 0)
#[derive(Debug, Clone, PartialEq)]
pub struct PackedF32 {
    pub in_features: usize,
    pub out_features: usize,
    values: AlignedBytes,
}

impl PackedF32 {
    /// Packs Hugging Face `[out, in]` parts placed side by side as one `[in, Σ out]`
    /// matrix (fused QKV and gate/up).
    pub fn from_parts(parts: &[(&[f32], usize)], in_features: usize) -> Self {
        let total: usize = parts.iter().map(|(_, out)| out).sum();
        let tiles = total.div_ceil(TILE);
        let mut values = AlignedBytes::zeroed(tiles * in_features * TILE * 4);
        let floats: &mut [f32] = bytemuck::cast_slice_mut(values.as_mut_slice());
        let mut column = 0;
        for &(part, out) in parts {
            assert_eq!(part.len(), out * in_features, "part shape");
            for (o, row) in part.chunks_exact(in_features.max(1)).enumerate() {
                let c = column + o;
                let base = (c / TILE) * in_features * TILE + c % TILE;
                for (i, &w) in row.iter().enumerate() {
                    floats[base + i * TILE] = w;
                }
            }
            column += out;
        }
        Self {
            in_features,
            out_features: total,
            values,
        }
    }

    pub fn tiles(&self) -> usize {
        self.out_features.div_ceil(TILE)
    }

    /// A matrix whose column `c` is column `columns[c]` of this one (`None`: zeros).
    pub fn with_columns(&self, columns: &[Option<usize>]) -> PackedF32 {
        let k = self.in_features;
        let mut values = AlignedBytes::zeroed(columns.len().div_ceil(TILE) * k * TILE * 4);
        let dst: &mut [f32] = bytemuck::cast_slice_mut(values.as_mut_slice());
        let src = self.values();
        for (c, column) in columns.iter().enumerate() {
            let Some(old) = *column else { continue };
            let (to, from) = (
                (c / TILE) * k * TILE + c % TILE,
                (old / TILE) * k * TILE + old % TILE,
            );
            for i in 0..k {
                dst[to + i * TILE] = src[from + i * TILE];
            }
        }
        PackedF32 {
            in_features: k,
            out_features: columns.len(),
            values,
        }
    }

    pub fn values(&self) -> &[f32] {
        bytemuck::cast_slice(self.values.as_slice())
    }

    pub fn size_bytes(&self) -> usize {
        self.values.len()
    }
}

fn check_out(out: &OutRows, rows: usize, out_features: usize, tiles: &Range<usize>) {
    assert!(out.rows >= rows, "output rows");
    assert!(out.cols >= out_features, "output columns");
    assert!(tiles.end <= out_features.div_ceil(TILE), "tile range");
}

fn check_epilogue(ep: &Epilogue, out_features: usize) {
    if let Some(bias) = ep.bias {
        assert!(bias.len() >= out_features, "bias length");
    }
}

/// `out[r, c] (+)= Σ_i x[r, i] · W[i, c] (+ bias[c])` for the columns of `tiles`, int8.
pub fn int8_matmul(
    isa: Isa,
    x: &QuantizedRows,
    w: &PackedInt8,
    tiles: Range<usize>,
    out: &OutRows,
    ep: &Epilogue,
) {
    isa.assert_supported();
    x.check(w);
    check_out(out, x.rows, w.out_features, &tiles);
    check_epilogue(ep, w.out_features);
    // SAFETY: the CPU supports the path (asserted) and the slices and output are as
    // large as the kernels index (checked above).
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => int8_avx512::matmul(x, w, tiles, out, ep),
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => int8_avxvnni::matmul(x, w, tiles, out, ep),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => int8_avx2::matmul(x, w, tiles, out, ep),
            _ => int8_portable::matmul(x, w, tiles, out, ep),
        }
    }
}

/// `out[r, c] (+)= Σ_i x[r, i] · W[i, c] (+ bias[c])` for the columns of `tiles`, f32.
pub fn f32_matmul(
    isa: Isa,
    x: &F32Rows,
    w: &PackedF32,
    tiles: Range<usize>,
    out: &OutRows,
    ep: &Epilogue,
) {
    isa.assert_supported();
    assert!(x.stride >= w.in_features);
    assert!(x.x.len() >= x.rows.saturating_sub(1) * x.stride + w.in_features);
    check_out(out, x.rows, w.out_features, &tiles);
    check_epilogue(ep, w.out_features);
    // SAFETY: as in `int8_matmul`.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => f32_avx512::matmul(x, w, tiles, out, ep),
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni | Isa::Avx2 => f32_avx2::matmul(x, w, tiles, out, ep),
            _ => f32_portable::matmul(x, w, tiles, out, ep),
        }
    }
}

/// Bytes ahead of the block being multiplied that are prefetched into L2: far enough
/// that memory requests stay in flight while the rows of a verify pass keep the core
/// busy (the out-of-order window alone then covers only a few blocks, and the 8-row
/// pass of Qwen2.5-Coder-1.5B's layers cost 1.8× one row instead of 1.4×). At 8 rows a
/// 288-byte block takes about 10 ns, so 16 KiB is some 600 ns ahead, past the memory
/// latency of a loaded host; 4 KiB cost the 8-row pass 1.2–1.6× one row where 16 KiB
/// cost 1.1× (interleaved runs of the `cpu_kernels` example), with no loss at one row.
const PREFETCH_L2: usize = 16384;
/// Bytes ahead that are prefetched from L2 into L1.
const PREFETCH_L1: usize = 1024;

/// Where an int8 SIMD kernel's pass over one tile starts: the tile's packed weights and
/// block scales, and the activation blocks of the pass's first row `r0` (block `b` of
/// row `r0 + r` lies `(b · rows + r) · 16` values on: block-major).
#[cfg(target_arch = "x86_64")]
struct Int8Tile {
    blocks: usize,
    weights: *const u8,
    scales: *const u16,
    x_hi: *const i8,
    x_lo: *const i8,
    x_scales: *const f32,
    x_offsets: *const i32,
}

#[cfg(target_arch = "x86_64")]
impl Int8Tile {
    /// # Safety
    /// `tile` is a tile of `w` and `r0` a row of `x` (the checks of [`int8_matmul`]).
    #[inline(always)]
    unsafe fn new(x: &QuantizedRows, r0: usize, w: &PackedInt8, tile: usize) -> Self {
        let blocks = w.blocks();
        Self {
            blocks,
            weights: w
                .weights
                .as_slice()
                .as_ptr()
                .add(tile * blocks * crate::quant::packed::BLOCK_BYTES),
            scales: w.scales.as_ptr().add(tile * blocks * TILE),
            x_hi: x.hi.as_ptr().add(r0 * BLOCK_ROWS),
            x_lo: x.lo.as_ptr().add(r0 * BLOCK_ROWS),
            x_scales: x.scales.as_ptr().add(r0),
            x_offsets: x.offsets.as_ptr().add(r0),
        }
    }
}

/// Prefetches the weights and scales ahead of one block of a packed int8 matrix (the
/// next tiles of a thread's share follow in memory; a prefetch past the end of the
/// buffer is harmless, it never faults).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn prefetch_block(block: *const u8, scales: *const u16) {
    use crate::quant::packed::BLOCK_BYTES;
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};
    for line in 0..BLOCK_BYTES / 64 {
        _mm_prefetch::<_MM_HINT_T1>(block.wrapping_add(PREFETCH_L2 + 64 * line) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(block.wrapping_add(PREFETCH_L1 + 64 * line) as *const i8);
    }
    // The scales advance 32 bytes per 288 of the whole block.
    let scales_ahead = PREFETCH_L2 / BLOCK_BYTES * TILE;
    _mm_prefetch::<_MM_HINT_T1>(scales.wrapping_add(scales_ahead) as *const i8);
}

/// Columns of tile `tile` that exist (16, or fewer in a matrix's last tile).
#[inline(always)]
fn tile_width(out_features: usize, tile: usize) -> usize {
    (out_features - tile * TILE).min(TILE)
}

/// Runs `$kernel::<R>(args…)` for a group of `$rows` rows, `R` a constant from 1 to
/// `$max`: kernels keep one accumulator per row in registers, so the row count must be
/// known when they are compiled.
macro_rules! for_row_group {
    ($rows:expr, $max:literal, $kernel:ident($($arg:expr),* $(,)?)) => {
        match $rows {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 if $max >= 5 => $kernel::<5>($($arg),*),
            6 if $max >= 6 => $kernel::<6>($($arg),*),
            7 if $max >= 7 => $kernel::<7>($($arg),*),
            8 if $max >= 8 => $kernel::<8>($($arg),*),
            r => unreachable!("row group of {r}"),
        }
    };
}
use for_row_group;

/// Defines a SIMD kernel's entry, `matmul(x, w, tiles, out, ep)`: for each tile, the
/// rows in groups of at most `$group`, each group by `$tile_rows::<R>` (compiled for
/// `$features`).
macro_rules! row_group_kernel {
    ($features:literal, $group:literal, $x:ty, $w:ty, $tile_rows:ident) => {
        /// # Safety
        /// The CPU has the features, and the arguments passed the checks of
        /// [`super::int8_matmul`] or [`super::f32_matmul`].
        #[target_feature(enable = $features)]
        pub(super) unsafe fn matmul(
            x: &$x,
            w: &$w,
            tiles: std::ops::Range<usize>,
            out: &super::OutRows,
            ep: &super::Epilogue,
        ) {
            for tile in tiles {
                let mut r0 = 0;
                while r0 < x.rows {
                    let rows = (x.rows - r0).min($group);
                    super::for_row_group!(rows, $group, $tile_rows(x, r0, w, tile, out, ep));
                    r0 += rows;
                }
            }
        }
    };
}
use row_group_kernel;

#[cfg(test)]
mod tests;
