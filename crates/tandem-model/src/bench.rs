//! Speed measurements of the model core, reported as JSON by `tandem bench`.
//!
//! Speed goals live here, not in timed tests: a benchmark reports, a test asserts.

use std::time::Instant;

use burn::tensor::Tensor;
use serde::Serialize;

use crate::backends::TandemBackend;
use crate::families::kv_cache::KvCache;
use crate::families::llama::Llama;
use crate::Result;

/// What `tandem bench` measures.
#[derive(Debug, Clone, Serialize)]
pub struct ModelBench {
    pub backend: String,
    pub threads: usize,
    pub parameters: usize,
    /// Plain decoding (one token per forward, logits to host, argmax) after a short prompt.
    pub decode_tokens_per_sec: f64,
    pub decode_tokens: usize,
    /// Prefill of `prefill_tokens` tokens, logits for the last position only.
    pub prefill_tokens_per_sec: f64,
    pub prefill_tokens: usize,
    /// Cost of one forward over n new tokens on top of `verify_context` cached tokens.
    pub verify_context: usize,
    pub verify: Vec<VerifyCost>,
    /// Cost of appending one position to one layer's KV cache at several lengths.
    pub kv_append: Vec<AppendCost>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyCost {
    pub new_tokens: usize,
    pub ms: f64,
    /// ms(n) / ms(1): how much a γ+1 verify pass costs relative to one decode step.
    pub relative_to_one: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppendCost {
    pub context: usize,
    pub microseconds: f64,
}

/// Deterministic filler tokens (a prime stride through the vocabulary).
pub fn synthetic_tokens(n: usize, vocab: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i * 7919 + 13) % vocab.min(32_000)) as u32)
        .collect()
}

fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs the model benchmark: decode, prefill, verify costs and KV append.
pub fn run<B: TandemBackend>(
    model: &mut Llama<B>,
    decode_tokens: usize,
    prefill_tokens: usize,
    verify_context: usize,
    repeats: usize,
) -> Result<ModelBench> {
    let vocab = model.config().vocab_size;
    let repeats = repeats.max(1);

    // Warm-up: the first forward pays for allocations and thread-pool start.
    model.reset();
    model.forward(&synthetic_tokens(8, vocab))?;

    // Plain decoding, each step's logits read back to host as a sampler would.
    model.reset();
    let logits = model.forward_tail(&synthetic_tokens(16, vocab), 1)?;
    let mut next = argmax(&logits.into_data().to_vec::<f32>().unwrap_or_default());
    let start = Instant::now();
    for _ in 0..decode_tokens {
        let logits = model.forward(&[next])?;
        next = argmax(&logits.into_data().to_vec::<f32>().unwrap_or_default());
    }
    let decode_tokens_per_sec = decode_tokens as f64 / start.elapsed().as_secs_f64();

    let prompt = synthetic_tokens(prefill_tokens, vocab);
    let mut prefill = Vec::new();
    for _ in 0..repeats {
        model.reset();
        let start = Instant::now();
        let logits = model.forward_tail(&prompt, 1)?;
        let _ = logits.into_data();
        prefill.push(start.elapsed().as_secs_f64());
    }
    let prefill_tokens_per_sec = prefill_tokens as f64 / median(prefill);

    model.reset();
    let _ = model
        .forward_tail(&synthetic_tokens(verify_context, vocab), 1)?
        .into_data();
    let mut verify = Vec::new();
    for n in [1usize, 2, 4, 8, 16] {
        let tokens = synthetic_tokens(n, vocab);
        let mut times = Vec::new();
        for _ in 0..repeats.max(3) {
            let start = Instant::now();
            let logits = model.forward(&tokens)?;
            let _ = logits.into_data();
            times.push(start.elapsed().as_secs_f64() * 1e3);
            model.truncate(verify_context);
        }
        verify.push(VerifyCost {
            new_tokens: n,
            ms: median(times),
            relative_to_one: 0.0,
        });
    }
    let one = verify[0].ms;
    verify
        .iter_mut()
        .for_each(|v| v.relative_to_one = v.ms / one);

    let c = model.config().clone();
    let kv_append = kv_append_costs::<B>(
        c.num_kv_heads,
        c.head_dim,
        &[512, 2048, 8192],
        model.device(),
    );
    Ok(ModelBench {
        backend: B::backend_name().to_string(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        parameters: c.parameter_count(),
        decode_tokens_per_sec,
        decode_tokens,
        prefill_tokens_per_sec,
        prefill_tokens,
        verify_context,
        verify,
        kv_append,
    })
}

/// Time of appending one position (keys and values) to a one-layer cache filled to each
/// context length: it must not grow with the length.
pub fn kv_append_costs<B: TandemBackend>(
    kv_heads: usize,
    head_dim: usize,
    contexts: &[usize],
    device: &B::Device,
) -> Vec<AppendCost> {
    let capacity = contexts.iter().max().copied().unwrap_or(1) + 1;
    let mut cache = KvCache::<B>::new(1, capacity, kv_heads, head_dim, device);
    let row = Tensor::<B, 3>::ones([1, kv_heads, head_dim], device);
    contexts
        .iter()
        .map(|&context| {
            const ROUNDS: usize = 200;
            let mut total = 0.0;
            for _ in 0..ROUNDS {
                cache.truncate(0);
                cache.advance(context - 1);
                let start = Instant::now();
                drop(cache.append(0, row.clone(), row.clone()));
                total += start.elapsed().as_secs_f64();
            }
            AppendCost {
                context,
                microseconds: total / ROUNDS as f64 * 1e6,
            }
        })
        .collect()
}
