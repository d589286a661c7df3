//! Every ISA path against the portable one (bit for bit), the portable one against a
//! plain float product, and batch invariance: a row computed with others equals the
//! row computed alone.

use super::*;
use crate::cpu::ops::quantize_row;
use crate::quant::packed::PackedInt8Builder;
use crate::test_models::pseudo_random_values as values;

/// Activation rows and their quantized form (block-major).
struct Acts {
    x: Vec<f32>,
    buffers: QuantizedBuffers,
    rows: usize,
    k: usize,
}

impl Acts {
    fn new(rows: usize, k: usize, seed: u32) -> Self {
        let mut x = values(rows * k, seed);
        // Some rows with a loud channel, one zero block.
        for r in (0..rows).step_by(3) {
            x[r * k] *= 40.0;
        }
        if k >= 32 {
            x[..16].fill(0.0);
        }
        Self::quantize(x, rows, k)
    }

    fn quantize(x: Vec<f32>, rows: usize, k: usize) -> Self {
        let mut buffers = QuantizedBuffers::new(rows, k);
        let mut out = buffers.rows(rows, k);
        for r in 0..rows {
            quantize_row(
                Isa::Portable,
                &x[r * k..(r + 1) * k],
                out.row(r),
                0..k.div_ceil(16),
            );
        }
        Self {
            x,
            buffers,
            rows,
            k,
        }
    }

    fn quantized(&self) -> QuantizedRows<'_> {
        self.buffers.read(self.rows, self.k)
    }

    /// The first `rows` rows, quantized on their own.
    fn first(&self, rows: usize) -> Acts {
        Self::quantize(self.x[..rows * self.k].to_vec(), rows, self.k)
    }

    /// Row `r` alone.
    fn row(&self, r: usize) -> Acts {
        Self::quantize(self.x[r * self.k..(r + 1) * self.k].to_vec(), 1, self.k)
    }

    /// Quantized value (`128 · hi + lo`) and scale of input `i` of row `r`.
    fn value(&self, r: usize, i: usize) -> (f64, f64) {
        let at = (i / 16) * self.rows + r;
        let q = self.quantized();
        let v = 128.0 * q.hi[at * 16 + i % 16] as f64 + q.lo[at * 16 + i % 16] as f64;
        (v, q.scales[at] as f64)
    }
}

fn packed_int8(k: usize, m: usize, seed: u32) -> PackedInt8 {
    let mut builder = PackedInt8Builder::new(k, m, None);
    builder.push_part(&values(m * k, seed), m);
    builder.finish()
}

fn run_int8(isa: Isa, x: &QuantizedRows, w: &PackedInt8, ep: &Epilogue, init: f32) -> Vec<f32> {
    let m = w.out_features;
    // Rows 3 floats wider than the matrix: the kernels must respect the stride.
    let stride = m + 3;
    let mut out = vec![init; x.rows * stride];
    let target = OutRows::new(&mut out, x.rows, stride, m);
    // Two calls over halves of the tiles, as two threads would split them.
    let tiles = w.tiles();
    int8_matmul(isa, x, w, 0..tiles / 2, &target, ep);
    int8_matmul(isa, x, w, tiles / 2..tiles, &target, ep);
    out
}

const SHAPES: [(usize, usize); 6] = [(16, 16), (40, 37), (64, 1), (48, 300), (1536, 48), (33, 17)];

