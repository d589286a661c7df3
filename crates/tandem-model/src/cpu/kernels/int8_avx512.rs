//! The int8 kernel on AVX-512 VNNI: one 512-bit `vpdpbusd` multiplies a 64-byte group
//! of weights (16 columns × 4 inputs) by 4 broadcast activation bytes, so a 16 × 16
//! block costs 4 of them per row, with the i32 sums of all 16 columns in one register.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::{prefetch_block, tile_width, Epilogue, Int8Tile, OutRows, QuantizedRows};
use crate::quant::packed::{PackedInt8, BLOCK_BYTES, TILE};
use crate::quant::BLOCK_ROWS;

// Rows per pass over a tile: each keeps one f32 accumulator register, beside the 4
super::row_group_kernel!(
    "avx512f,avx512bw,avx512vnni",
    8,
    QuantizedRows,
    PackedInt8,
    tile_rows
);

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
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
    let mut acc = [_mm512_setzero_ps(); R];
    for b in 0..t.blocks {
        let block = t.weights.add(b * BLOCK_BYTES);
        prefetch_block(block, t.scales.add(b * TILE));
        let w0 = _mm512_load_si512(block as *const __m512i);
        let w1 = _mm512_load_si512(block.add(64) as *const __m512i);
        let w2 = _mm512_load_si512(block.add(128) as *const __m512i);
        let w3 = _mm512_load_si512(block.add(192) as *const __m512i);
        let w_scale = _mm512_cvtph_ps(_mm256_loadu_si256(t.scales.add(b * TILE) as *const __m256i));
        let at = b * x.rows;
        for (r, acc) in acc.iter_mut().enumerate() {
            let hi = t.x_hi.add((at + r) * BLOCK_ROWS) as *const i32;
            let lo = t.x_lo.add((at + r) * BLOCK_ROWS) as *const i32;
            // The weights are stored as q + 128; the offset takes that out of both levels.
            let mut dot = _mm512_set1_epi32(*t.x_offsets.add(at + r));
            dot = _mm512_dpbusd_epi32(dot, w0, _mm512_set1_epi32(hi.read_unaligned()));
            dot = _mm512_dpbusd_epi32(dot, w1, _mm512_set1_epi32(hi.add(1).read_unaligned()));
            dot = _mm512_dpbusd_epi32(dot, w2, _mm512_set1_epi32(hi.add(2).read_unaligned()));
            dot = _mm512_dpbusd_epi32(dot, w3, _mm512_set1_epi32(hi.add(3).read_unaligned()));
            dot = _mm512_slli_epi32::<7>(dot);
            dot = _mm512_dpbusd_epi32(dot, w0, _mm512_set1_epi32(lo.read_unaligned()));
            dot = _mm512_dpbusd_epi32(dot, w1, _mm512_set1_epi32(lo.add(1).read_unaligned()));
            dot = _mm512_dpbusd_epi32(dot, w2, _mm512_set1_epi32(lo.add(2).read_unaligned()));
            dot = _mm512_dpbusd_epi32(dot, w3, _mm512_set1_epi32(lo.add(3).read_unaligned()));
            let scale = _mm512_mul_ps(w_scale, _mm512_set1_ps(*t.x_scales.add(at + r)));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, *acc);
        }
    }
    store(acc, r0, w, tile, out, ep);
}

/// `out = acc · column_scale + bias (+ out)`, the columns past the matrix masked off.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store<const R: usize>(
    acc: [__m512; R],
    r0: usize,
    w: &PackedInt8,
    tile: usize,
    out: &OutRows,
    ep: &Epilogue,
) {
    let col = tile * TILE;
    let mask: __mmask16 = (((1u32 << tile_width(w.out_features, tile)) - 1) & 0xFFFF) as u16;
    let column_scale = _mm512_loadu_ps(w.column_scales.as_ptr().add(col));
    let bias = match ep.bias {
        Some(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(col)),
        None => _mm512_setzero_ps(),
    };
    for (r, acc) in acc.iter().enumerate() {
        let dst = out.at(r0 + r, col);
        let mut y = _mm512_fmadd_ps(*acc, column_scale, bias);
        if ep.accumulate {
            y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, dst));
        }
        _mm512_mask_storeu_ps(dst, mask, y);
    }
}
