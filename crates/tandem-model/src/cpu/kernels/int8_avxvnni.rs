//! The int8 kernel on AVX-VNNI: the VEX-encoded 256-bit `vpdpbusd`, so a 16-column tile
//! is two registers (columns 0–7 and 8–15) per group of 4 inputs.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::int8_avx2::{block_scales, store};
use super::{prefetch_block, Epilogue, Int8Tile, OutRows, QuantizedRows};
use crate::quant::packed::{PackedInt8, BLOCK_BYTES, TILE};
use crate::quant::BLOCK_ROWS;

// Rows per pass over a tile: two f32 accumulators each, in 16 ymm registers.
super::row_group_kernel!(
    "avx2,fma,f16c,avxvnni",
    4,
    QuantizedRows,
    PackedInt8,
    tile_rows
);

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
    let t = Int8Tile::new(x, r0, w, tile);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for b in 0..t.blocks {
        let block = t.weights.add(b * BLOCK_BYTES);
        prefetch_block(block, t.scales.add(b * TILE));
        let w_scale = block_scales(t.scales.add(b * TILE));
        let at = b * x.rows;
        for (r, acc) in acc.iter_mut().enumerate() {
            let hi = t.x_hi.add((at + r) * BLOCK_ROWS) as *const i32;
            let lo = t.x_lo.add((at + r) * BLOCK_ROWS) as *const i32;
            // The weights are stored as q + 128; the offset takes that out of both levels.
            let mut dot = [_mm256_set1_epi32(*t.x_offsets.add(at + r)); 2];
            for (level, xs) in [hi, lo].into_iter().enumerate() {
                if level == 1 {
                    for dot in dot.iter_mut() {
                        *dot = _mm256_slli_epi32::<7>(*dot);
                    }
                }
                for g in 0..4 {
                    let xg = _mm256_set1_epi32(xs.add(g).read_unaligned());
                    for (h, dot) in dot.iter_mut().enumerate() {
                        let wg = _mm256_load_si256(block.add(g * 64 + h * 32) as *const __m256i);
                        *dot = _mm256_dpbusd_avx_epi32(*dot, wg, xg);
                    }
                }
            }
            let x_scale = _mm256_set1_ps(*t.x_scales.add(at + r));
            for h in 0..2 {
                let scale = _mm256_mul_ps(w_scale[h], x_scale);
                acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[h]), scale, acc[h]);
            }
        }
    }
    store(&acc, r0, w, tile, out, ep);
}
