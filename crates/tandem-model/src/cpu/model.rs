//! The decoder on the CPU engine: the Llama-family forward of
//! [`families::llama`](crate::families::llama), computed by Tandem's own kernels over
//! buffers allocated once at load.
//!
//! A forward of `n` new tokens runs in chunks of at most [`CHUNK`] rows (a prefill is
//! several chunks; decode and verify passes are one). Per layer and chunk:
//! 1. RMSNorm of each row, quantized on the fly for int8 weights;
//! 2. the fused QKV product (with bias), split over the pool by output tiles;
//! 3. RoPE in place on q and k, and k, v written into the cache;
//! 4. attention, split over the pool by query heads;
//! 5. the output projection, added into the residual stream by the kernel;
//! 6. RMSNorm, the fused gate/up product, the SiLU gate (quantized on the fly), and the
//!    down projection added into the residual stream.
//!
//! Then the final norm and the LM head for the rows whose logits are asked for. Every
//! step treats rows independently with fixed reduction orders, so each row of a pass
//! equals the same row computed alone, bit for bit, and chunking a prefill changes
//! nothing.

use std::ops::Range;
use std::path::Path;

use tandem_decode::{CausalLm, Logits, ModelError as DecodeModelError};

use super::attention::{attend, KvCache};
use super::isa::Isa;
use super::kernels::SharedQuantizedRows;
use super::kernels::{
    f32_matmul, int8_matmul, Epilogue, F32Rows, OutRows, PackedF32, QuantizedBuffers, QuantizedRows,
};
use super::ops::{
    quantize_row, rms_norm, rms_norm_quantized, rope_in_place, silu_mul, silu_mul_quantize_block,
};
use super::pool::{share, Pool};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::families::linears::{self, LayerLinears, LinearSpec};
use crate::families::llama::{LoadOptions, DEFAULT_CONTEXT};
use crate::families::rope;
use crate::formats::int8_cache::{self, CacheOutcome, QuantizedWeights};
use crate::formats::safetensors::WeightFiles;
use crate::quant::calibration::{self, CalibrationTokens};
use crate::quant::packed::PackedInt8;
use crate::quant::packed::TILE;
use crate::quant::Precision;
use crate::Flex;

/// Rows per chunk of a forward: a verify pass (γ + 1 ≤ 32) is one chunk.
pub const CHUNK: usize = 32;

/// The weight of a linear layer, in the precision it was loaded at.
enum Weight {
    F32(PackedF32),
    Int8(PackedInt8),
}

/// A linear layer: packed weight and optional f32 bias.
struct Linear {
    weight: Weight,
    bias: Option<Vec<f32>>,
}

impl Linear {
    fn in_features(&self) -> usize {
        match &self.weight {
            Weight::F32(w) => w.in_features,
            Weight::Int8(w) => w.in_features,
        }
    }

    fn out_features(&self) -> usize {
        match &self.weight {
            Weight::F32(w) => w.out_features,
            Weight::Int8(w) => w.out_features,
        }
    }

    fn size_bytes(&self) -> usize {
        let bias = self.bias.as_ref().map_or(0, |b| 4 * b.len());
        bias + match &self.weight {
            Weight::F32(w) => w.size_bytes(),
            Weight::Int8(w) => w.size_bytes(),
        }
    }

    /// The product for the columns of `tiles`, on the calling thread.
    fn matmul(
        &self,
        isa: Isa,
        input: &Input<'_>,
        tiles: Range<usize>,
        target: &OutRows,
        epilogue: &Epilogue,
    ) {
        match (&self.weight, input) {
            (Weight::Int8(w), Input::Int8(x)) => int8_matmul(isa, x, w, tiles, target, epilogue),
            (Weight::F32(w), Input::F32(x)) => f32_matmul(isa, x, w, tiles, target, epilogue),
            _ => unreachable!("the input is prepared for the weight's precision"),
        }
    }

    /// The same layer with its columns gathered (see [`PackedInt8::with_columns`]).
    fn with_columns(self, columns: &[Option<usize>]) -> Linear {
        assert!(self.bias.is_none(), "gathered layers have no bias");
        let weight = match &self.weight {
            Weight::F32(w) => Weight::F32(w.with_columns(columns)),
            Weight::Int8(w) => Weight::Int8(w.with_columns(columns)),
        };
        Linear { weight, bias: None }
    }