#[test]
fn int8_paths_equal_the_portable_bits_and_rows_are_batch_invariant() {
    for (k, m) in SHAPES {
        let w = packed_int8(k, m, 3);
        let bias = values(m, 4);
        let acts = Acts::new(17, k, 5);
        for ep in [
            Epilogue::default(),
            Epilogue {
                bias: Some(&bias),
                accumulate: true,
            },
        ] {
            let want = run_int8(Isa::Portable, &acts.quantized(), &w, &ep, 0.5);
            for isa in Isa::available() {
                let got = run_int8(isa, &acts.quantized(), &w, &ep, 0.5);
                assert!(got == want, "{isa} differs from portable at {k}x{m}");
                // Every row count from 1 to 17: row r of the pass equals row r alone.
                for rows in 1..=17 {
                    let some = acts.first(rows);
                    let batch = run_int8(isa, &some.quantized(), &w, &ep, 0.5);
                    for r in 0..rows {
                        let one = acts.row(r);
                        let alone = run_int8(isa, &one.quantized(), &w, &ep, 0.5);
                        let stride = m + 3;
                        assert!(
                            batch[r * stride..(r + 1) * stride] == alone[..],
                            "{isa}: row {r} of {rows} differs from the row alone at {k}x{m}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn int8_portable_is_the_dequantized_product() {
    for (k, m) in SHAPES {
        let w = packed_int8(k, m, 8);
        let acts = Acts::new(5, k, 9);
        let got = run_int8(
            Isa::Portable,
            &acts.quantized(),
            &w,
            &Epilogue::default(),
            0.0,
        );
        let deq = w.dequantize();
        for r in 0..acts.rows {
            for c in 0..m {
                let want: f64 = (0..k)
                    .map(|i| {
                        let (q, scale) = acts.value(r, i);
                        q * scale * deq[i * m + c] as f64
                    })
                    .sum();
                let g = got[r * (m + 3) + c] as f64;
                assert!(
                    (g - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{k}x{m} ({r},{c}): {g} vs {want}"
                );
                // And within the activations' rounding of the f32 product: each input
                // is off by at most half its block's step.
                let exact: f64 = (0..k)
                    .map(|i| acts.x[r * k + i] as f64 * deq[i * m + c] as f64)
                    .sum();
                let bound: f64 = (0..k)
                    .map(|i| deq[i * m + c].abs() as f64 * acts.value(r, i).1 / 2.0)
                    .sum();
                assert!(
                    (g - exact).abs() <= bound + 1e-5,
                    "{g} vs {exact} (bound {bound})"
                );
            }
        }
    }
}

fn run_f32(isa: Isa, x: &[f32], rows: usize, w: &PackedF32, ep: &Epilogue) -> Vec<f32> {
    let (k, m) = (w.in_features, w.out_features);
    let stride = m + 3;
    let mut out = vec![0.25; rows * stride];
    let target = OutRows::new(&mut out, rows, stride, m);
    let x = F32Rows {
        x,
        rows,
        stride: k + 1,
    };
    let tiles = w.tiles();
    f32_matmul(isa, &x, w, 0..tiles / 3, &target, ep);
    f32_matmul(isa, &x, w, tiles / 3..tiles, &target, ep);
    out
}

#[test]
fn f32_paths_equal_the_portable_bits_match_the_product_and_are_batch_invariant() {
    for (k, m) in SHAPES {
        // Two parts, as a fused QKV.
        let (a, b) = (values((m / 2) * k, 1), values((m - m / 2) * k, 2));
        let w = PackedF32::from_parts(&[(&a, m / 2), (&b, m - m / 2)], k);
        let bias = values(m, 4);
        let rows = 17;
        // Activation rows with a stride of k + 1.
        let x = values(rows * (k + 1), 6);
        for ep in [
            Epilogue::default(),
            Epilogue {
                bias: Some(&bias),
                accumulate: true,
            },
        ] {
            let want = run_f32(Isa::Portable, &x, rows, &w, &ep);
            for r in 0..rows {
                for c in 0..m {
                    let row = |o: usize| {
                        if o < m / 2 {
                            &a[o * k..][..k]
                        } else {
                            &b[(o - m / 2) * k..][..k]
                        }
                    };
                    let mut exact: f64 = (0..k)
                        .map(|i| x[r * (k + 1) + i] as f64 * row(c)[i] as f64)
                        .sum();
                    if ep.accumulate {
                        exact += 0.25 + bias[c] as f64;
                    }
                    let g = want[r * (m + 3) + c] as f64;
                    assert!(
                        (g - exact).abs() < 1e-4 * (1.0 + exact.abs()),
                        "{k}x{m}: {g} vs {exact}"
                    );
                }
            }
            for isa in Isa::available() {
                assert!(run_f32(isa, &x, rows, &w, &ep) == want, "{isa} at {k}x{m}");
                for n in 1..=rows {
                    let batch = run_f32(isa, &x, n, &w, &ep);
                    for r in 0..n {
                        let alone = run_f32(isa, &x[r * (k + 1)..], 1, &w, &ep);
                        let stride = m + 3;
                        assert!(
                            batch[r * stride..(r + 1) * stride] == alone[..],
                            "{isa}: row {r} of {n}"
                        );
                    }
                }
            }
        }
    }
}
