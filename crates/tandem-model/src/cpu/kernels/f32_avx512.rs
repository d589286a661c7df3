//! The f32 kernel on AVX-512: a tile's 16 columns are one register; each input row of
//! the tile is loaded once and multiplied into every activation row's accumulators.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::{tile_width, Epilogue, F32Rows, OutRows, PackedF32};
use crate::quant::packed::TILE;

// Rows per pass over a tile: two accumulators each (even and odd inputs).
super::row_group_kernel!("avx512f", 8, F32Rows, PackedF32, tile_rows);

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile_rows<const R: usize>(
    x: &F32Rows,
    r0: usize,
    w: &PackedF32,
    tile: usize,
    out: &OutRows,
    ep: &Epilogue,
) {
    let k = w.in_features;
    let values = w.values().as_ptr().add(tile * k * TILE);
    let xr = x.x.as_ptr().add(r0 * x.stride);
    let mut even = [_mm512_setzero_ps(); R];
    let mut odd = [_mm512_setzero_ps(); R];
    let mut i = 0;
    while i + 1 < k {
        let w0 = _mm512_load_ps(values.add(i * TILE));
        let w1 = _mm512_load_ps(values.add((i + 1) * TILE));
        for r in 0..R {
            let xp = xr.add(r * x.stride + i);
            even[r] = _mm512_fmadd_ps(_mm512_set1_ps(*xp), w0, even[r]);
            odd[r] = _mm512_fmadd_ps(_mm512_set1_ps(*xp.add(1)), w1, odd[r]);
        }
        i += 2;
    }
    if i < k {
        let w0 = _mm512_load_ps(values.add(i * TILE));
        for r in 0..R {
            even[r] = _mm512_fmadd_ps(_mm512_set1_ps(*xr.add(r * x.stride + i)), w0, even[r]);
        }
    }
    let col = tile * TILE;
    let mask: __mmask16 = (((1u32 << tile_width(w.out_features, tile)) - 1) & 0xFFFF) as u16;
    for r in 0..R {
        let mut y = _mm512_add_ps(even[r], odd[r]);
        if let Some(b) = ep.bias {
            y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, b.as_ptr().add(col)));
        }
        let dst = out.at(r0 + r, col);
        if ep.accumulate {
            y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, dst));
        }
        _mm512_mask_storeu_ps(dst, mask, y);
    }
}
