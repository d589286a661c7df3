//! The Llama-family decoder, config → module, as candle-transformers' `llama.rs` does:
//! Llama, Qwen2 (QKV bias), Mistral (sliding window), and the families that only add
//! switches to the same layer (see [`crate::config`]): Qwen3 and Gemma 3 (q/k norms),
//! Gemma 1/2/3 (norms by 1 + w, scaled embeddings, tanh GELU; Gemma 2/3: sandwich
//! norms, sliding layers, soft-capping), Phi-3 (partial LongRoPE) and SmolLM3 (NoPE
//! layers).
//!
//! Every forward reads and extends the KV cache; logits come back for every new position
//! so a speculative verifier can score γ drafts in one pass.

use std::path::Path;

use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::backends::TandemBackend;
use crate::config::{Activation, LayerRope, ModelConfig};
use crate::error::{ModelError, Result};
use crate::families::kv_cache::KvCache;
use crate::families::layers::{tensor1, tensor2, tensor2_f16, Linear, LinearWeight, RmsNorm};
use crate::families::linears::{self, LayerLinears, LinearSpec};
use crate::families::norms::{norm_weights, LayerNorms};
use crate::families::rope;
use crate::formats::int8_cache::{self, CacheOutcome, QuantizedWeights};
use crate::formats::safetensors::WeightFiles;
use crate::quant::calibration::{self, CalibrationTokens};
use crate::quant::Precision;

/// Default KV capacity when the caller does not choose one: enough for long chats
/// without preallocating a 32k-position cache for every model.
pub const DEFAULT_CONTEXT: usize = 4096;

/// How a model is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// KV cache capacity in positions; `None` = min(max_position_embeddings, 4096).
    pub context_len: Option<usize>,
    /// Use only the first `n` decoder layers: a cheap, deliberately weaker draft of the
    /// same model (tests and experiments). `None` = all layers.
    pub layer_limit: Option<usize>,
    /// Precision of the linear layers (LM head included). With `Int8`, [`Llama::load`]
    /// reads the quantized weights from the on-disk cache beside the model, or quantizes
    /// and writes it (see [`int8_cache`]).
    pub precision: Precision,
    /// Logits for the first `n` token ids and the tokenizer's added (special) tokens
    /// only, −∞ for every other id: a cheaper draft, whose LM head shrinks to those
    /// columns (see [`CpuModel::limit_logits`](crate::cpu::CpuModel::limit_logits)).
    /// Byte-level BPE vocabularies number tokens in merge order, so the first ids are
    /// the common ones. CPU engine only. `None` = the whole vocabulary.
    pub vocab_limit: Option<usize>,
}

struct Attention<B: TandemBackend> {
    /// Q, K and V projections fused into one `[d, (heads + 2 kv_heads) head_dim]` matmul.
    qkv: Linear<B>,
    out: Linear<B>,
}

struct Mlp<B: TandemBackend> {
    /// Gate and up projections fused into one `[d, 2 intermediate]` matmul.
    gate_up: Linear<B>,
    down: Linear<B>,
    activation: Activation,
}

pub(crate) struct DecoderLayer<B: TandemBackend> {
    input_norm: RmsNorm<B>,
    attention: Attention<B>,
    /// Per-head norms of queries and keys (Qwen3, Gemma 3).
    q_norm: Option<RmsNorm<B>>,
    k_norm: Option<RmsNorm<B>>,
    /// Norm of the attention output before the residual add (Gemma 2/3).
    attention_out_norm: Option<RmsNorm<B>>,
    /// The MLP's input norm (`post_attention_layernorm`; Gemma 2/3's
    /// `pre_feedforward_layernorm`).
    mlp_norm: RmsNorm<B>,
    mlp: Mlp<B>,
    /// Norm of the MLP output before the residual add (Gemma 2/3).
    mlp_out_norm: Option<RmsNorm<B>>,
    /// The attention window of a sliding layer.
    pub(crate) window: Option<usize>,
    pub(crate) rope: LayerRope,
}

/// The linear layers of a decoder layer, as a probe of their inputs names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinearSite {
    Qkv,
    Out,
    GateUp,
    Down,
}

