//! The decoder on the CPU engine: the Llama-family forward of
//! [`families::llama`](crate::families::llama), computed by Tandem's own kernels over
//! buffers allocated once at load.
//!
//! A forward of `n` new tokens runs in chunks of at most [`CHUNK`] rows (a prefill is
//! several chunks; decode and verify passes are one). Per layer and chunk:
//! 1. RMSNorm of each row, quantized on the fly for int8 weights;
//! 2. the fused QKV product (with bias), split over the pool by output tiles;
//! 3. q/k norms (Qwen3, Gemma 3), RoPE in place on q and k (the layer's own tables, or
//!    none), and k, v written into the cache;
//! 4. attention (over the window of a sliding layer, scores soft-capped for Gemma 2),
//!    split over the pool by query heads;
//! 5. the output projection, added into the residual stream by the kernel (Gemma 2/3:
//!    normalized first);
//! 6. RMSNorm, the fused gate/up product, the gate's activation (quantized on the fly),
//!    and the down projection added into the residual stream (normalized first for
//!    Gemma 2/3).
//!
//! Then the final norm and the LM head for the rows whose logits are asked for (Gemma
//! 2 soft-caps them). Every
//! step treats rows independently with fixed reduction orders, so each row of a pass
//! equals the same row computed alone, bit for bit, and chunking a prefill changes
//! nothing.

use std::path::Path;

use tandem_decode::{CausalLm, Logits, ModelError as DecodeModelError};

use super::attention::KvCache;
use super::isa::Isa;
use super::kernels::QuantizedBuffers;
use super::layer::{
    gate_up_columns, prepare_normed, Dims, InputBuffers, Layer, RopeTables, Run, Scratch,
};
use super::linear::{load_linear, Linear};
use super::ops::soft_cap;
use super::pool::Pool;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::families::linears::{self, LayerLinears, LinearSpec};
use crate::families::llama::{check_forward, int8_weights, LoadOptions};
use crate::families::norms::{norm_weights, LayerNorms};
use crate::families::rope;
use crate::formats::int8_cache::{CacheOutcome, QuantizedWeights};
use crate::formats::safetensors::WeightFiles;
use crate::quant::packed::TILE;
use crate::quant::Precision;
use crate::{Flex, Tokenizer};

/// Rows per chunk of a forward: a verify pass (γ + 1 ≤ 32) is one chunk.
pub const CHUNK: usize = 32;

/// A decoder on the CPU engine with its KV cache (see the module docs).
pub struct CpuModel {
    config: ModelConfig,
    precision: Precision,
    isa: Isa,
    pool: &'static Pool,
    /// `[vocab, hidden]` f32.
    embed: Vec<f32>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    lm_head: Linear,
    /// The token ids `lm_head` computes, in its column order, when it was limited to a
    /// subset of the vocabulary ([`limit_logits`](Self::limit_logits)).
    logit_ids: Option<Vec<u32>>,
    /// The limited LM head's output, `[CHUNK, logit_ids.len()]`.
    subset_logits: Vec<f32>,
    /// The rotary tables the layers use (global, and Gemma 3's local ones).
    ropes: Vec<RopeTables>,
    /// Phi-3's LongRoPE, when the context can outgrow its switch.
    long_rope: Option<LongRope>,
    cache: KvCache,
    scratch: Scratch,
    dims: Dims,
    int8_cache: Option<CacheOutcome>,
}

/// LongRoPE past its switch (see [`ModelConfig::longrope_switch`]): a sequence longer
/// than `switch` runs with the long factors at every position, so when a forward first
/// reaches position `switch` the cached positions are computed again with the long
/// tables (as transformers' `generate()` re-runs the sequence), and after a rollback
/// below it again with the short ones. The output for a prefix is then always what one
/// forward over that prefix computes, however the tokens were fed.
struct LongRope {
    switch: usize,
    /// The long tables, in the order of [`CpuModel::ropes`].
    tables: Vec<RopeTables>,
    /// The ids of the cached positions (capacity preallocated), to compute them again.
    tokens: Vec<u32>,
    /// Which tables the cache was computed with.
    long: bool,
}

