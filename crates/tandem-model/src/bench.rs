//! Speed measurements of the model core, reported as JSON by `tandem bench`.
//!
//! Speed goals live here, not in timed tests: a benchmark reports, a test asserts.

use std::time::Instant;

use burn::tensor::Tensor;
use serde::Serialize;
use tandem_decode::{CausalLm, Logits};

use crate::backends::TandemBackend;
use crate::config::ModelConfig;
use crate::cpu::bandwidth::Bandwidth;
use crate::cpu::CpuModel;
use crate::families::kv_cache::KvCache;
use crate::families::linears;
use crate::families::llama::Llama;
use crate::quant::{scale_rows, Precision};

/// A model `tandem bench` can measure: a causal LM plus what the report says about it.
pub trait BenchModel: CausalLm {
    fn config(&self) -> &ModelConfig;
    /// What runs it: `cpu`, `flex` or `cuda`.
    fn backend(&self) -> String;
    /// The CPU engine's instruction set; `None` on burn backends.
    fn isa(&self) -> Option<String>;
    fn threads(&self) -> usize;
    /// Weight bytes one decode step reads (every linear layer and norm, one embedding
    /// row).
    fn weight_bytes_per_token(&self) -> usize;
    /// Time of appending one position to one layer's KV cache at each context length.
    fn kv_append_costs(&self, contexts: &[usize]) -> Vec<AppendCost>;
}

