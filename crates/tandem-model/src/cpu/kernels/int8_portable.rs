//! The int8 kernel in plain Rust: the reference every SIMD path must equal bit for bit,
//! and the path for CPUs without AVX2.

use std::ops::Range;

use super::{tile_width, Epilogue, OutRows, QuantizedRows};
use crate::quant::packed::{PackedInt8, BLOCK_BYTES, GROUP, TILE};
use crate::quant::BLOCK_ROWS;

/// # Safety
/// `x`, `w`, `tiles`, `out` and `ep` passed the checks of [`super::int8_matmul`].
pub(super) unsafe fn matmul(
    x: &QuantizedRows,
    w: &PackedInt8,
    tiles: Range<usize>,
    out: &OutRows,
    ep: &Epilogue,
) {
    let blocks = w.blocks();
    let weights = w.weights.as_slice();
    for tile in tiles {
        let width = tile_width(w.out_features, tile);
        let tile_weights = &weights[tile * blocks * BLOCK_BYTES..][..blocks * BLOCK_BYTES];
        let tile_scales = &w.scales[tile * blocks * TILE..][..blocks * TILE];
        for row in 0..x.rows {
            let mut acc = [0.0f32; TILE];
            for b in 0..blocks {
                let block = &tile_weights[b * BLOCK_BYTES..][..BLOCK_BYTES];
                let at = b * x.rows + row;
                let hi = &x.hi[at * BLOCK_ROWS..][..BLOCK_ROWS];
                let lo = &x.lo[at * BLOCK_ROWS..][..BLOCK_ROWS];
                let x_scale = x.scales[at];
                for (lane, acc) in acc.iter_mut().enumerate() {
                    // Exact: |Σ| ≤ 16 · 127 · (128 · 127 + 64) < 2³¹.
                    let (mut dot_hi, mut dot_lo) = (0i32, 0i32);
                    for i in 0..BLOCK_ROWS {
                        let (g, byte) = (i / GROUP, i % GROUP);
                        let q = (block[(g * TILE + lane) * GROUP + byte] ^ 0x80) as i8 as i32;
                        dot_hi += q * hi[i] as i32;
                        dot_lo += q * lo[i] as i32;
                    }
                    let dot = (dot_hi << 7) + dot_lo;
                    let w_scale = half::f16::from_bits(tile_scales[b * TILE + lane]).to_f32();
                    *acc = (dot as f32).mul_add(w_scale * x_scale, *acc);
                }
            }
            for (lane, &acc) in acc.iter().enumerate().take(width) {
                let col = tile * TILE + lane;
                let bias = ep.bias.map_or(0.0, |b| b[col]);
                let mut y = acc.mul_add(w.column_scales[col], bias);
                let dst = out.at(row, col);
                if ep.accumulate {
                    y += *dst;
                }
                *dst = y;
            }
        }
    }
}