    /// `out (+)= input · W + bias` for `rows` rows, split over the pool by tiles.
    fn forward(
        &self,
        pool: &Pool,
        isa: Isa,
        input: Input<'_>,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        let rows = input.rows();
        let target = OutRows::new(out, rows, out_stride, self.out_features());
        let epilogue = Epilogue {
            bias: self.bias.as_deref(),
            accumulate,
        };
        let parts = pool.threads();
        let tiles = self.out_features().div_ceil(TILE);
        pool.run(&|part| {
            let range = share(tiles, part, parts);
            if !range.is_empty() {
                self.matmul(isa, &input, range, &target, &epilogue);
            }
        });
    }
}

/// Activation rows as a linear layer reads them.
#[derive(Clone, Copy)]
enum Input<'a> {
    F32(F32Rows<'a>),
    Int8(QuantizedRows<'a>),
}

impl Input<'_> {
    fn rows(&self) -> usize {
        match self {
            Input::F32(x) => x.rows,
            Input::Int8(x) => x.rows,
        }
    }
}

struct Layer {
    input_norm: Vec<f32>,
    qkv: Linear,
    out: Linear,
    post_attention_norm: Vec<f32>,
    /// Gate and up columns interleaved a tile at a time (see [`gate_up_columns`]).
    gate_up: Linear,
    down: Linear,
}

/// The column order of the fused gate/up layer on the CPU engine: for each block `j` of
/// 16 intermediate channels, their 16 gate columns, then their 16 up columns (padded
/// with zero columns when the size is not a multiple of 16). A thread that computes a
/// tile pair holds both halves of `silu(gate) · up` for those 16 channels and applies
/// the gate, and quantizes the result for the down projection, while it is in cache.
fn gate_up_columns(intermediate: usize) -> Vec<Option<usize>> {
    let mut columns = Vec::with_capacity(2 * intermediate.div_ceil(TILE) * TILE);
    for start in (0..intermediate).step_by(TILE) {
        for half in [0, intermediate] {
            columns
                .extend((0..TILE).map(|l| (start + l < intermediate).then_some(half + start + l)));
        }
    }
    columns
}

/// Receives `(row, block, gate, up)`: 16 channels of one row of the gate/up product.
type GateBlock<'a> = &'a mut dyn FnMut(usize, usize, &[f32], &[f32]);

/// Tile pairs of the gate/up product per kernel call: the gate's epilogue reads them
/// back from cache.
const GATE_PAIRS_PER_CALL: usize = 4;

/// Buffers of one chunk, allocated at load so a forward allocates nothing but the
/// logits it returns.
struct Scratch {
    /// Residual stream, `[CHUNK, hidden]`.
    x: Vec<f32>,
    /// f32 input of the next linear layer, `[CHUNK, in_features]` (f32 models).
    input: Vec<f32>,
    /// Quantized input of the next linear layer (int8 models).
    quantized: QuantizedBuffers,
    qkv: Vec<f32>,
    attention: Vec<f32>,
    /// Gate/up output, `[CHUNK, 2 · intermediate]` (interleaved by tiles, padded).
    gate_up: Vec<f32>,
    /// `silu(gate) · up`, the down projection's input: f32 `[CHUNK, intermediate]`, or
    /// quantized.
    gated: Vec<f32>,
    gated_quantized: QuantizedBuffers,
    /// Attention scores, one `[capacity]` row per pool thread.
    scores: Vec<f32>,
}

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
    /// `[capacity, head_dim / 2]` each: the rotation angles of every position.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    cache: KvCache,
    scratch: Scratch,
    dims: Dims,
    int8_cache: Option<CacheOutcome>,
}

impl CpuModel {
    /// Loads `config.json` and the safetensors weights of a model folder; an int8 load
    /// goes through the on-disk cache of packed weights (quantizing and writing it the
    /// first time).
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self> {
        let config = ModelConfig::from_dir(dir)?;
        let weights = WeightFiles::open(dir)?;
        match options.precision {
            Precision::F32 => Self::build(config, &weights, None, options),
            Precision::Int8 => {
                let specs = linears::all(&config);
                let calibrate = || {
                    let tokens = CalibrationTokens::for_model(Some(dir), &config);
                    calibration::measure::<Flex>(&config, &weights, &tokens, &Default::default())
                };
                let (mut quantized, outcome) =
                    int8_cache::load_or_quantize(dir, &weights, &specs, calibrate)?;
                let mut model = Self::build(config, &weights, Some(&mut quantized), options)?;
                model.int8_cache = Some(outcome);
                Ok(model)
            }
        }
    }