/// What `tandem bench` measures.
#[derive(Debug, Clone, Serialize)]
pub struct ModelBench {
    pub backend: String,
    pub isa: Option<String>,
    pub threads: usize,
    pub parameters: usize,
    /// Plain decoding (one token per forward, logits to host, argmax) after a short prompt.
    pub decode_tokens_per_sec: f64,
    pub decode_tokens: usize,
    /// Weight bytes read per decode step, and what that makes per second at the decode
    /// speed above.
    pub weight_bytes_per_token: usize,
    pub decode_gb_per_sec: f64,
    /// The machine's measured bandwidth (with the same threads), and the decode's share
    /// of the read bandwidth: the roofline.
    pub memory: Option<Bandwidth>,
    pub decode_percent_of_read_bandwidth: Option<f64>,
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
    /// ms(n) / ms(1): how much a γ+1 verify pass costs relative to one decode step (the
    /// median over rounds of the ratio within a round).
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

/// The median of `xs` (the upper one of an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The median over rounds of `times[i] / reference[i]`, each pair timed in the same
/// round: on a shared host the memory and clock speed drift between stretches of a run
/// by more than the ratios being measured, so only times taken seconds apart compare.
pub fn median_ratio(times: &[f64], reference: &[f64]) -> f64 {
    median(times.iter().zip(reference).map(|(t, r)| t / r).collect())
}

/// Runs the model benchmark: decode, prefill, verify costs and KV append; with
/// `bandwidth`, the decode's share of it.
pub fn run(
    model: &mut dyn BenchModel,
    decode_tokens: usize,
    prefill_tokens: usize,
    verify_context: usize,
    repeats: usize,
    bandwidth: Option<Bandwidth>,
) -> std::result::Result<ModelBench, tandem_decode::ModelError> {
    let vocab = model.config().vocab_size;
    let repeats = repeats.max(1);

    // Warm-up: the first forward pays for allocations and thread-pool start.
    model.reset();
    model.forward(&synthetic_tokens(8, vocab))?;

    // Plain decoding, each step's logits on the host as a sampler would read them.
    model.reset();
    // One logits buffer reused by every pass, as the decoder reuses its own: a fresh
    // one per pass would time the allocator's page faults (5 MB for 8 rows of 152k).
    let mut logits = Logits::empty();
    model.forward_last_into(&synthetic_tokens(16, vocab), 1, &mut logits)?;
    let mut next = argmax(logits.row(0));
    let start = Instant::now();
    for _ in 0..decode_tokens {
        model.forward_last_into(&[next], 1, &mut logits)?;
        next = argmax(logits.row(0));
    }
    let decode_tokens_per_sec = decode_tokens as f64 / start.elapsed().as_secs_f64();

    let prompt = synthetic_tokens(prefill_tokens, vocab);
    let mut prefill = Vec::new();
    for _ in 0..repeats {
        model.reset();
        let start = Instant::now();
        model.forward_last(&prompt, 1)?;
        prefill.push(start.elapsed().as_secs_f64());
    }
    let prefill_tokens_per_sec = prefill_tokens as f64 / median(prefill);

    model.reset();
    model.forward_last(&synthetic_tokens(verify_context, vocab), 1)?;
    // Rounds of one pass of each size, so that each size's pass sits seconds from the
    // 1-token pass it is compared with: on a shared host the memory and clock speed
    // drift between runs a minute apart by more than the ratios being measured, and a
    // ratio of passes measured in separate stretches would carry that drift.
    const SIZES: [usize; 5] = [1, 2, 4, 8, 16];
    let mut times = vec![Vec::new(); SIZES.len()];
    for _ in 0..repeats.max(5) {
        for (n, times) in SIZES.iter().zip(times.iter_mut()) {
            let tokens = synthetic_tokens(*n, vocab);
            let start = Instant::now();
            // Every row's logits, as a verify pass of n − 1 drafts asks for.
            model.forward_last_into(&tokens, *n, &mut logits)?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            model.truncate(verify_context);
        }
    }
    let verify = SIZES
        .iter()
        .zip(&times)
        .map(|(&n, ms)| VerifyCost {
            new_tokens: n,
            ms: median(ms.clone()),
            relative_to_one: median_ratio(ms, &times[0]),
        })
        .collect();

    let kv_append = model.kv_append_costs(&[512, 2048, 8192]);
    let weight_bytes_per_token = model.weight_bytes_per_token();
    let decode_gb_per_sec = weight_bytes_per_token as f64 * decode_tokens_per_sec / 1e9;
    let decode_percent_of_read_bandwidth = bandwidth
        .as_ref()
        .map(|b| 100.0 * decode_gb_per_sec / b.read_gb_per_sec);
    Ok(ModelBench {
        backend: model.backend(),
        isa: model.isa(),
        threads: model.threads(),
        parameters: model.config().parameter_count(),
        decode_tokens_per_sec,
        decode_tokens,
        weight_bytes_per_token,
        decode_gb_per_sec,
        memory: bandwidth,
        decode_percent_of_read_bandwidth,
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

impl<B: TandemBackend> BenchModel for Llama<B> {
    fn config(&self) -> &ModelConfig {
        Llama::config(self)
    }

    fn backend(&self) -> String {
        B::backend_name().to_string()
    }

    fn isa(&self) -> Option<String> {
        None
    }

    fn threads(&self) -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    fn weight_bytes_per_token(&self) -> usize {
        // burn's int8 matrices hold one f32 scale per 16 inputs of each column.
        let c = Llama::config(self);
        let linear_bytes: usize = linears::all(c)
            .iter()
            .map(|spec| {
                let (k, m) = (spec.in_features, spec.out_features());
                match self.precision() {
                    Precision::F32 => 4 * k * m,
                    Precision::F16 => 2 * k * m,
                    Precision::Int8 => k * m + 4 * scale_rows(k) * m,
                }
            })
            .sum();
        linear_bytes + 4 * c.hidden_size * (2 * c.num_layers + 2)
    }

    fn kv_append_costs(&self, contexts: &[usize]) -> Vec<AppendCost> {
        let c = Llama::config(self);
        kv_append_costs::<B>(c.num_kv_heads, c.head_dim, contexts, self.device())
    }
}

impl BenchModel for CpuModel {
    fn config(&self) -> &ModelConfig {
        CpuModel::config(self)
    }

    fn backend(&self) -> String {
        "cpu".into()
    }

    fn isa(&self) -> Option<String> {
        Some(CpuModel::isa(self).to_string())
    }

    fn threads(&self) -> usize {
        CpuModel::threads(self)
    }

    fn weight_bytes_per_token(&self) -> usize {
        CpuModel::weight_bytes_per_token(self)
    }

    fn kv_append_costs(&self, contexts: &[usize]) -> Vec<AppendCost> {
        let c = CpuModel::config(self);
        let capacity = contexts.iter().max().copied().unwrap_or(1) + 1;
        let mut cache =
            crate::cpu::attention::KvCache::new(&[None], capacity, c.num_kv_heads, c.head_dim);
        let row = vec![1.0f32; c.num_kv_heads * c.head_dim];
        contexts
            .iter()
            .map(|&context| {
                const ROUNDS: usize = 200;
                let start = Instant::now();
                for _ in 0..ROUNDS {
                    cache.write(0, context, &row, &row);
                }
                std::hint::black_box(&cache);
                AppendCost {
                    context,
                    microseconds: start.elapsed().as_secs_f64() / ROUNDS as f64 * 1e6,
                }
            })
            .collect()
    }
}
