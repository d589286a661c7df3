//! Times the CPU engine's matrix kernels on the linear layers of a real model shape,
//! the way a decode or verify pass runs them: every layer's matrices once per pass, on
//! the engine's thread pool, with weights far larger than the caches.
//!
//! `cargo run --release -p tandem-model --example cpu_kernels -- [qwen1.5b|qwen0.5b|smollm2] [f32]`
//! prints per row count the median time of one pass over all layers, the weight bytes it
//! streams per second, and its cost relative to the first count (`ROWS`, default
//! 1,2,4,8,16) in the same round. `TANDEM_ISA` picks the path.

use std::time::Instant;

use tandem_model::bench::{median, median_ratio};
use tandem_model::cpu::isa::Isa;
use tandem_model::cpu::kernels::{
    f32_matmul, int8_matmul, Epilogue, F32Rows, OutRows, PackedF32, QuantizedBuffers,
};
use tandem_model::cpu::ops::quantize_row;
use tandem_model::cpu::pool::{share, Pool};
use tandem_model::quant::packed::PackedInt8Builder;
use tandem_model::quant::PackedInt8;
use tandem_model::test_models::pseudo_random_values as values;

enum Matrix {
    Int8(PackedInt8),
    F32(PackedF32),
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shape = args.first().map_or("qwen1.5b", String::as_str);
    let f32 = args.iter().any(|a| a == "f32");
    // (hidden, intermediate, qkv out, layers)
    let (d, inter, qkv, layers) = match shape {
        "qwen0.5b" => (896, 4864, 1152, 24),
        "smollm2" => (576, 1536, 960, 30),
        _ => (1536, 8960, 2048, 28),
    };
    let shapes: Vec<(usize, usize)> = if shape == "l2" {
        // One matrix each thread's share of which stays in L2: compute-bound.
        let k: usize = std::env::var("K")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1024);
        vec![(k, 1024); 1]
    } else {
        (0..layers)
            .flat_map(|_| [(d, qkv), (d, d), (d, 2 * inter), (inter, d)])
            .collect()
    };
    let isa = Isa::selected();
    let pool = Pool::global();
    eprintln!(
        "packing {} matrices ({shape}, {isa}, {} threads)…",
        shapes.len(),
        pool.threads()
    );
    let one_part = values(2 * inter * inter.max(d), 1);
    let matrices: Vec<Matrix> = shapes
        .iter()
        .map(|&(k, m)| {
            let part = &one_part[..k * m];
            if f32 {
                Matrix::F32(PackedF32::from_parts(&[(part, m)], k))
            } else {
                let mut b = PackedInt8Builder::new(k, m, None);
                b.push_part(part, m);
                Matrix::Int8(b.finish())
            }
        })
        .collect();
    let bytes: usize = matrices
        .iter()
        .map(|m| match m {
            Matrix::Int8(w) => w.size_bytes(),
            Matrix::F32(w) => w.size_bytes(),
        })
        .sum();
    let max_k = inter.max(d);
    let x = values(32 * max_k, 2);
    let mut buffers = QuantizedBuffers::new(32, max_k);
    let mut out = vec![0.0f32; 32 * 2 * inter];
    if shape == "l2" {
        // The kernel alone on one thread, weights in L2: its compute rate.
        let Matrix::Int8(w) = &matrices[0] else {
            panic!("int8 only")
        };
        let k = shapes[0].0;
        for rows in [1usize, 8, 16] {
            let mut xq = buffers.rows(rows, k);
            for r in 0..rows {
                quantize_row(isa, &x[r * k..(r + 1) * k], xq.row(r), 0..k.div_ceil(16));
            }
            let xq = xq.as_rows();
            let target = OutRows::new(&mut out, rows, 1024, 1024);
            let n = (2_000_000_000 / (k * 1024)).max(3);
            let start = Instant::now();
            for _ in 0..n {
                int8_matmul(isa, &xq, w, 0..64, &target, &Epilogue::default());
            }
            let t = start.elapsed().as_secs_f64() / n as f64;
            println!(
                "{rows:>2} rows: {:.1} µs, {:.1} GMAC/s on one thread",
                t * 1e6,
                (k * 1024 * rows) as f64 / t / 1e9
            );
        }
        return;
    }
    let counts: Vec<usize> = match std::env::var("ROWS") {
        Ok(list) => list
            .split(',')
            .map(|r| r.parse().expect("ROWS=1,2,…"))
            .collect(),
        Err(_) => vec![1, 2, 4, 8, 16],
    };
    let pass = |rows: usize, buffers: &mut QuantizedBuffers, out: &mut [f32]| {
        for (w, &(k, m)) in matrices.iter().zip(&shapes) {
            let target = OutRows::new(out, rows, m, m);
            let tiles = m.div_ceil(16);
            let parts = pool.threads();
            match w {
                Matrix::Int8(w) => {
                    let mut xq = buffers.rows(rows, k);
                    for r in 0..rows {
                        quantize_row(isa, &x[r * k..(r + 1) * k], xq.row(r), 0..k.div_ceil(16));
                    }
                    let xq = xq.as_rows();
                    pool.run(&|p| {
                        int8_matmul(
                            isa,
                            &xq,
                            w,
                            share(tiles, p, parts),
                            &target,
                            &Epilogue::default(),
                        )
                    });
                }
                Matrix::F32(w) => {
                    let xr = F32Rows {
                        x: &x,
                        rows,
                        stride: k,
                    };
                    pool.run(&|p| {
                        f32_matmul(
                            isa,
                            &xr,
                            w,
                            share(tiles, p, parts),
                            &target,
                            &Epilogue::default(),
                        )
                    });
                }
            }
        }
    };
    // Rounds of one pass of each row count, so that each count sits seconds from the
    // 1-row pass it is compared with (the shared host's memory speed drifts).
    for &rows in &counts {
        pass(rows, &mut buffers, &mut out);
    }
    let mut times = vec![Vec::new(); counts.len()];
    for _ in 0..9 {
        for (&rows, times) in counts.iter().zip(times.iter_mut()) {
            let start = Instant::now();
            pass(rows, &mut buffers, &mut out);
            times.push(start.elapsed().as_secs_f64());
        }
    }
    for (&rows, t) in counts.iter().zip(&times) {
        let ratio = median_ratio(t, &times[0]);
        let t = median(t.clone());
        println!(
            "{rows:>2} rows: {:7.2} ms  {:5.1} GB/s  {ratio:.2}× one row",
            t * 1e3,
            bytes as f64 / t / 1e9,
        );
    }
}