/// Sees the input of each linear layer of a decoder layer during a forward (calibration
/// records them; decoding passes [`no_probe`]).
pub(crate) type Probe<'a, B> = &'a mut dyn FnMut(LinearSite, &Tensor<B, 2>);

/// A probe that does nothing.
pub(crate) fn no_probe<B: TandemBackend>(_: LinearSite, _: &Tensor<B, 2>) {}

/// A loaded decoder with its KV cache.
pub struct Llama<B: TandemBackend> {
    config: ModelConfig,
    embed: Tensor<B, 2>,
    layers: Vec<DecoderLayer<B>>,
    norm: RmsNorm<B>,
    lm_head: Linear<B>,
    ropes: RopeSet<B>,
    /// LongRoPE (see [`ModelConfig::longrope_switch`]): the ids of the cached positions,
    /// to compute them again with the other tables, and whether the cache holds the
    /// long ones.
    cached_tokens: Vec<u32>,
    long: bool,
    cache: KvCache<B>,
    device: B::Device,
    precision: Precision,
    /// What an int8 load did with the on-disk cache; `None` for f32 or `from_weights`.
    int8_cache: Option<CacheOutcome>,
}

impl LoadOptions {
    /// The KV capacity and the number of decoder layers to load for `config`.
    pub(crate) fn resolve(&self, c: &ModelConfig) -> Result<(usize, usize)> {
        let capacity = self
            .context_len
            .unwrap_or(DEFAULT_CONTEXT)
            .min(c.max_position_embeddings);
        if capacity == 0 {
            return Err(ModelError::InvalidArgument(
                "context length must be positive".into(),
            ));
        }
        if self.vocab_limit == Some(0) {
            return Err(ModelError::InvalidArgument(
                "vocabulary limit must be positive".into(),
            ));
        }
        let layers = match self.layer_limit {
            Some(0) => {
                return Err(ModelError::InvalidArgument(
                    "layer limit must be positive".into(),
                ))
            }
            Some(limit) => limit.min(c.num_layers),
            None => c.num_layers,
        };
        Ok((capacity, layers))
    }
}

/// The int8 weights of every linear of a checkpoint. With `dir` (a model folder) they
/// come from the on-disk cache beside it, or are quantized (calibrated on the built-in
/// text in the model's tokenizer) and the cache written; without, they are quantized in
/// memory, calibrated on synthetic ids (there is no tokenizer without a folder). The
/// calibration runs the f32 model on backend `B`.
pub(crate) fn int8_weights<B: TandemBackend>(
    dir: Option<&Path>,
    config: &ModelConfig,
    weights: &WeightFiles,
    device: &B::Device,
) -> Result<(QuantizedWeights, Option<CacheOutcome>)> {
    let specs = linears::all(config);
    let calibrate = || {
        let tokens = CalibrationTokens::for_model(dir, config);
        calibration::measure::<B>(config, weights, &tokens, device)
    };
    match dir {
        Some(dir) => {
            let (quantized, outcome) =
                int8_cache::load_or_quantize(dir, weights, &specs, calibrate)?;
            Ok((quantized, Some(outcome)))
        }
        None => Ok((
            QuantizedWeights::quantize(weights, &specs, &calibrate()?)?,
            None,
        )),
    }
}

impl<B: TandemBackend> Llama<B> {
    /// Loads `config.json` and the safetensors weights of a model folder. An int8 load
    /// goes through the on-disk cache of quantized weights.
    pub fn load(dir: &Path, options: &LoadOptions, device: &B::Device) -> Result<Self> {
        let config = ModelConfig::from_dir(dir)?;
        let weights = WeightFiles::open(dir)?;
        Self::with_precision(Some(dir), config, &weights, options, device)
    }

    /// Builds the model from an opened checkpoint, checking every tensor's shape. Int8
    /// is quantized in memory here (see [`int8_weights`]); only [`load`](Self::load)
    /// uses the disk cache.
    pub fn from_weights(
        config: ModelConfig,
        weights: &WeightFiles,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        Self::with_precision(None, config, weights, options, device)
    }

