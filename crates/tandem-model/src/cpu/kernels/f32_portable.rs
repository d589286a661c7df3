//! The f32 kernel in plain Rust: the reference the SIMD paths equal bit for bit.

use std::ops::Range;

use super::{tile_width, Epilogue, F32Rows, OutRows, PackedF32};
use crate::quant::packed::TILE;

/// # Safety
/// The arguments passed [`super::f32_matmul`]'s checks.
pub(super) unsafe fn matmul(
    x: &F32Rows,
    w: &PackedF32,
    tiles: Range<usize>,
    out: &OutRows,
    ep: &Epilogue,
) {
    let k = w.in_features;
    let values = w.values();
    for tile in tiles {
        let width = tile_width(w.out_features, tile);
        let tile_values = &values[tile * k * TILE..][..k * TILE];
        for row in 0..x.rows {
            let xr = &x.x[row * x.stride..][..k];
            // Even inputs into one accumulator, odd into the other: two dependency
            // chains, as the SIMD paths have.
            let mut acc = [[0.0f32; TILE]; 2];
            for (i, &xv) in xr.iter().enumerate() {
                let wv = &tile_values[i * TILE..][..TILE];
                for (a, &wv) in acc[i % 2].iter_mut().zip(wv) {
                    *a = xv.mul_add(wv, *a);
                }
            }
            for lane in 0..width {
                let col = tile * TILE + lane;
                let mut y = acc[0][lane] + acc[1][lane];
                if let Some(bias) = ep.bias {
                    y += bias[col];
                }
                let dst = out.at(row, col);
                if ep.accumulate {
                    y += *dst;
                }
                *dst = y;
            }
        }
    }
}