    /// Builds the model from an opened checkpoint; int8 is quantized in memory,
    /// calibrated on synthetic ids (as [`Llama::from_weights`](crate::Llama::from_weights)).
    pub fn from_weights(
        config: ModelConfig,
        weights: &WeightFiles,
        options: &LoadOptions,
    ) -> Result<Self> {
        match options.precision {
            Precision::F32 => Self::build(config, weights, None, options),
            Precision::Int8 => {
                let specs = linears::all(&config);
                let tokens = CalibrationTokens::for_model(None, &config);
                let importance =
                    calibration::measure::<Flex>(&config, weights, &tokens, &Default::default())?;
                let mut quantized = QuantizedWeights::quantize(weights, &specs, &importance)?;
                Self::build(config, weights, Some(&mut quantized), options)
            }
        }
    }

    fn build(
        config: ModelConfig,
        weights: &WeightFiles,
        mut quantized: Option<&mut QuantizedWeights>,
        options: &LoadOptions,
    ) -> Result<Self> {
        let c = &config;
        let d = c.hidden_size;
        let capacity = options
            .context_len
            .unwrap_or(DEFAULT_CONTEXT)
            .min(c.max_position_embeddings);
        if capacity == 0 {
            return Err(ModelError::InvalidArgument(
                "context length must be positive".into(),
            ));
        }
        let num_layers = match options.layer_limit {
            Some(0) => {
                return Err(ModelError::InvalidArgument(
                    "layer limit must be positive".into(),
                ))
            }
            Some(limit) => limit.min(c.num_layers),
            None => c.num_layers,
        };
        let norm = |name: &str| weights.read(name, &[d]);
        let mut layers = Vec::with_capacity(num_layers);
        for i in 0..num_layers {
            let p = format!("model.layers.{i}");
            let specs = LayerLinears::of(c, i);
            let mut linear =
                |spec: &LinearSpec| load_linear(spec, weights, quantized.as_deref_mut());
            layers.push(Layer {
                input_norm: norm(&format!("{p}.input_layernorm.weight"))?,
                qkv: linear(&specs.qkv)?,
                out: linear(&specs.out)?,
                post_attention_norm: norm(&format!("{p}.post_attention_layernorm.weight"))?,
                gate_up: linear(&specs.gate_up)?
                    .with_columns(&gate_up_columns(c.intermediate_size)),
                down: linear(&specs.down)?,
            });
        }
        let lm_head = load_linear(&linears::lm_head(c), weights, quantized)?;
        let embed = weights.read("model.embed_tokens.weight", &[c.vocab_size, d])?;
        let (rope_cos, rope_sin) = rope_half_tables(c, capacity);

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
        };
        Ok(Self {
            cache: KvCache::new(num_layers, capacity, c.num_kv_heads, c.head_dim),
            precision: options.precision,
            isa: Isa::selected(),
            pool,
            embed,
            layers,
            norm: norm("model.norm.weight")?,
            lm_head,
            rope_cos,
            rope_sin,
            scratch,
            dims: Dims::of(c),
            int8_cache: None,
            config,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
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
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::InvalidArgument(
                "forward needs at least one token".into(),
            ));
        }
        let vocab_size = self.config.vocab_size;
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(ModelError::TokenOutOfRange { token, vocab_size });
        }
        let start = self.cache.len();
        if start + n > self.cache.capacity() {
            return Err(ModelError::ContextOverflow {
                needed: start + n,
                capacity: self.cache.capacity(),
            });
        }
        let rows = rows.clamp(1, n);
        let first_wanted = n - rows;
        logits.resize(rows * vocab_size, 0.0);
        for (c, chunk) in tokens.chunks(CHUNK).enumerate() {
            let chunk_start = c * CHUNK;
            let wanted_from = first_wanted.max(chunk_start) - chunk_start;
            let (from, to) = (wanted_from.min(chunk.len()), chunk.len());
            let offset = (chunk_start + from).saturating_sub(first_wanted) * vocab_size;
            self.forward_chunk(chunk, from..to, &mut logits[offset..]);
        }
        Ok(())
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
            s.x[r * d..(r + 1) * d].copy_from_slice(&self.embed[t * d..(t + 1) * d]);
        }
        let run = Run {
            isa: self.isa,
            pool: self.pool,
            dims,
            rope_cos: &self.rope_cos,
            rope_sin: &self.rope_sin,
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
        self.lm_head
            .forward(run.pool, run.isa, input, logits, vocab, false);
    }
}