    fn with_precision(
        dir: Option<&Path>,
        config: ModelConfig,
        weights: &WeightFiles,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        if options.vocab_limit.is_some() {
            return Err(ModelError::InvalidArgument(
                "a vocabulary limit needs the CPU engine (backend cpu)".into(),
            ));
        }
        match options.precision {
            Precision::F32 | Precision::F16 => Self::build(config, weights, None, options, device),
            Precision::Int8 => {
                let (mut quantized, outcome) = int8_weights::<B>(dir, &config, weights, device)?;
                let mut model =
                    Self::build(config, weights, Some(&mut quantized), options, device)?;
                model.int8_cache = outcome;
                Ok(model)
            }
        }
    }

    /// Builds the model; linears come from `quantized` when given, else from the
    /// checkpoint at `options.precision` (f32 or f16). Norms, embeddings and biases are
    /// always f32 from the checkpoint.
    fn build(
        config: ModelConfig,
        weights: &WeightFiles,
        mut quantized: Option<&mut QuantizedWeights>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let c = &config;
        let d = c.hidden_size;
        let (capacity, num_layers) = options.resolve(c)?;
        let half = options.precision == Precision::F16;

        let mut layers = Vec::with_capacity(num_layers);
        for i in 0..num_layers {
            layers.push(DecoderLayer::load(
                c,
                i,
                weights,
                quantized.as_deref_mut(),
                half,
                device,
            )?);
        }
        // Tied embeddings: the head is its own (transposed, maybe quantized or halved)
        // copy and the embedding table stays f32.
        let lm_head = load_linear(&linears::lm_head(c), weights, quantized, half, device)?;
        let embed = tensor2(
            weights.read("model.embed_tokens.weight", &[c.vocab_size, d])?,
            c.vocab_size,
            d,
            device,
        );

        Ok(Self {
            embed,
            layers,
            norm: load_norm(c, weights, "model.norm.weight", device)?,
            lm_head,
            ropes: RopeSet::new(c, capacity, device),
            cached_tokens: Vec::new(),
            long: false,
            cache: KvCache::new(num_layers, capacity, c.num_kv_heads, c.head_dim, device),
            device: device.clone(),
            precision: options.precision,
            int8_cache: None,
            config,
        })
    }

    /// Precision the linear layers were loaded at.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// What an int8 [`load`](Self::load) did with the on-disk cache (loaded, or
    /// quantized and written, and why); `None` for f32 models.
    pub fn int8_cache(&self) -> Option<&CacheOutcome> {
        self.int8_cache.as_ref()
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Number of cached positions.
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

    /// Empties the cache.
    pub fn reset(&mut self) {
        self.cache.reset();
    }

    pub fn kv_cache(&self) -> &KvCache<B> {
        &self.cache
    }

    /// Runs `tokens` at positions `cached_len()..` and returns their logits.
    ///
    /// # Shapes
    /// - tokens: `n` ids → `[n, vocab_size]`
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Tensor<B, 2>> {
        let x = self.forward_hidden(tokens)?;
        Ok(self.logits(x))
    }

    /// The final norm, the LM head and any soft-capping.
    fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let logits = self.lm_head.forward(self.norm.forward(x));
        match self.config.final_logit_softcapping {
            Some(cap) => soft_cap(logits, cap),
            None => logits,
        }
    }

    /// Like [`forward`](Self::forward) but computes logits for the last `rows` positions
    /// only: a prefill needs one row, a verify pass γ + 1, and the LM head is the
    /// largest matmul of a small model.
    ///
    /// # Shapes
    /// - tokens: `n` ids → `[min(rows, n), vocab_size]`
    pub fn forward_tail(&mut self, tokens: &[u32], rows: usize) -> Result<Tensor<B, 2>> {
        let x = self.forward_hidden(tokens)?;
        let n = tokens.len();
        let first = n - rows.clamp(1, n);
        Ok(self.logits(x.slice([first..n])))
    }

