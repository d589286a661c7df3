//! The int8 kernel on AVX2 without VNNI: `maddubs` multiplies unsigned by signed bytes
//! into saturating i16 pairs, so the weights go back to signed `q` and the sign trick
//! (`|q| · sign(x, q)`, both within ±127) keeps every pair sum below 2¹⁵; `madd` with
//! ones then widens pairs to i32. Same integer sums as VNNI, four instructions instead
//! of one.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::{prefetch_block, tile_width, Epilogue, Int8Tile, OutRows, QuantizedRows};
use crate::quant::packed::{PackedInt8, BLOCK_BYTES, TILE};
use crate::quant::BLOCK_ROWS;

// Rows per pass over a tile: two f32 accumulators each, in 16 ymm registers.
super::row_group_kernel!("avx2,fma,f16c", 4, QuantizedRows, PackedInt8, tile_rows);

#[target_feature(enable = "avx2,fma,f16c")]
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
    let flip = _mm256_set1_epi8(-128);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for b in 0..t.blocks {
        let block = t.weights.add(b * BLOCK_BYTES);
        prefetch_block(block, t.scales.add(b * TILE));
        let w_scale = block_scales(t.scales.add(b * TILE));
        let at = b * x.rows;
        for (r, acc) in acc.iter_mut().enumerate() {
            let hi = t.x_hi.add((at + r) * BLOCK_ROWS) as *const i32;
            let lo = t.x_lo.add((at + r) * BLOCK_ROWS) as *const i32;
            let mut dot = [_mm256_setzero_si256(); 2];
            for (level, xs) in [hi, lo].into_iter().enumerate() {
                if level == 1 {
                    for dot in dot.iter_mut() {
                        *dot = _mm256_slli_epi32::<7>(*dot);
                    }
                }
                for g in 0..4 {
                    let xg = _mm256_set1_epi32(xs.add(g).read_unaligned());
                    for (h, dot) in dot.iter_mut().enumerate() {
                        let stored =
                            _mm256_load_si256(block.add(g * 64 + h * 32) as *const __m256i);
                        let q = _mm256_xor_si256(stored, flip);
                        let pairs =
                            _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(xg, q));
                        *dot = _mm256_add_epi32(*dot, _mm256_madd_epi16(pairs, ones));
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

/// The 16 relative block scales of one block, as two f32 vectors.
#[target_feature(enable = "avx2,f16c")]
#[inline]
pub(super) unsafe fn block_scales(scales: *const u16) -> [__m256; 2] {
    [
        _mm256_cvtph_ps(_mm_loadu_si128(scales as *const __m128i)),
        _mm256_cvtph_ps(_mm_loadu_si128(scales.add(8) as *const __m128i)),
    ]
}

/// `out = acc · column_scale + bias (+ out)` for 256-bit accumulators (columns 0–7 and
/// 8–15); a partial last tile goes through a buffer.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn store<const R: usize>(
    acc: &[[__m256; 2]; R],
    r0: usize,
    w: &PackedInt8,
    tile: usize,
    out: &OutRows,
    ep: &Epilogue,
) {
    let col = tile * TILE;
    let width = tile_width(w.out_features, tile);
    let mut bias = [0.0f32; TILE];
    if let Some(b) = ep.bias {
        bias[..width].copy_from_slice(&b[col..col + width]);
    }
    for (r, acc) in acc.iter().enumerate() {
        let mut y = [0.0f32; TILE];
        for h in 0..2 {
            let column_scale = _mm256_loadu_ps(w.column_scales.as_ptr().add(col + 8 * h));
            let v = _mm256_fmadd_ps(
                acc[h],
                column_scale,
                _mm256_loadu_ps(bias.as_ptr().add(8 * h)),
            );
            _mm256_storeu_ps(y.as_mut_ptr().add(8 * h), v);
        }
        let dst = out.at(r0 + r, col);
        for (lane, &v) in y.iter().enumerate().take(width) {
            let d = dst.add(lane);
            *d = if ep.accumulate { v + *d } else { v };
        }
    }
}