impl CpuModel {
    /// Loads `config.json` and the safetensors weights of a model folder; an int8 load
    /// goes through the on-disk cache of packed weights (quantizing and writing it the
    /// first time).
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self> {
        let config = ModelConfig::from_dir(dir)?;
        let weights = WeightFiles::open(dir)?;
        Self::with_precision(Some(dir), config, &weights, options)
    }

    /// Builds the model from an opened checkpoint; int8 is quantized in memory, as for
    /// [`Llama::from_weights`](crate::Llama::from_weights).
    pub fn from_weights(
        config: ModelConfig,
        weights: &WeightFiles,
        options: &LoadOptions,
    ) -> Result<Self> {
        Self::with_precision(None, config, weights, options)
    }

    fn with_precision(
        dir: Option<&Path>,
        config: ModelConfig,
        weights: &WeightFiles,
        options: &LoadOptions,
    ) -> Result<Self> {
        let mut model = match options.precision {
            Precision::F32 => Self::build(config, weights, None, options)?,
            Precision::F16 => {
                return Err(ModelError::InvalidArgument(
                    "f16 weights run on a burn backend (flex or cuda); the CPU engine \
                     holds f32 or int8 (int8 streams half the bytes of f16)"
                        .into(),
                ))
            }
            Precision::Int8 => {
                // The calibration runs the f32 model on burn's flex backend.
                let device = Default::default();
                let (mut quantized, outcome) =
                    int8_weights::<Flex>(dir, &config, weights, &device)?;
                let mut model = Self::build(config, weights, Some(&mut quantized), options)?;
                model.int8_cache = outcome;
                model
            }
        };
        if let Some(limit) = options.vocab_limit {
            // The special tokens (end of turn, end of text) sit past the ordinary ones:
            // a draft must still be able to propose them. From `from_weights` there is
            // no tokenizer, and only the first ids are kept.
            let special = match dir {
                Some(dir) => Tokenizer::from_dir(dir)?.added_token_ids(),
                None => Vec::new(),
            };
            let keep: Vec<u32> = (0..limit.min(model.config.vocab_size) as u32)
                .chain(special)
                .collect();
            model.limit_logits(&keep);
        }
        Ok(model)
    }