    /// Validates the input, then runs the decoder layers and extends the cache.
    fn forward_hidden(&mut self, tokens: &[u32]) -> Result<Tensor<B, 2>> {
        let start = self.cache.len();
        check_forward(&self.config, tokens, start, self.cache.capacity())?;
        let Some(switch) = self.config.longrope_switch() else {
            return Ok(self.run_layers(tokens));
        };
        // LongRoPE: a sequence past the switch runs on the long tables at every
        // position, as transformers' generate() re-runs it; the rows before the switch
        // on the short ones.
        self.cached_tokens.truncate(start);
        self.cached_tokens.extend_from_slice(tokens);
        let n = tokens.len();
        let short = switch.saturating_sub(start).min(n);
        let mut parts = Vec::new();
        if short > 0 {
            self.use_long_tables(false);
            parts.push(self.run_layers(&tokens[..short]));
        }
        if short < n {
            self.use_long_tables(true);
            parts.push(self.run_layers(&tokens[short..]));
        }
        Ok(Tensor::cat(parts, 0))
    }

    /// Makes the cache hold positions computed on LongRoPE's long (or short) tables,
    /// computing them again if it holds the others.
    fn use_long_tables(&mut self, long: bool) {
        if self.long == long {
            return;
        }
        self.long = long;
        let cached = self.cache.len();
        if cached > 0 {
            let prefix = self.cached_tokens[..cached].to_vec();
            self.cache.reset();
            self.run_layers(&prefix);
        }
    }

    /// Runs the decoder layers over `tokens` at positions `cached_len()..` and extends
    /// the cache.
    fn run_layers(&mut self, tokens: &[u32]) -> Tensor<B, 2> {
        let start = self.cache.len();
        let n = tokens.len();
        let ids = Tensor::<B, 1, Int>::from_data(
            TensorData::new(tokens.iter().map(|&t| t as i64).collect::<Vec<_>>(), [n]),
            &self.device,
        );
        let mut x = embed(&self.config, self.embed.clone().select(0, ids));
        let mut positions = LayerPositions::new(start, n, self.long);
        for (i, layer) in self.layers.iter().enumerate() {
            let (rope, mask) = positions.of(&self.config, layer, &self.ropes, &self.device);
            x = layer.forward(
                &self.config,
                x,
                rope.as_ref(),
                mask.as_ref(),
                &mut self.cache,
                i,
                &mut no_probe,
            );
        }
        self.cache.advance(n);
        x
    }
}

/// Refuses a forward of `tokens` after `cached` positions that cannot run: no tokens, an
/// id past the vocabulary, or more positions than the cache holds.
pub(crate) fn check_forward(
    config: &ModelConfig,
    tokens: &[u32],
    cached: usize,
    capacity: usize,
) -> Result<()> {
    if tokens.is_empty() {
        return Err(ModelError::InvalidArgument(
            "forward needs at least one token".into(),
        ));
    }
    let vocab_size = config.vocab_size;
    if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab_size) {
        return Err(ModelError::TokenOutOfRange { token, vocab_size });
    }
    if cached + tokens.len() > capacity {
        return Err(ModelError::ContextOverflow {
            needed: cached + tokens.len(),
            capacity,
        });
    }
    Ok(())
}

/// Embeddings scaled as the family asks (Gemma: by √hidden_size).
pub(crate) fn embed<B: Backend>(c: &ModelConfig, rows: Tensor<B, 2>) -> Tensor<B, 2> {
    match c.embedding_scale {
        Some(scale) => rows.mul_scalar(scale),
        None => rows,
    }
}

/// `cap · tanh(x / cap)` (Gemma 2's soft-capping).
fn soft_cap<B: Backend, const D: usize>(x: Tensor<B, D>, cap: f64) -> Tensor<B, D> {
    x.div_scalar(cap).tanh().mul_scalar(cap)
}

/// The RoPE tables and masks of one forward's positions, built once per kind of layer.
pub(crate) struct LayerPositions<B: Backend> {
    start: usize,
    n: usize,
    /// LongRoPE's long tables.
    long: bool,
    ropes: Vec<(LayerRope, Tensor<B, 3>, Tensor<B, 3>)>,
    masks: Vec<(Option<usize>, Option<Tensor<B, 2>>)>,
}

