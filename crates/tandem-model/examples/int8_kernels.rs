//! Times the f32 and int8 matmul kernels on decoder-sized matrices.
//!
//! `cargo run --release -p tandem-model --example int8_kernels` prints, per shape and
//! row count, the time of one product and the weight bytes streamed per second.

use std::time::Instant;

use tandem_model::backends::flex_kernels::{matmul_f32, matmul_i8};
use tandem_model::quant::QuantizedMatrix;
use tandem_model::test_models::pseudo_random_values as values;

/// Median seconds of `f` over enough runs to take about 0.3 s.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64().max(1e-6);
    let runs = ((0.3 / once) as usize).clamp(3, 200);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() {
    // SmolLM2-135M's gate/up and down, Qwen2.5-0.5B's gate/up.
    for (k, m) in [(576, 3072), (1536, 576), (896, 9728)] {
        let w = values(k * m, 7);
        let q = QuantizedMatrix::quantize(&w, k, m);
        for n in [1, 4, 16, 64] {
            let x = values(n * k, 3);
            let f32_s = time(|| drop(matmul_f32(&x, n, k, &w, m)));
            let i8_s = time(|| drop(matmul_i8(&x, n, k, &q.values, &q.scales, m)));
            println!(
                "k={k:5} m={m:5} n={n:3}: f32 {:8.3} ms ({:5.1} GB/s)  int8 {:8.3} ms ({:5.1} GB/s)  int8/f32 {:.2}",
                f32_s * 1e3,
                (4 * k * m) as f64 / f32_s / 1e9,
                i8_s * 1e3,
                q.size_bytes() as f64 / i8_s / 1e9,
                i8_s / f32_s
            );
        }
    }
}
