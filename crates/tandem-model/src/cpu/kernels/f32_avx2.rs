//! The f32 kernel on AVX2: a tile's 16 columns are two registers.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::{tile_width, Epilogue, F32Rows, OutRows, PackedF32};
use crate::quant::packed::TILE;

// Rows per pass over a tile: four accumulators each (two halves, even and odd inputs),
super::row_group_kernel!("avx2,fma", 3, F32Rows, PackedF32, tile_rows);

#[target_feature(enable = "avx2,fma")]
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
    // [row][parity][half]: even inputs, odd inputs; columns 0–7, 8–15.
    let mut acc = [[[_mm256_setzero_ps(); 2]; 2]; R];
    let mut i = 0;
    while i < k {
        let pairs = if i + 1 < k { 2 } else { 1 };
        for p in 0..pairs {
            let wp = values.add((i + p) * TILE);
            let wv = [_mm256_load_ps(wp), _mm256_load_ps(wp.add(8))];
            for (r, acc) in acc.iter_mut().enumerate() {
                let xv = _mm256_set1_ps(*xr.add(r * x.stride + i + p));
                acc[p][0] = _mm256_fmadd_ps(xv, wv[0], acc[p][0]);
                acc[p][1] = _mm256_fmadd_ps(xv, wv[1], acc[p][1]);
            }
        }
        i += 2;
    }
    let col = tile * TILE;
    let width = tile_width(w.out_features, tile);
    for (r, acc) in acc.iter().enumerate() {
        let mut y = [0.0f32; TILE];
        for h in 0..2 {
            _mm256_storeu_ps(
                y.as_mut_ptr().add(8 * h),
                _mm256_add_ps(acc[0][h], acc[1][h]),
            );
        }
        let dst = out.at(r0 + r, col);
        for (lane, &v) in y.iter().enumerate().take(width) {
            let mut v = v;
            if let Some(b) = ep.bias {
                v += b[col + lane];
            }
            let d = dst.add(lane);
            if ep.accumulate {
                v += *d;
            }
            *d = v;
        }
    }
}