impl<B: TandemBackend> LayerPositions<B> {
    pub(crate) fn new(start: usize, n: usize, long: bool) -> Self {
        Self {
            start,
            n,
            long,
            ropes: Vec::new(),
            masks: Vec::new(),
        }
    }

    /// The rows of `layer`'s RoPE tables (`None` for NoPE) and its mask.
    #[allow(clippy::type_complexity)]
    pub(crate) fn of(
        &mut self,
        c: &ModelConfig,
        layer: &DecoderLayer<B>,
        set: &RopeSet<B>,
        device: &B::Device,
    ) -> (Option<(Tensor<B, 3>, Tensor<B, 3>)>, Option<Tensor<B, 2>>) {
        let (start, n) = (self.start, self.n);
        let rope = (layer.rope != LayerRope::None).then(|| {
            if let Some((_, cos, sin)) = self.ropes.iter().find(|(r, ..)| *r == layer.rope) {
                return (cos.clone(), sin.clone());
            }
            let (cos, sin) = set.rows(layer.rope, self.long, start, n);
            self.ropes.push((layer.rope, cos.clone(), sin.clone()));
            (cos, sin)
        });
        let mask = match self.masks.iter().find(|(w, _)| *w == layer.window) {
            Some((_, mask)) => mask.clone(),
            None => {
                let mask = attention_mask(c, layer.window, start, n, device);
                self.masks.push((layer.window, mask.clone()));
                mask
            }
        };
        (rope, mask)
    }
}

/// Additive mask `[group · n, start + n]` for a multi-token step (causal, and the
/// sliding `window` if any); `None` when every cached position is visible.
pub(crate) fn attention_mask<B: TandemBackend>(
    c: &ModelConfig,
    window: Option<usize>,
    start: usize,
    n: usize,
    device: &B::Device,
) -> Option<Tensor<B, 2>> {
    let total = start + n;
    let window = window.filter(|&w| w < total);
    if n == 1 && window.is_none() {
        return None;
    }
    let group = c.group_size();
    let mut mask = vec![0.0f32; group * n * total];
    for g in 0..group {
        for i in 0..n {
            let pos = start + i;
            let row = &mut mask[(g * n + i) * total..][..total];
            for (j, m) in row.iter_mut().enumerate() {
                let visible = j <= pos && window.is_none_or(|w| pos - j < w);
                if !visible {
                    *m = f32::NEG_INFINITY;
                }
            }
        }
    }
    Some(tensor2(mask, group * n, total, device))
}

/// The rope tables of a model for positions `0..capacity`, one pair per kind of RoPE
/// its layers use: cos, and sin with the first half negated, so
/// rope(x) = x·cos + swap_halves(x)·sin_signed over the rotated dimensions.
pub(crate) struct RopeSet<B: Backend> {
    /// `[capacity, rotary_dim]` each; LongRoPE's long tables flagged `true`.
    tables: Vec<(LayerRope, bool, Tensor<B, 2>, Tensor<B, 2>)>,
}

impl<B: TandemBackend> RopeSet<B> {
    pub(crate) fn new(c: &ModelConfig, capacity: usize, device: &B::Device) -> Self {
        let mut tables = Vec::new();
        let long_too = c.longrope_switch().is_some_and(|switch| capacity > switch);
        let sets = [false, true].into_iter().filter(|&long| !long || long_too);
        for (long, kind) in sets.flat_map(|l| [(l, LayerRope::Global), (l, LayerRope::Local)]) {
            if !c.layers.iter().any(|l| l.rope == kind) {
                continue;
            }
            let (cos, sin) =
                rope::layer_half_tables(c, kind, capacity, long).expect("a RoPE layer");
            let half = c.rotary_dim / 2;
            let full = |t: &[f32], negate: bool| -> Vec<f32> {
                t.chunks_exact(half)
                    .flat_map(|row| {
                        let first = row.iter().map(move |&v| if negate { -v } else { v });
                        first.chain(row.iter().copied())
                    })
                    .collect()
            };
            tables.push((
                kind,
                long,
                tensor2(full(&cos, false), capacity, c.rotary_dim, device),
                tensor2(full(&sin, true), capacity, c.rotary_dim, device),
            ));
        }
        Self { tables }
    }