/// The shapes a forward needs, copied out of the config.
#[derive(Clone, Copy)]
struct Dims {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    intermediate: usize,
    eps: f32,
    window: Option<usize>,
}

impl Dims {
    fn of(c: &ModelConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
            intermediate: c.intermediate_size,
            eps: c.rms_norm_eps as f32,
            window: c.sliding_window,
        }
    }
}

/// What every layer of one forward shares.
struct Run<'a> {
    isa: Isa,
    pool: &'a Pool,
    dims: Dims,
    rope_cos: &'a [f32],
    rope_sin: &'a [f32],
}

impl Run<'_> {
    /// Decoder layer `l` over the chunk's `n` rows at positions `start..start + n`.
    fn layer(
        &self,
        l: usize,
        layer: &Layer,
        s: &mut Scratch,
        cache: &mut KvCache,
        n: usize,
        start: usize,
    ) {
        let (isa, pool, dims) = (self.isa, self.pool, self.dims);
        let (d, hd) = (dims.hidden, dims.head_dim);
        let (q_dim, kv_dim) = (dims.heads * hd, dims.kv_heads * hd);

        // Attention block.
        let buffers = InputBuffers {
            f32: &mut s.input,
            quantized: &mut s.quantized,
        };
        let input = prepare_normed(
            isa,
            pool,
            &layer.qkv,
            &s.x[..n * d],
            &layer.input_norm,
            dims.eps,
            n,
            buffers,
        );
        let qkv_out = layer.qkv.out_features();
        layer
            .qkv
            .forward(pool, isa, input, &mut s.qkv, qkv_out, false);
        let half = hd / 2;
        for r in 0..n {
            let pos = start + r;
            let row = &mut s.qkv[r * qkv_out..(r + 1) * qkv_out];
            let (cos, sin) = (
                &self.rope_cos[pos * half..][..half],
                &self.rope_sin[pos * half..][..half],
            );
            let (q, kv) = row.split_at_mut(q_dim);
            rope_in_place(q, hd, cos, sin);
            let (k, v) = kv.split_at_mut(kv_dim);
            rope_in_place(k, hd, cos, sin);
            cache.write(l, pos, k, &v[..kv_dim]);
        }
        self.attention(l, cache, s, qkv_out, n, start);
        let input = match layer.out.weight {
            Weight::F32(_) => Input::F32(F32Rows {
                x: &s.attention,
                rows: n,
                stride: q_dim,
            }),
            Weight::Int8(_) => quantize_rows(isa, pool, &s.attention, q_dim, n, &mut s.quantized),
        };
        layer.out.forward(pool, isa, input, &mut s.x, d, true);

        // MLP block.
        let buffers = InputBuffers {
            f32: &mut s.input,
            quantized: &mut s.quantized,
        };
        let input = prepare_normed(
            isa,
            pool,
            &layer.gate_up,
            &s.x[..n * d],
            &layer.post_attention_norm,
            dims.eps,
            n,
            buffers,
        );
        let input = self.gated_mlp(
            layer,
            input,
            n,
            &mut s.gate_up,
            &mut s.gated,
            &mut s.gated_quantized,
        );
        layer.down.forward(pool, isa, input, &mut s.x, d, true);
    }

    /// The gate/up product and the SiLU gate, fused: each thread computes its tile pairs
    /// (a gate tile and its up tile, see [`gate_up_columns`]) and turns them into the
    /// down projection's input (quantized for int8) while they are in cache.
    fn gated_mlp<'s>(
        &self,
        layer: &Layer,
        input: Input<'_>,
        n: usize,
        gate_up: &mut [f32],
        gated: &'s mut [f32],
        gated_quantized: &'s mut QuantizedBuffers,
    ) -> Input<'s> {
        let (isa, pool) = (self.isa, self.pool);
        let inter = self.dims.intermediate;
        let width = layer.gate_up.out_features();
        let pairs = width / (2 * TILE);
        let target = OutRows::new(gate_up, n, width, width);
        let epilogue = Epilogue::default();
        let parts = pool.threads();
        // The pairs of a call, and for each row and pair the gate and up values.
        let each_pair = |part: usize, mut gate: GateBlock<'_>| {
            let mine = share(pairs, part, parts);
            for start in mine.clone().step_by(GATE_PAIRS_PER_CALL) {
                let end = (start + GATE_PAIRS_PER_CALL).min(mine.end);
                layer
                    .gate_up
                    .matmul(isa, &input, 2 * start..2 * end, &target, &epilogue);
                for r in 0..n {
                    for j in start..end {
                        // SAFETY: this thread's own columns, just written.
                        let row = unsafe { target.read(r, 2 * TILE * j..2 * TILE * (j + 1)) };
                        let w = TILE.min(inter - TILE * j);
                        gate(r, j, &row[..w], &row[TILE..TILE + w]);
                    }
                }
            }
            let _ = &mut gate;
        };
        match layer.down.weight {
            Weight::F32(_) => {
                let out = SharedRows::new(&mut gated[..n * inter]);
                pool.run(&|part| {
                    each_pair(part, &mut |r, j, g, u| {
                        // SAFETY: block j of row r belongs to this thread's pairs.
                        let o = unsafe { out.slice(r * inter + TILE * j, g.len()) };
                        silu_mul(isa, g, u, o);
                    })
                });
                Input::F32(F32Rows {
                    x: gated,
                    rows: n,
                    stride: inter,
                })
            }
            Weight::Int8(_) => {
                let sink = SharedQuantizedRows::new(gated_quantized.rows(n, inter));
                pool.run(&|part| {
                    each_pair(part, &mut |r, j, g, u| {
                        let (mut hi, mut lo) = ([0i8; 16], [0i8; 16]);
                        let scale = silu_mul_quantize_block(isa, g, u, &mut hi, &mut lo);
                        // SAFETY: block j of row r belongs to this thread's pairs.
                        unsafe { sink.put(r, j, &hi, &lo, scale) };
                    })
                });
                Input::Int8(sink.into_rows())
            }
        }
    }

    /// Attention of the chunk's rows over the cache of layer `l`, split by query head.
    fn attention(
        &self,
        l: usize,
        cache: &KvCache,
        s: &mut Scratch,
        qkv_out: usize,
        n: usize,
        start: usize,
    ) {
        let dims = self.dims;
        let (heads, hd) = (dims.heads, dims.head_dim);
        let group = heads / dims.kv_heads;
        let q_dim = heads * hd;
        let scale = 1.0 / (hd as f32).sqrt();
        let isa = self.isa;
        let capacity = cache.capacity();
        let qkv = &s.qkv;
        let out = SharedRows::new(&mut s.attention);
        let scores = SharedRows::new(&mut s.scores);
        let parts = self.pool.threads();
        self.pool.run(&|part| {
            // SAFETY: each part has its own scores row.
            let scores = unsafe { scores.slice(part * capacity, capacity) };
            for h in share(heads, part, parts) {
                for r in 0..n {
                    let pos = start + r;
                    let first = dims.window.map_or(0, |w| (pos + 1).saturating_sub(w));
                    let (keys, values) = cache.head(l, h / group, pos + 1);
                    let q = &qkv[r * qkv_out + h * hd..][..hd];
                    // SAFETY: (row, head) pairs are disjoint across parts.
                    let o = unsafe { out.slice(r * q_dim + h * hd, hd) };
                    attend(isa, q, keys, values, first, scale, scores, o);
                }
            }
        });
    }
}