    fn build(
        config: ModelConfig,
        weights: &WeightFiles,
        mut quantized: Option<&mut QuantizedWeights>,
        options: &LoadOptions,
    ) -> Result<Self> {
        let c = &config;
        let d = c.hidden_size;
        let (capacity, num_layers) = options.resolve(c)?;
        let mut ropes: Vec<(crate::config::LayerRope, RopeTables)> = Vec::new();
        let mut layers = Vec::with_capacity(num_layers);
        for i in 0..num_layers {
            let kind = c.layers[i];
            let specs = LayerLinears::of(c, i);
            let mut linear =
                |spec: &LinearSpec| load_linear(spec, weights, quantized.as_deref_mut());
            let norms = LayerNorms::read(c, weights, i)?;
            let rope = match kind.rope {
                crate::config::LayerRope::None => None,
                rope => Some(match ropes.iter().position(|(r, _)| *r == rope) {
                    Some(index) => index,
                    None => {
                        let (cos, sin) =
                            rope::layer_half_tables(c, rope, capacity, false).expect("RoPE");
                        let half = c.rotary_dim / 2;
                        ropes.push((rope, RopeTables { cos, sin, half }));
                        ropes.len() - 1
                    }
                }),
            };
            layers.push(Layer {
                input_norm: norms.input,
                qkv: linear(&specs.qkv)?,
                q_norm: norms.q,
                k_norm: norms.k,
                out: linear(&specs.out)?,
                attention_out_norm: norms.attention_out,
                mlp_norm: norms.mlp,
                gate_up: linear(&specs.gate_up)?
                    .with_columns(&gate_up_columns(c.intermediate_size)),
                down: linear(&specs.down)?,
                mlp_out_norm: norms.mlp_out,
                window: c.layer_window(i),
                rope,
            });
        }
        let lm_head = load_linear(&linears::lm_head(c), weights, quantized)?;
        let embed = weights.read("model.embed_tokens.weight", &[c.vocab_size, d])?;
        let long_rope = c
            .longrope_switch()
            .filter(|&switch| capacity > switch)
            .map(|switch| LongRope {
                switch,
                tables: ropes
                    .iter()
                    .map(|(kind, _)| {
                        let (cos, sin) =
                            rope::layer_half_tables(c, *kind, capacity, true).expect("RoPE");
                        RopeTables {
                            cos,
                            sin,
                            half: c.rotary_dim / 2,
                        }
                    })
                    .collect(),
                tokens: Vec::with_capacity(capacity),
                long: false,
            });
        let ropes = ropes.into_iter().map(|(_, tables)| tables).collect();
        let windows: Vec<Option<usize>> = (0..num_layers).map(|i| c.layer_window(i)).collect();

        let pool = Pool::global();
        let q_dim = c.num_heads * c.head_dim;
        let max_in = d.max(q_dim).max(c.intermediate_size);
        let qkv_out = layers.first().map_or(0, |l| l.qkv.out_features());
        let scratch = Scratch {
            x: vec![0.0; CHUNK * d],
            input: vec![0.0; CHUNK * max_in],
            quantized: QuantizedBuffers::new(CHUNK, max_in),
            qkv: vec![0.0; CHUNK * qkv_out],
            attention: vec![0.0; CHUNK * q_dim],
            gate_up: vec![0.0; CHUNK * 2 * c.intermediate_size.div_ceil(TILE) * TILE],
            gated: vec![0.0; CHUNK * c.intermediate_size],
            gated_quantized: QuantizedBuffers::new(CHUNK, c.intermediate_size),
            scores: vec![0.0; pool.threads() * capacity],
            branch: vec![0.0; CHUNK * d],
            head: vec![0.0; c.head_dim],
        };
        Ok(Self {
            cache: KvCache::new(&windows, capacity, c.num_kv_heads, c.head_dim),
            precision: options.precision,
            isa: Isa::selected(),
            pool,
            embed,
            layers,
            norm: norm_weights(c, weights, "model.norm.weight", d)?,
            lm_head,
            logit_ids: None,
            subset_logits: Vec::new(),
            ropes,
            long_rope,
            scratch,
            dims: Dims::of(c),
            int8_cache: None,
            config,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Computes logits for the token ids of `keep` only (those below the vocabulary
    /// size; order and repeats do not matter) and −∞ for every other id: the LM head
    /// keeps just those columns, so each forward reads and multiplies that much less.
    /// For drafts, whose LM head over a large vocabulary is a sizeable share of their
    /// weights (Qwen2.5-0.5B: 136 M of 494 M): rejection sampling keeps the output
    /// exact whatever q is, and ids a draft never proposes only cost acceptance where
    /// the target picks them. Each kept id's logit is bit-identical to the full head's
    /// (the same column, the same reduction).
    ///
    /// # Panics
    /// If no id of `keep` is left (below the vocabulary size, and kept by an earlier
    /// limit).
    pub fn limit_logits(&mut self, keep: &[u32]) {
        let vocab = self.config.vocab_size;
        let mut ids: Vec<u32> = keep
            .iter()
            .copied()
            .filter(|&id| (id as usize) < vocab)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        // A second limit narrows the first: its head holds only the first's columns.
        if let Some(old) = &self.logit_ids {
            ids.retain(|id| old.binary_search(id).is_ok());
        }
        // With no id left every logit would be −∞ and every distribution NaN.
        assert!(
            !ids.is_empty(),
            "limit_logits keeps no id of the vocabulary"
        );
        let columns: Vec<Option<usize>> = ids
            .iter()
            .map(|&id| match &self.logit_ids {
                Some(old) => old.binary_search(&id).ok(),
                None => Some(id as usize),
            })
            .collect();
        self.lm_head = self.lm_head.with_columns(&columns);
        self.subset_logits = vec![0.0; CHUNK * ids.len()];
        self.logit_ids = Some(ids);
    }

    /// The ids [`limit_logits`](Self::limit_logits) kept, if it was called.
    pub fn logit_ids(&self) -> Option<&[u32]> {
        self.logit_ids.as_deref()
    }

    /// Precision the linear layers were loaded at.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The instruction set the kernels run on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Runs the kernels on another instruction set (tests compare paths).
    pub fn set_isa(&mut self, isa: Isa) {
        isa.assert_supported();
        self.isa = isa;
    }

    /// Threads of the pool the model runs on.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// What an int8 [`load`](Self::load) did with the on-disk cache.
    pub fn int8_cache(&self) -> Option<&CacheOutcome> {
        self.int8_cache.as_ref()
    }

    /// Cached positions.
    pub fn cached_len(&self) -> usize {
        self.cache.len()
    }

    /// KV capacity in positions.
    pub fn context_len(&self) -> usize {
        self.cache.capacity()
    }

    /// Rolls the cache back to `len` positions (O(1)).
    pub fn truncate(&mut self, len: usize) {
        self.cache.truncate(len);
    }

    pub fn reset(&mut self) {
        self.cache.reset();
    }

    pub fn kv_cache(&self) -> &KvCache {
        &self.cache
    }

    /// Bytes of weights one decode step reads: every linear layer (LM head included)
    /// and one embedding row.
    pub fn weight_bytes_per_token(&self) -> usize {
        let linears: usize = self
            .layers
            .iter()
            .map(|l| {
                l.qkv.size_bytes()
                    + l.out.size_bytes()
                    + l.gate_up.size_bytes()
                    + l.down.size_bytes()
            })
            .sum();
        let norms = 4 * self.config.hidden_size * (2 * self.layers.len() + 1);
        linears + self.lm_head.size_bytes() + norms + 4 * self.config.hidden_size
    }

    /// Runs `tokens` at positions `cached_len()..` and returns the logits of the last
    /// `rows` of them (`1 <= rows <= tokens.len()`).
    ///
    /// # Shapes
    /// - tokens: `n` ids → `[rows, vocab_size]` row-major
    pub fn forward_tail(&mut self, tokens: &[u32], rows: usize) -> Result<Vec<f32>> {
        let mut logits = Vec::new();
        self.forward_tail_into(tokens, rows, &mut logits)?;
        Ok(logits)
    }

    /// [`forward_tail`](Self::forward_tail) into `logits`, reusing its buffer (it is
    /// only resized, never cleared: every value is written).
    pub fn forward_tail_into(
        &mut self,
        tokens: &[u32],
        rows: usize,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        check_forward(
            &self.config,
            tokens,
            self.cache.len(),
            self.cache.capacity(),
        )?;
        if let Some(lost) = self.cache.lost_rollback() {
            return Err(ModelError::InvalidArgument(format!(
                "the sliding-window layers keep {} positions beyond their window, and a \
                 rollback undid {lost}: reset the model and run the sequence again",
                super::attention::ROLLBACK
            )));
        }
        let (n, vocab_size) = (tokens.len(), self.config.vocab_size);
        let rows = rows.clamp(1, n);
        let first_wanted = n - rows;
        logits.resize(rows * vocab_size, 0.0);
        let Some(switch) = self.long_rope.as_ref().map(|l| l.switch) else {
            self.forward_rows(tokens, first_wanted, logits);
            return Ok(());
        };
        // LongRoPE: the rows before the switch on the short tables, the rest on the long.
        let start = self.cache.len();
        let state = self.long_rope.as_mut().expect("checked");
        state.tokens.truncate(start);
        state.tokens.extend_from_slice(tokens);
        let short = switch.saturating_sub(start).min(n);
        let short_rows = short.saturating_sub(first_wanted);
        if short > 0 {
            self.use_long_tables(false);
            self.forward_rows(&tokens[..short], first_wanted, logits);
        }
        if short < n {
            self.use_long_tables(true);
            let rest = &mut logits[short_rows * vocab_size..];
            self.forward_rows(&tokens[short..], first_wanted.saturating_sub(short), rest);
        }
        Ok(())
    }

    /// Runs `tokens` in chunks, writing the logits of rows `first_wanted..` into
    /// `logits` (row-major, from its start).
    fn forward_rows(&mut self, tokens: &[u32], first_wanted: usize, logits: &mut [f32]) {
        let vocab_size = self.config.vocab_size;
        for (c, chunk) in tokens.chunks(CHUNK).enumerate() {
            let chunk_start = c * CHUNK;
            let wanted_from = first_wanted.max(chunk_start) - chunk_start;
            let (from, to) = (wanted_from.min(chunk.len()), chunk.len());
            let offset = (chunk_start + from).saturating_sub(first_wanted) * vocab_size;
            self.forward_chunk(chunk, from..to, &mut logits[offset..]);
        }
    }

    /// Makes the cache hold the positions computed with LongRoPE's long (or short)
    /// tables, computing them again if it holds the others.
    fn use_long_tables(&mut self, long: bool) {
        let state = self.long_rope.as_mut().expect("LongRoPE");
        if state.long == long {
            return;
        }
        state.long = long;
        let cached = self.cache.len();
        if cached == 0 {
            return;
        }
        let prefix = state.tokens[..cached].to_vec();
        self.cache.reset();
        self.forward_rows(&prefix, prefix.len(), &mut []);
    }

    /// One chunk of at most [`CHUNK`] tokens; writes the logits of chunk rows `wanted`
    /// into `logits` (row-major, from its start).
    fn forward_chunk(
        &mut self,
        tokens: &[u32],
        wanted: std::ops::Range<usize>,
        logits: &mut [f32],
    ) {
        let n = tokens.len();
        debug_assert!(n <= CHUNK);
        let dims = self.dims;
        let d = dims.hidden;
        let start = self.cache.len();
        let s = &mut self.scratch;
        for (r, &t) in tokens.iter().enumerate() {
            let t = t as usize;
            let row = &mut s.x[r * d..(r + 1) * d];
            row.copy_from_slice(&self.embed[t * d..(t + 1) * d]);
            if let Some(scale) = self.config.embedding_scale {
                row.iter_mut().for_each(|v| *v *= scale);
            }
        }
        let ropes = match &self.long_rope {
            Some(state) if state.long => &state.tables,
            _ => &self.ropes,
        };
        let run = Run {
            isa: self.isa,
            pool: self.pool,
            dims,
            ropes,
        };
        for (l, layer) in self.layers.iter().enumerate() {
            run.layer(l, layer, s, &mut self.cache, n, start);
        }
        self.cache.advance(n);
        if wanted.is_empty() {
            return;
        }
        let x = &s.x[wanted.start * d..wanted.end * d];
        let buffers = InputBuffers {
            f32: &mut s.input,
            quantized: &mut s.quantized,
        };
        let input = prepare_normed(
            run.isa,
            run.pool,
            &self.lm_head,
            x,
            &self.norm,
            dims.eps,
            wanted.len(),
            buffers,
        );
        let vocab = self.config.vocab_size;
        let cap = self.config.final_logit_softcapping.map(|c| c as f32);
        let soft_cap_all = |values: &mut [f32]| {
            if let Some(cap) = cap {
                values.iter_mut().for_each(|v| *v = soft_cap(*v, cap));
            }
        };
        match &self.logit_ids {
            None => {
                self.lm_head
                    .forward(run.pool, run.isa, input, logits, vocab, false);
                soft_cap_all(&mut logits[..wanted.len() * vocab]);
            }
            Some(ids) => {
                let kept = ids.len();
                self.lm_head.forward(
                    run.pool,
                    run.isa,
                    input,
                    &mut self.subset_logits,
                    kept,
                    false,
                );
                soft_cap_all(&mut self.subset_logits[..wanted.len() * kept]);
                for (r, row) in logits[..wanted.len() * vocab]
                    .chunks_exact_mut(vocab)
                    .enumerate()
                {
                    row.fill(f32::NEG_INFINITY);
                    for (&id, &value) in ids.iter().zip(&self.subset_logits[r * kept..]) {
                        row[id as usize] = value;
                    }
                }
            }
        }
    }
}

impl CausalLm for CpuModel {
    fn forward(&mut self, tokens: &[u32]) -> Result<Logits, DecodeModelError> {
        self.forward_last(tokens, tokens.len())
    }

    fn forward_last(&mut self, tokens: &[u32], rows: usize) -> Result<Logits, DecodeModelError> {
        let mut out = Logits::empty();
        self.forward_last_into(tokens, rows, &mut out)?;
        Ok(out)
    }

    fn forward_last_into(
        &mut self,
        tokens: &[u32],
        rows: usize,
        out: &mut Logits,
    ) -> Result<(), DecodeModelError> {
        let rows = rows.clamp(1, tokens.len().max(1));
        self.forward_tail_into(tokens, rows, &mut out.data)
            .map_err(DecodeModelError::new)?;
        out.rows = rows;
        out.vocab = self.config.vocab_size;
        Ok(())
    }

    fn cached_len(&self) -> usize {
        self.cache.len()
    }

    fn truncate(&mut self, len: usize) {
        self.cache.truncate(len)
    }

    fn reset(&mut self) {
        self.cache.reset()
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }
}