    /// Rows `start..start + n` of the tables of `kind` (LongRoPE's long ones if
    /// `long`), `[n, 1, rotary_dim]` each.
    fn rows(
        &self,
        kind: LayerRope,
        long: bool,
        start: usize,
        n: usize,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let (.., cos, sin) = self
            .tables
            .iter()
            .find(|(k, l, ..)| *k == kind && *l == long)
            .expect("tables for every RoPE a layer uses");
        (
            cos.clone().slice([start..start + n]).unsqueeze_dim::<3>(1),
            sin.clone().slice([start..start + n]).unsqueeze_dim::<3>(1),
        )
    }
}

/// The RMSNorm `name` of `hidden_size` values (see [`norm_weights`]).
pub(crate) fn load_norm<B: TandemBackend>(
    c: &ModelConfig,
    weights: &WeightFiles,
    name: &str,
    device: &B::Device,
) -> Result<RmsNorm<B>> {
    Ok(rms_norm(
        c,
        norm_weights(c, weights, name, c.hidden_size)?,
        device,
    ))
}

/// An RMSNorm with the multipliers `gamma`.
fn rms_norm<B: TandemBackend>(c: &ModelConfig, gamma: Vec<f32>, device: &B::Device) -> RmsNorm<B> {
    RmsNorm {
        gamma: tensor1(gamma, device),
        eps: c.rms_norm_eps,
    }
}

/// One linear layer: int8 from `quantized` when given, else HF `[out, in]` parts fused
/// into one `[in, Σ out]` weight at f16 (`half`) or f32. The bias, if any, is f32.
fn load_linear<B: TandemBackend>(
    spec: &LinearSpec,
    weights: &WeightFiles,
    quantized: Option<&mut QuantizedWeights>,
    half: bool,
    device: &B::Device,
) -> Result<Linear<B>> {
    let (k, m) = (spec.in_features, spec.out_features());
    let weight = match quantized {
        Some(quantized) => LinearWeight::int8(quantized.take(spec)?.to_matrix(), device),
        None if half => LinearWeight::F16(tensor2_f16(spec.read_f32(weights)?, k, m, device)),
        None => LinearWeight::F32(tensor2(spec.read_f32(weights)?, k, m, device)),
    };
    let bias = spec.read_bias(weights)?.map(|b| tensor1(b, device));
    Ok(Linear { weight, bias })
}

impl<B: TandemBackend> DecoderLayer<B> {
    /// Loads decoder layer `index`; its linears come from `quantized` when given, else
    /// from the checkpoint at f16 (`half`) or f32.
    pub(crate) fn load(
        c: &ModelConfig,
        index: usize,
        weights: &WeightFiles,
        mut quantized: Option<&mut QuantizedWeights>,
        half: bool,
        device: &B::Device,
    ) -> Result<Self> {
        let specs = LayerLinears::of(c, index);
        let mut linear =
            |spec: &LinearSpec| load_linear(spec, weights, quantized.as_deref_mut(), half, device);
        let norms = LayerNorms::read(c, weights, index)?;
        let norm = |gamma| rms_norm(c, gamma, device);
        Ok(Self {
            input_norm: norm(norms.input),
            attention: Attention {
                qkv: linear(&specs.qkv)?,
                out: linear(&specs.out)?,
            },
            q_norm: norms.q.map(norm),
            k_norm: norms.k.map(norm),
            attention_out_norm: norms.attention_out.map(norm),
            mlp_norm: norm(norms.mlp),
            mlp: Mlp {
                gate_up: linear(&specs.gate_up)?,
                down: linear(&specs.down)?,
                activation: c.activation,
            },
            mlp_out_norm: norms.mlp_out.map(norm),
            window: c.layer_window(index),
            rope: c.layers[index].rope,
        })
    }