/// Quantizes `rows` rows of `x` (`k` wide) for an int8 layer, the rows split over the
/// pool.
fn quantize_rows<'a>(
    isa: Isa,
    pool: &Pool,
    x: &[f32],
    k: usize,
    rows: usize,
    buffers: &'a mut QuantizedBuffers,
) -> Input<'a> {
    let out = SharedQuantizedRows::new(buffers.rows(rows, k));
    each_row(pool, rows, &|r| {
        // SAFETY: each row is quantized by one part.
        quantize_row(isa, &x[r * k..(r + 1) * k], &mut |b, h, l, s| unsafe {
            out.put(r, b, h, l, s)
        });
    });
    Input::Int8(out.into_rows())
}

/// Runs `f(row)` for every row, split over the pool when there are several (a row alone
/// is too little work to share).
fn each_row(pool: &Pool, rows: usize, f: &(dyn Fn(usize) + Sync)) {
    if rows == 1 {
        return f(0);
    }
    let parts = pool.threads();
    pool.run(&|part| share(rows, part, parts).for_each(f));
}

/// Mutable rows several pool parts write, each its own disjoint ranges.
struct SharedRows {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: parts only take disjoint ranges (the callers' split guarantees it).
unsafe impl Sync for SharedRows {}

impl SharedRows {
    fn new(values: &mut [f32]) -> Self {
        Self {
            ptr: values.as_mut_ptr(),
            len: values.len(),
        }
    }

    /// # Safety
    /// No other live slice overlaps `offset..offset + len`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, offset: usize, len: usize) -> &mut [f32] {
        assert!(offset + len <= self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(offset), len)
    }
}

/// The buffers a linear layer's input is prepared in.
struct InputBuffers<'a> {
    f32: &'a mut [f32],
    quantized: &'a mut QuantizedBuffers,
}

