//! The int8 kernel on AVX-VNNI: the VEX-encoded 256-bit `vpdpbusd`, so a 16-column tile
//! is two registers (columns 0–7 and 8–15) per group of 4 inputs.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;
use std::ops::Range;

use super::int8_avx2::{block_scales, store};
use super::{for_row_group, Epilogue, OutRows, QuantizedRows};
use crate::quant::packed::{PackedInt8, BLOCK_BYTES, TILE};
use crate::quant::BLOCK_ROWS;

/// Rows per pass over a tile: two f32 accumulators each, in 16 ymm registers.
const ROW_GROUP: usize = 4;

/// # Safety
/// The CPU has AVX2, FMA, F16C and AVX-VNNI, and the arguments passed
/// [`super::int8_matmul`]'s checks.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn matmul(
    x: &QuantizedRows,
    w: &PackedInt8,
    tiles: Range<usize>,
    out: &OutRows,
    ep: &Epilogue,
) {
    for tile in tiles {
        let mut r0 = 0;
        while r0 < x.rows {
            let rows = (x.rows - r0).min(ROW_GROUP);
            for_row_group!(rows, 4, tile_rows(x, r0, w, tile, out, ep));
            r0 += rows;
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
#[inline]
unsafe fn tile_rows<const R: usize>(
    x: &QuantizedRows,
    r0: usize,
    w: &PackedInt8,
    tile: usize,
    out: &OutRows,
    ep: &Epilogue,
) {
    let blocks = w.blocks();
    let weights = w
        .weights
        .as_slice()
        .as_ptr()
        .add(tile * blocks * BLOCK_BYTES);
    let scales = w.scales.as_ptr().add(tile * blocks * TILE);
    let row_len = blocks * BLOCK_ROWS;
    let xq = x.q.as_ptr().add(r0 * row_len);
    let x_scales = x.scales.as_ptr().add(r0 * blocks);
    let x_sums = x.sums.as_ptr().add(r0 * blocks);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for b in 0..blocks {
        let block = weights.add(b * BLOCK_BYTES);
        let w_scale = block_scales(scales.add(b * TILE));
        for (r, acc) in acc.iter_mut().enumerate() {
            let xb = xq.add(r * row_len + b * BLOCK_ROWS) as *const i32;
            let offset = _mm256_set1_epi32(-(*x_sums.add(r * blocks + b) << 7));
            let mut dot = [offset; 2];
            for g in 0..4 {
                let xg = _mm256_set1_epi32(xb.add(g).read_unaligned());
                for (h, dot) in dot.iter_mut().enumerate() {
                    let wg = _mm256_load_si256(block.add(g * 64 + h * 32) as *const __m256i);
                    *dot = _mm256_dpbusd_avx_epi32(*dot, wg, xg);
                }
            }
            let x_scale = _mm256_set1_ps(*x_scales.add(r * blocks + b));
            for h in 0..2 {
                let scale = _mm256_mul_ps(w_scale[h], x_scale);
                acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[h]), scale, acc[h]);
            }
        }
    }
    store(&acc, r0, w, tile, out, ep);
}