    /// Runs the layer over `x` (positions `cache.len()..`), writing its keys and values
    /// into layer `index` of the cache (the caller advances the cache). `probe` sees the
    /// input of each linear layer.
    ///
    /// # Shapes
    /// - x: `[n, d]` → `[n, d]`; rope: cos and sin_signed rows of the `n` positions,
    ///   `[n, 1, rotary_dim]` (`None` for a NoPE layer)
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &self,
        c: &ModelConfig,
        x: Tensor<B, 2>,
        rope: Option<&(Tensor<B, 3>, Tensor<B, 3>)>,
        mask: Option<&Tensor<B, 2>>,
        cache: &mut KvCache<B>,
        index: usize,
        probe: Probe<'_, B>,
    ) -> Tensor<B, 2> {
        let h = self.input_norm.forward(x.clone());
        probe(LinearSite::Qkv, &h);
        let attn = self_attention(c, self, h, rope, mask, cache, index, probe);
        let attn = match &self.attention_out_norm {
            Some(norm) => norm.forward(attn),
            None => attn,
        };
        let x = x + attn;
        let h = self.mlp_norm.forward(x.clone());
        probe(LinearSite::GateUp, &h);
        let mlp = self.mlp.forward(h, probe);
        let mlp = match &self.mlp_out_norm {
            Some(norm) => norm.forward(mlp),
            None => mlp,
        };
        x + mlp
    }
}

impl<B: TandemBackend> Mlp<B> {
    fn forward(&self, x: Tensor<B, 2>, probe: Probe<'_, B>) -> Tensor<B, 2> {
        let gate_up = self.gate_up.forward(x);
        let [n, width] = gate_up.dims();
        let half = width / 2;
        let gate = gate_up.clone().slice([0..n, 0..half]);
        let up = gate_up.slice([0..n, half..width]);
        let h = activate(self.activation, gate) * up;
        probe(LinearSite::Down, &h);
        self.down.forward(h)
    }
}

/// The gate's activation: SiLU, or GELU's tanh approximation
/// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
fn activate<B: Backend>(activation: Activation, x: Tensor<B, 2>) -> Tensor<B, 2> {
    match activation {
        Activation::Silu => silu(x),
        Activation::GeluTanh => {
            let cube = x.clone() * x.clone() * x.clone();
            let inner =
                (x.clone() + cube.mul_scalar(0.044_715)).mul_scalar(0.797_884_560_802_865_4);
            x.mul_scalar(0.5) * inner.tanh().add_scalar(1.0)
        }
    }
}

/// Rotates `x` by the position's angles: x·cos + swap_halves(x)·sin_signed over the
/// first `rotary_dim` dimensions of each head (the rest pass unchanged).
///
/// # Shapes
/// - x: `[n, heads, head_dim]`; cos, sin: `[n, 1, rotary_dim]`
fn apply_rope<B: TandemBackend>(
    x: Tensor<B, 3>,
    cos: &Tensor<B, 3>,
    sin: &Tensor<B, 3>,
) -> Tensor<B, 3> {
    let [n, heads, dim] = x.dims();
    let rotary = cos.dims()[2];
    let (x, pass) = if rotary < dim {
        (
            x.clone().slice([0..n, 0..heads, 0..rotary]),
            Some(x.slice([0..n, 0..heads, rotary..dim])),
        )
    } else {
        (x, None)
    };
    let half = rotary / 2;
    let first = x.clone().slice([0..n, 0..heads, 0..half]);
    let second = x.clone().slice([0..n, 0..heads, half..rotary]);
    let swapped = Tensor::cat(vec![second, first], 2);
    let rotated = x * cos.clone() + swapped * sin.clone();
    match pass {
        Some(pass) => Tensor::cat(vec![rotated, pass], 2),
        None => rotated,
    }
}

/// RMSNorm of each head of `x` (`[n, heads, head_dim]`).
fn norm_heads<B: TandemBackend>(norm: &RmsNorm<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [n, heads, dim] = x.dims();
    norm.forward(x.reshape([n * heads, dim]))
        .reshape([n, heads, dim])
}