/// RMSNorm of `rows` rows of `x` as the input of `linear`: f32, or quantized on the fly
/// for int8 weights; the rows split over the pool.
#[allow(clippy::too_many_arguments)]
fn prepare_normed<'a>(
    isa: Isa,
    pool: &Pool,
    linear: &Linear,
    x: &[f32],
    gamma: &[f32],
    eps: f32,
    rows: usize,
    buffers: InputBuffers<'a>,
) -> Input<'a> {
    let k = linear.in_features();
    match linear.weight {
        Weight::F32(_) => {
            let out = SharedRows::new(&mut buffers.f32[..rows * k]);
            each_row(pool, rows, &|r| {
                // SAFETY: each row is normalized by one part.
                let o = unsafe { out.slice(r * k, k) };
                rms_norm(isa, &x[r * k..(r + 1) * k], gamma, eps, o);
            });
            Input::F32(F32Rows {
                x: buffers.f32,
                rows,
                stride: k,
            })
        }
        Weight::Int8(_) => {
            let out = SharedQuantizedRows::new(buffers.quantized.rows(rows, k));
            each_row(pool, rows, &|r| {
                let x = &x[r * k..(r + 1) * k];
                // SAFETY: each row is quantized by one part.
                rms_norm_quantized(isa, x, gamma, eps, &mut |b, h, l, s| unsafe {
                    out.put(r, b, h, l, s)
                });
            });
            Input::Int8(out.into_rows())
        }
    }
}

/// One linear layer: packed int8 from `quantized`, else HF `[out, in]` parts packed as
/// f32. The bias, if any, is f32.
fn load_linear(
    spec: &LinearSpec,
    weights: &WeightFiles,
    quantized: Option<&mut QuantizedWeights>,
) -> Result<Linear> {
    let weight = match quantized {
        Some(quantized) => Weight::Int8(quantized.take(spec)?),
        None => {
            let parts = spec
                .parts
                .iter()
                .map(|(name, out)| {
                    Ok((
                        weights.read(&format!("{name}.weight"), &[*out, spec.in_features])?,
                        *out,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let slices: Vec<(&[f32], usize)> =
                parts.iter().map(|(v, out)| (v.as_slice(), *out)).collect();
            Weight::F32(PackedF32::from_parts(&slices, spec.in_features))
        }
    };
    Ok(Linear {
        weight,
        bias: spec.read_bias(weights)?,
    })
}

/// cos and sin of every position's angles, `[capacity, head_dim / 2]` each (the
/// rotate-half tables repeat them in both halves; in-place RoPE needs one).
fn rope_half_tables(c: &ModelConfig, capacity: usize) -> (Vec<f32>, Vec<f32>) {
    let inv_freq = rope::inverse_frequencies(c.head_dim, c.rope_theta, &c.rope_scaling);
    let (cos, sin) = rope::cos_sin_tables(&inv_freq, capacity);
    let half = c.head_dim / 2;
    let first_half = |t: Vec<f32>| -> Vec<f32> {
        t.chunks_exact(c.head_dim)
            .flat_map(|row| row[..half].to_vec())
            .collect()
    };
    (first_half(cos), first_half(sin))
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