/// Causal self-attention over the cache, with grouped KV heads and no KV expansion.
///
/// Grouped-query attention folds the `group` query heads that share a KV head into the
/// row dimension, so one batched matmul per KV head does the work: flex 0.21's
/// `attention()` panics when KV heads < query heads, and repeating K/V would copy the
/// whole cache every step.
///
/// # Shapes
/// - h: `[n, d]` → `[n, d]`
#[allow(clippy::too_many_arguments)]
fn self_attention<B: TandemBackend>(
    c: &ModelConfig,
    layer: &DecoderLayer<B>,
    h: Tensor<B, 2>,
    rope: Option<&(Tensor<B, 3>, Tensor<B, 3>)>,
    mask: Option<&Tensor<B, 2>>,
    cache: &mut KvCache<B>,
    index: usize,
    probe: Probe<'_, B>,
) -> Tensor<B, 2> {
    let n = h.dims()[0];
    let (heads, kv_heads, dim) = (c.num_heads, c.num_kv_heads, c.head_dim);
    let group = heads / kv_heads;
    let q_dim = heads * dim;
    let kv_dim = kv_heads * dim;

    let attn = &layer.attention;
    let qkv = attn.qkv.forward(h);
    let q = qkv.clone().slice([0..n, 0..q_dim]).reshape([n, heads, dim]);
    let k = qkv
        .clone()
        .slice([0..n, q_dim..q_dim + kv_dim])
        .reshape([n, kv_heads, dim]);
    let v = qkv
        .slice([0..n, q_dim + kv_dim..q_dim + 2 * kv_dim])
        .reshape([n, kv_heads, dim]);
    let (q, k) = match (&layer.q_norm, &layer.k_norm) {
        (Some(qn), Some(kn)) => (norm_heads(qn, q), norm_heads(kn, k)),
        _ => (q, k),
    };
    let (q, k) = match rope {
        Some((cos, sin)) => (apply_rope(q, cos, sin), apply_rope(k, cos, sin)),
        None => (q, k),
    };
    let q = q.mul_scalar(c.attention_scale());

    let (keys, values) = cache.append(index, k, v);
    let total = keys.dims()[0];
    // [kv_heads, dim, total] and [kv_heads, total, dim]: strided views, no copies.
    let keys_t = keys.permute([1, 2, 0]);
    let values = values.swap_dims(0, 1);
    // [n, heads, dim] → [kv_heads, group · n, dim]; head h uses KV head h / group.
    let q = q.swap_dims(0, 1).reshape([kv_heads, group * n, dim]);

    let mut scores = q.matmul(keys_t);
    if let Some(cap) = c.attn_logit_softcapping {
        scores = soft_cap(scores, cap);
    }
    if let Some(mask) = mask {
        scores = scores + mask.clone().unsqueeze::<3>();
    }
    let probs = softmax(scores, 2);
    let out = probs.matmul(values); // [kv_heads, group · n, dim]
    let out = out
        .reshape([heads, n, dim])
        .swap_dims(0, 1)
        .reshape([n, q_dim]);
    debug_assert_eq!(total, cache.len() + n);
    probe(LinearSite::Out, &out);
    attn.out.forward(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Flex;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name)
    }

    fn last_logits(model: &mut Llama<Flex>) -> Vec<f32> {
        model.reset();
        let logits = model.forward_tail(&[1, 5, 9, 2, 33], 1).unwrap();
        logits.into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn layer_limit_keeps_the_first_layers_at_either_precision() {
        let dir = fixture("qwen2-bias");
        let device = Default::default();
        for precision in [Precision::F32, Precision::Int8] {
            let config = ModelConfig::from_dir(&dir).unwrap();
            let weights = WeightFiles::open(&dir).unwrap();
            let load = |layer_limit| {
                let options = LoadOptions {
                    layer_limit,
                    precision,
                    ..Default::default()
                };
                Llama::<Flex>::from_weights(config.clone(), &weights, &options, &device)
            };
            let mut full = load(None).unwrap();
            let mut one = load(Some(1)).unwrap();
            let mut beyond = load(Some(99)).unwrap();
            assert_eq!(
                one.kv_cache().bytes() * config.num_layers,
                full.kv_cache().bytes()
            );
            assert_ne!(last_logits(&mut one), last_logits(&mut full));
            assert_eq!(last_logits(&mut beyond), last_logits(&mut full));
            assert!(matches!(load(Some(0)), Err(ModelError::InvalidArgument(_))));
        }
    }
}
