//! `config.json` (+ `generation_config.json`) of Hugging Face decoder models.
//!
//! Every family shares one decoder shape; they differ in QKV bias, tied embeddings, RoPE
//! scaling, sliding windows and the switches [`family`] reads (norms, activations,
//! soft-capping, NoPE layers), which this config records. Both the transformers v4
//! layout (`rope_theta` + `rope_scaling`) and the v5 layout (`rope_parameters`) are read.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

mod family;

/// `config.json` and `generation_config.json` larger than this are refused unread: a
/// real one is a few kilobytes.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 * 1024 * 1024;

// Upper bounds on what a `config.json` may declare. A repo is untrusted input and these
// numbers size allocations (the doctor's token table, KV caches, weight buffers), so an
// absurd value must be an error naming the field rather than an abort. Each bound sits
// well above the largest real model: Llama 3.1 405B has hidden 16384, MLP 53248, 126
// layers, 128 heads of 128; Gemma 3 has a 262k vocabulary; contexts reach 1M-10M.

/// Most token ids a vocabulary may have (2^21).
pub const MAX_VOCAB_SIZE: usize = 1 << 21;
/// Largest `hidden_size` (2^16).
pub const MAX_HIDDEN_SIZE: usize = 1 << 16;
/// Largest `intermediate_size` (2^20).
pub const MAX_INTERMEDIATE_SIZE: usize = 1 << 20;
/// Most decoder layers.
pub const MAX_LAYERS: usize = 1024;
/// Most attention heads (query or key/value).
pub const MAX_HEADS: usize = 1024;
/// Largest `head_dim`.
pub const MAX_HEAD_DIM: usize = 4096;
/// Longest context (`max_position_embeddings`, `sliding_window`): 2^24 positions.
pub const MAX_CONTEXT: usize = 1 << 24;

/// The architectures Tandem runs: dense decoders that share the Llama layer, with the
/// differences [`family`] reads (norms, activations, sliding layers, RoPE variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
    Mistral,
    Qwen3,
    /// Gemma 1 (2B MQA, 7B).
    Gemma,
    Gemma2,
    /// Gemma 3's text model, alone (`Gemma3ForCausalLM`) or inside the multimodal
    /// checkpoint (`Gemma3ForConditionalGeneration`, whose vision tower is not loaded).
    Gemma3,
    /// Phi-3, Phi-3.5-mini and Phi-4-mini.
    Phi3,
    SmolLM3,
}

impl Architecture {
    /// The Hugging Face classes Tandem loads, for error messages.
    pub const SUPPORTED: &'static str = "LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM, \
        Qwen3ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, \
        Gemma3ForConditionalGeneration, Phi3ForCausalLM, SmolLM3ForCausalLM";

    pub fn hf_name(self) -> &'static str {
        match self {
            Self::Llama => "LlamaForCausalLM",
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Mistral => "MistralForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
            Self::Gemma => "GemmaForCausalLM",
            Self::Gemma2 => "Gemma2ForCausalLM",
            Self::Gemma3 => "Gemma3ForCausalLM",
            Self::Phi3 => "Phi3ForCausalLM",
            Self::SmolLM3 => "SmolLM3ForCausalLM",
        }
    }

    /// Gemma 1, 2 and 3: RMSNorm by (1 + w), scaled embeddings, the tanh GELU.
    pub fn is_gemma(self) -> bool {
        matches!(self, Self::Gemma | Self::Gemma2 | Self::Gemma3)
    }
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x · sigmoid(x)` (Llama, Qwen, Mistral, Phi-3, SmolLM3).
    Silu,
    /// GELU with the tanh approximation, `gelu_pytorch_tanh` (Gemma).
    GeluTanh,
}

/// Which rotary embedding a decoder layer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerRope {
    /// `rope_theta` with `rope_scaling`.
    Global,
    /// Gemma 3's sliding layers: their own base ([`ModelConfig::local_rope`]).
    Local,
    /// No positional rotation at all (SmolLM3's NoPE layers).
    None,
}

/// How one decoder layer attends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerKind {
    /// Attends to the last [`ModelConfig::sliding_window`] positions only.
    pub sliding: bool,
    pub rope: LayerRope,
}

impl LayerKind {
    pub const FULL: Self = Self {
        sliding: false,
        rope: LayerRope::Global,
    };
}

/// How RoPE frequencies are rescaled for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor` (equivalently, every frequency divided by it).
    Linear {
        factor: f64,
    },
    /// Llama 3.1's frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// One divisor per frequency (`head_dim / 2` of them), as GGUF files carry Llama
    /// 3.1-style scaling: the `rope_freqs` tensor llama.cpp's converter computes.
    Factors(Vec<f64>),
    /// Phi-3's LongRoPE: one divisor per frequency, `short_factor` while a sequence
    /// fits `original_max_position_embeddings` and `long_factor` at every position once
    /// it is longer (see [`ModelConfig::longrope_switch`]), cos and sin multiplied by
    /// `attention_factor`.
    LongRope {
        short_factor: Vec<f64>,
        long_factor: Vec<f64>,
        original_max_position_embeddings: usize,
        attention_factor: f64,
    },
}

/// Everything the decoder needs from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
    /// Q, K and V projections carry a bias (always for Qwen2; `attention_bias` for Llama).
    pub qkv_bias: bool,
    /// The window of the sliding layers (Mistral: all of them; Gemma 2/3: see
    /// `layers`); `None` when no layer slides.
    pub sliding_window: Option<usize>,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    /// `torch_dtype` (v4) or `dtype` (v5), as written.
    pub torch_dtype: Option<String>,
    /// One entry per decoder layer: sliding or full attention, and its RoPE.
    pub layers: Vec<LayerKind>,
    pub activation: Activation,
    /// Added to every RMSNorm weight at load: Gemma's norms multiply by (1 + w).
    pub norm_weight_offset: f32,
    /// Embeddings are multiplied by this (Gemma: √hidden_size in the weights' dtype).
    pub embedding_scale: Option<f32>,
    /// Per-head RMSNorm of queries and keys before RoPE (`q_norm`, `k_norm`: Qwen3,
    /// Gemma 3).
    pub qk_norm: bool,
    /// Attention scores are scaled by `1 / √query_pre_attn_scalar` instead of
    /// `1 / √head_dim` (Gemma 2 and 3).
    pub query_pre_attn_scalar: Option<f64>,
    /// Attention scores become `cap · tanh(score / cap)` (Gemma 2).
    pub attn_logit_softcapping: Option<f64>,
    /// Logits become `cap · tanh(logit / cap)` (Gemma 2).
    pub final_logit_softcapping: Option<f64>,
    /// Gemma 2/3: the attention output and the MLP output are normalized before they
    /// join the residual stream, and the MLP input by `pre_feedforward_layernorm`.
    pub sandwich_norms: bool,
    /// Dimensions of each head that RoPE rotates (Phi-3's `partial_rotary_factor`);
    /// `head_dim` otherwise.
    pub rotary_dim: usize,
    /// The base and scaling of [`LayerRope::Local`] layers.
    pub local_rope: Option<(f64, RopeScaling)>,
    /// The checkpoint stores fused `qkv_proj` and `gate_up_proj` tensors (Phi-3).
    pub fused_checkpoint_linears: bool,
}

/// Reads typed fields out of a JSON object, naming the file and field on error.
struct Fields<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn usize_req(&self, key: &str) -> Result<usize> {
        let v = self
            .get(key)
            .ok_or_else(|| ModelError::field(self.path, key, "missing"))?;
        as_usize(v).ok_or_else(|| {
            ModelError::field(
                self.path,
                key,
                format!("expected a positive integer, got {v}"),
            )
        })
    }

    /// A required integer in `1..=max`.
    fn usize_in(&self, key: &str, max: usize) -> Result<usize> {
        let value = self.usize_req(key)?;
        check_range(self.path, key, value, max)
    }

    /// An optional integer in `1..=max`.
    fn usize_opt_in(&self, key: &str, max: usize) -> Result<Option<usize>> {
        self.usize_opt(key)?
            .map(|value| check_range(self.path, key, value, max))
            .transpose()
    }

    /// An optional number that must be finite and positive (a RoPE base or factor).
    fn positive_f64_opt(&self, key: &str, name: &str) -> Result<Option<f64>> {
        let value = self.f64_opt(key)?;
        match value {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(ModelError::field(
                self.path,
                name,
                format!("{x} must be a positive finite number"),
            )),
            _ => Ok(value),
        }
    }

    fn usize_opt(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => as_usize(v).map(Some).ok_or_else(|| {
                ModelError::field(
                    self.path,
                    key,
                    format!("expected a positive integer, got {v}"),
                )
            }),
        }
    }

    fn f64_opt(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                ModelError::field(self.path, key, format!("expected a number, got {v}"))
            }),
        }
    }

    fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| {
                ModelError::field(self.path, key, format!("expected true or false, got {v}"))
            }),
        }
    }

    /// A token id given as a number or a list of numbers.
    fn token_ids(&self, key: &str) -> Result<Option<Vec<u32>>> {
        let bad = |v: &Value| {
            ModelError::field(
                self.path,
                key,
                format!("expected a token id or a list of token ids, got {v}"),
            )
        };
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| as_u32(v).ok_or_else(|| bad(v)))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => as_u32(v).map(|id| Some(vec![id])).ok_or_else(|| bad(v)),
        }
    }
}

/// `value` if it lies in `1..=max`, else an error naming the field and the value.
fn check_range(path: &Path, key: &str, value: usize, max: usize) -> Result<usize> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ModelError::field(
            path,
            key,
            format!("{value} is out of range: expected 1 to {max}"),
        ))
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}

fn as_u32(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// Checks that `dir` is a model folder: a file or a missing path is told apart, so
/// `--model model.safetensors` says what it got and what it wants.
pub fn check_model_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else if dir.exists() {
        Err(ModelError::NotAFolder(dir.to_path_buf()))
    } else {
        Err(ModelError::MissingFolder(dir.to_path_buf()))
    }
}

/// Reads a text file of a model repo, refusing one over `limit` bytes before reading
/// it (a repo is untrusted: a 50 GB `config.json` must not be loaded into memory).
/// `what` names the file's role in the errors.
pub(crate) fn read_text_limited(path: &Path, what: &'static str, limit: u64) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile {
                path: path.to_path_buf(),
                what,
            }
        } else {
            ModelError::io(path, e)
        }
    })?;
    let too_large = |size: u64| ModelError::FileTooLarge {
        path: path.to_path_buf(),
        what,
        size,
        limit,
    };
    let size = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
    if size > limit {
        return Err(too_large(size));
    }
    let mut text = String::new();
    // `take` guards against a file that grows after the size check.
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| ModelError::io(path, e))?;
    if text.len() as u64 > limit {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

fn read_json_object(path: &Path) -> Result<Map<String, Value>> {
    let text = read_text_limited(path, "model configuration", MAX_CONFIG_FILE_BYTES)?;
    match serde_json::from_str::<Value>(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })? {
        Value::Object(map) => Ok(map),
        _ => Err(ModelError::field(path, "(root)", "expected a JSON object")),
    }
}

impl ModelConfig {
    /// Reads `config.json` from a model folder, with `generation_config.json` (if present)
    /// overriding the BOS/EOS ids, as transformers' `generate` does.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        if crate::formats::gguf::is_gguf_file(dir) {
            let file = crate::formats::gguf::GgufFile::open(dir)?;
            return crate::formats::gguf_model::model_config(&file);
        }
        check_model_dir(dir)?;
        let mut config = Self::from_file(&dir.join("config.json"))?;
        let gen_path = dir.join("generation_config.json");
        if gen_path.exists() {
            let map = read_json_object(&gen_path)?;
            let f = Fields {
                path: &gen_path,
                map: &map,
            };
            if let Some(ids) = f.token_ids("bos_token_id")? {
                config.bos_token_id = ids.first().copied();
            }
            if let Some(ids) = f.token_ids("eos_token_id")? {
                config.eos_token_ids = ids;
            }
        }
        Ok(config)
    }

    /// Parses one `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let map = read_json_object(path)?;
        Self::from_map(path, &map)
    }

    /// Parses a `config.json` object (read from `path`, or built from a GGUF file's
    /// metadata: then `path` is that file).
    pub(crate) fn from_map(path: &Path, map: &Map<String, Value>) -> Result<Self> {
        let architecture = parse_architecture(&Fields { path, map })?;
        let multimodal = map
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            == Some("Gemma3ForConditionalGeneration");
        // Gemma 3's multimodal checkpoints keep the language model's config under
        // `text_config`, written sparsely: the family's defaults fill it in.
        let map = family::text_config(architecture, map);
        let f = Fields { path, map: &map };

        let hidden_size = f.usize_in("hidden_size", MAX_HIDDEN_SIZE)?;
        let num_heads = f.usize_in("num_attention_heads", MAX_HEADS)?;
        let num_kv_heads = f
            .usize_opt_in("num_key_value_heads", MAX_HEADS)?
            .unwrap_or(num_heads);
        if num_heads % num_kv_heads != 0 {
            return Err(ModelError::field(
                path,
                "num_key_value_heads",
                format!("{num_kv_heads} does not divide num_attention_heads = {num_heads}"),
            ));
        }
        let head_dim = match f.usize_opt_in("head_dim", MAX_HEAD_DIM)? {
            Some(d) => d,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(ModelError::field(
                    path,
                    "head_dim",
                    format!("missing, and hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}"),
                ))
            }
        };
        if head_dim % 2 != 0 {
            return Err(ModelError::field(
                path,
                "head_dim",
                format!("{head_dim} is odd; rotary embeddings need an even head size"),
            ));
        }
        let activation = family::activation(&f, architecture)?;
        if f.bool_opt("mlp_bias")?.unwrap_or(false) {
            return Err(ModelError::field(path, "mlp_bias", "true is not supported"));
        }
        let num_layers = f.usize_in("num_hidden_layers", MAX_LAYERS)?;
        let max_position_embeddings = f
            .usize_opt_in("max_position_embeddings", MAX_CONTEXT)?
            .unwrap_or(2048);

        let rope = parse_rope(&f, architecture, head_dim, max_position_embeddings)?;
        let qkv_bias = match architecture {
            Architecture::Qwen2 => true,
            _ => f.bool_opt("attention_bias")?.unwrap_or(false),
        };
        if architecture == Architecture::Qwen2 && f.bool_opt("use_sliding_window")?.unwrap_or(false)
        {
            return Err(ModelError::field(
                path,
                "use_sliding_window",
                "true is not supported for Qwen2",
            ));
        }
        let (layers, sliding_window) = family::layer_kinds(&f, architecture, num_layers)?;
        let eos_token_ids = f.token_ids("eos_token_id")?.unwrap_or_default();
        let bos_token_id = f
            .token_ids("bos_token_id")?
            .and_then(|v| v.first().copied());
        let torch_dtype = f
            .get("torch_dtype")
            .or_else(|| f.get("dtype"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let traits = family::traits(
            &f,
            architecture,
            multimodal,
            hidden_size,
            torch_dtype.as_deref(),
        )?;

        let config = Self {
            architecture,
            hidden_size,
            intermediate_size: f.usize_in("intermediate_size", MAX_INTERMEDIATE_SIZE)?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size: f.usize_in("vocab_size", MAX_VOCAB_SIZE)?,
            rope_theta: rope.theta,
            rope_scaling: rope.scaling,
            rms_norm_eps: parse_norm_eps(&f)?,
            tie_word_embeddings: f
                .bool_opt("tie_word_embeddings")?
                .unwrap_or(traits.tied_by_default),
            qkv_bias,
            sliding_window,
            max_position_embeddings,
            bos_token_id,
            eos_token_ids,
            torch_dtype,
            layers,
            activation,
            norm_weight_offset: traits.norm_weight_offset,
            embedding_scale: traits.embedding_scale,
            qk_norm: traits.qk_norm,
            query_pre_attn_scalar: traits.query_pre_attn_scalar,
            attn_logit_softcapping: traits.attn_logit_softcapping,
            final_logit_softcapping: traits.final_logit_softcapping,
            sandwich_norms: traits.sandwich_norms,
            rotary_dim: rope.rotary_dim,
            local_rope: rope.local,
            fused_checkpoint_linears: architecture == Architecture::Phi3,
        };
        Ok(config)
    }

    /// LongRoPE's `original_max_position_embeddings`: a sequence longer than this runs
    /// with the long factors at every position, as transformers computes it (its
    /// `generate()` re-runs the sequence when it first grows past it); `None` for the
    /// other RoPE scalings.
    pub fn longrope_switch(&self) -> Option<usize> {
        match self.rope_scaling {
            RopeScaling::LongRope {
                original_max_position_embeddings,
                ..
            } => Some(original_max_position_embeddings),
            _ => None,
        }
    }

    /// The attention window of decoder layer `layer`, if it slides.
    pub fn layer_window(&self, layer: usize) -> Option<usize> {
        self.layers
            .get(layer)
            .filter(|kind| kind.sliding)
            .and(self.sliding_window)
    }

    /// The factor attention scores are scaled by.
    pub fn attention_scale(&self) -> f64 {
        1.0 / self
            .query_pre_attn_scalar
            .unwrap_or(self.head_dim as f64)
            .sqrt()
    }

    /// Number of query heads sharing one KV head.
    pub fn group_size(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }

    /// Parameters in the decoder, counting a tied head once. Saturates at `usize::MAX`
    /// rather than wrapping (a parsed config cannot get there; a hand-built one can).
    pub fn parameter_count(&self) -> usize {
        let mul = usize::saturating_mul;
        let add = usize::saturating_add;
        let d = self.hidden_size;
        let q = mul(self.num_heads, self.head_dim);
        let kv = mul(self.num_kv_heads, self.head_dim);
        let bias = if self.qkv_bias { add(q, mul(2, kv)) } else { 0 };
        let attn = add(add(mul(mul(2, d), q), mul(mul(2, d), kv)), bias);
        let mlp = mul(mul(3, d), self.intermediate_size);
        let layer = add(add(attn, mlp), mul(2, d));
        let embeddings = mul(self.vocab_size, d);
        let head = if self.tie_word_embeddings {
            0
        } else {
            embeddings
        };
        add(add(add(embeddings, mul(self.num_layers, layer)), d), head)
    }
}

fn parse_architecture(f: &Fields) -> Result<Architecture> {
    let name = match f.get("architectures") {
        Some(Value::Array(a)) if !a.is_empty() => a[0].as_str().unwrap_or_default().to_string(),
        _ => match f.get("model_type").and_then(Value::as_str) {
            Some(model_type) => family::class_of_model_type(model_type).to_string(),
            None => return Err(ModelError::field(f.path, "architectures", "missing")),
        },
    };
    family::architecture_named(f.path, &name)
}

/// `rms_norm_eps`: finite and not negative (default 1e-6).
fn parse_norm_eps(f: &Fields) -> Result<f64> {
    let eps = f.f64_opt("rms_norm_eps")?.unwrap_or(1e-6);
    if eps.is_finite() && eps >= 0.0 {
        Ok(eps)
    } else {
        Err(ModelError::field(
            f.path,
            "rms_norm_eps",
            format!("{eps} must be a finite number, not negative"),
        ))
    }
}

/// What a config says about rotary embeddings.
struct Rope {
    theta: f64,
    scaling: RopeScaling,
    rotary_dim: usize,
    /// Gemma 3's sliding layers' own base and scaling.
    local: Option<(f64, RopeScaling)>,
}

/// Reads `rope_theta` and the scaling from `rope_scaling` (v4) or `rope_parameters` (v5),
/// with Phi-3's `partial_rotary_factor` and Gemma 3's per-layer-type parameters (v5) or
/// `rope_local_base_freq` (v4).
fn parse_rope(
    f: &Fields,
    architecture: Architecture,
    head_dim: usize,
    max_position_embeddings: usize,
) -> Result<Rope> {
    let params = f.get("rope_parameters").and_then(Value::as_object);
    let default_theta = family::default_rope_theta(architecture);
    if architecture == Architecture::Gemma3 {
        // v5: {"full_attention": {...}, "sliding_attention": {...}}.
        let per_type = |key: &str| params.and_then(|p| p.get(key)).and_then(Value::as_object);
        let (global, local) = match (per_type("full_attention"), per_type("sliding_attention")) {
            (Some(global), Some(local)) => {
                let read = |map: &Map<String, Value>, name: &str, theta: f64| {
                    rope_scaling_of(
                        f,
                        map,
                        &format!("rope_parameters.{name}"),
                        theta,
                        head_dim,
                        max_position_embeddings,
                    )
                };
                (
                    read(global, "full_attention", default_theta)?,
                    read(local, "sliding_attention", family::GEMMA3_LOCAL_ROPE_THETA)?,
                )
            }
            _ => {
                let global = parse_flat_rope(f, default_theta, head_dim, max_position_embeddings)?;
                let local_theta = f
                    .positive_f64_opt("rope_local_base_freq", "rope_local_base_freq")?
                    .unwrap_or(family::GEMMA3_LOCAL_ROPE_THETA);
                (global, (local_theta, RopeScaling::None))
            }
        };
        return Ok(Rope {
            theta: global.0,
            scaling: global.1,
            rotary_dim: head_dim,
            local: Some(local),
        });
    }
    let (theta, scaling) = parse_flat_rope(f, default_theta, head_dim, max_position_embeddings)?;
    let factor = match params.and_then(|p| p.get("partial_rotary_factor")) {
        Some(v) => v.as_f64().ok_or_else(|| {
            ModelError::field(
                f.path,
                "rope_parameters.partial_rotary_factor",
                format!("expected a number, got {v}"),
            )
        })?,
        None => f.f64_opt("partial_rotary_factor")?.unwrap_or(1.0),
    };
    let rotary_dim = (head_dim as f64 * factor) as usize;
    if factor != 1.0 && architecture != Architecture::Phi3 {
        return Err(ModelError::field(
            f.path,
            "partial_rotary_factor",
            format!("{factor} is only supported for Phi-3 models"),
        ));
    }
    if !(factor > 0.0 && factor <= 1.0) || rotary_dim < 2 || !rotary_dim.is_multiple_of(2) {
        return Err(ModelError::field(
            f.path,
            "partial_rotary_factor",
            format!("{factor} of head_dim {head_dim} does not give an even number of rotated dimensions"),
        ));
    }
    if let RopeScaling::LongRope { short_factor, .. } = &scaling {
        if short_factor.len() != rotary_dim / 2 {
            return Err(ModelError::field(
                f.path,
                "rope_scaling.short_factor",
                format!(
                    "has {} values; {} rotated dimensions need {}",
                    short_factor.len(),
                    rotary_dim,
                    rotary_dim / 2
                ),
            ));
        }
    }
    Ok(Rope {
        theta,
        scaling,
        rotary_dim,
        local: None,
    })
}

/// The flat layout: `rope_theta` + `rope_scaling` (v4) or one `rope_parameters` (v5).
fn parse_flat_rope(
    f: &Fields,
    default_theta: f64,
    head_dim: usize,
    max_position_embeddings: usize,
) -> Result<(f64, RopeScaling)> {
    let params = f.get("rope_parameters").and_then(Value::as_object);
    let theta = match params
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64)
    {
        Some(t) => t,
        None => f.f64_opt("rope_theta")?.unwrap_or(default_theta),
    };
    let (scaling, field) = match f.get("rope_scaling").and_then(Value::as_object) {
        Some(s) => (Some(s), "rope_scaling"),
        None => (params, "rope_parameters"),
    };
    match scaling {
        None => {
            check_theta(f.path, "rope_theta", theta)?;
            Ok((theta, RopeScaling::None))
        }
        Some(scaling) => {
            rope_scaling_of(f, scaling, field, theta, head_dim, max_position_embeddings)
        }
    }
}

fn check_theta(path: &Path, field: &str, theta: f64) -> Result<()> {
    if theta.is_finite() && theta > 0.0 {
        Ok(())
    } else {
        Err(ModelError::field(
            path,
            field,
            format!("{theta} must be a positive finite number"),
        ))
    }
}

/// The scaling one rope parameter object (`rope_scaling` or `rope_parameters`, named
/// `field` in errors) asks for, and its `rope_theta` (else `theta`).
fn rope_scaling_of(
    f: &Fields,
    scaling: &Map<String, Value>,
    field: &str,
    theta: f64,
    head_dim: usize,
    max_position_embeddings: usize,
) -> Result<(f64, RopeScaling)> {
    let sf = Fields {
        path: f.path,
        map: scaling,
    };
    let theta = scaling
        .get("rope_theta")
        .and_then(Value::as_f64)
        .unwrap_or(theta);
    check_theta(f.path, &format!("{field}.rope_theta"), theta)?;
    let rope_type = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |key: &str| -> Result<f64> {
        let name = format!("{field}.{key}");
        sf.positive_f64_opt(key, &name)?
            .ok_or_else(|| ModelError::field(f.path, name, "missing"))
    };
    let rope = match rope_type {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: num("factor")?,
        },
        "llama3" => RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        },
        // Phi-3's older configs call it `su` (and a few `yarn`): transformers reads
        // both as LongRoPE for Phi-3.
        "longrope" | "su" => {
            let factors = |key: &str| -> Result<Vec<f64>> {
                let name = format!("{field}.{key}");
                let list = scaling.get(key).and_then(Value::as_array).ok_or_else(|| {
                    ModelError::field(f.path, &name, "missing (a list of numbers)")
                })?;
                if list.len() > head_dim / 2 {
                    return Err(ModelError::field(
                        f.path,
                        &name,
                        format!(
                            "has {} values, more than head_dim / 2 = {}",
                            list.len(),
                            head_dim / 2
                        ),
                    ));
                }
                list.iter()
                    .map(|v| {
                        v.as_f64()
                            .filter(|x| x.is_finite() && *x > 0.0)
                            .ok_or_else(|| {
                                ModelError::field(
                                    f.path,
                                    &name,
                                    format!("{v} is not a positive number"),
                                )
                            })
                    })
                    .collect()
            };
            let (short_factor, long_factor) = (factors("short_factor")?, factors("long_factor")?);
            if short_factor.len() != long_factor.len() {
                return Err(ModelError::field(
                    f.path,
                    format!("{field}.long_factor"),
                    "must have as many values as short_factor",
                ));
            }
            // Phi-3 keeps the pretraining length at the top level, and transformers
            // gives that one priority.
            let original = match f.usize_opt_in("original_max_position_embeddings", MAX_CONTEXT)? {
                Some(n) => n,
                None => sf
                    .usize_opt_in("original_max_position_embeddings", MAX_CONTEXT)?
                    .unwrap_or(max_position_embeddings),
            };
            let factor = match sf.positive_f64_opt("factor", &format!("{field}.factor"))? {
                Some(factor) => factor,
                None => max_position_embeddings as f64 / original as f64,
            };
            let attention_factor = match sf
                .positive_f64_opt("attention_factor", &format!("{field}.attention_factor"))?
            {
                Some(a) => a,
                None if factor <= 1.0 => 1.0,
                None => (1.0 + factor.ln() / (original as f64).ln()).sqrt(),
            };
            RopeScaling::LongRope {
                short_factor,
                long_factor,
                original_max_position_embeddings: original,
                attention_factor,
            }
        }
        other => {
            return Err(ModelError::UnsupportedRope {
                path: f.path.to_path_buf(),
                rope_type: other.to_string(),
            })
        }
    };
    Ok((theta, rope))
}

/// Path of `config.json` inside a model folder.
pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::safetensors::tests::tempdir;
    use serde_json::json;

    fn parse(v: Value) -> Result<ModelConfig> {
        ModelConfig::from_map(Path::new("config.json"), v.as_object().unwrap())
    }

    fn base() -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2,
            "max_position_embeddings": 256, "torch_dtype": "bfloat16"
        })
    }

    #[test]
    fn llama_with_derived_head_dim() {
        let c = parse(base()).unwrap();
        assert_eq!(c.architecture, Architecture::Llama);
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.group_size(), 2);
        assert_eq!(c.eos_token_ids, vec![2]);
        assert_eq!(c.bos_token_id, Some(1));
        assert_eq!(c.rope_scaling, RopeScaling::None);
        assert!(!c.qkv_bias && !c.tie_word_embeddings);
        assert_eq!(c.torch_dtype.as_deref(), Some("bfloat16"));
    }

    #[test]
    fn explicit_head_dim_eos_list_and_mqa() {
        let mut v = base();
        v["head_dim"] = json!(32);
        v["num_key_value_heads"] = json!(1);
        v["eos_token_id"] = json!([2, 7]);
        let c = parse(v).unwrap();
        assert_eq!((c.head_dim, c.num_kv_heads, c.group_size()), (32, 1, 4));
        assert_eq!(c.eos_token_ids, vec![2, 7]);
    }

    #[test]
    fn rope_scaling_v4_and_v5_layouts() {
        let mut v = base();
        v["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let c = parse(v).unwrap();
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));

        let mut v = base();
        v.as_object_mut().unwrap().remove("rope_theta");
        v["rope_parameters"] = json!({"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5});
        let c = parse(v).unwrap();
        assert_eq!(c.rope_theta, 5e5);
        assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 2.0 });

        let mut v = base();
        v["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 1e6});
        let c = parse(v).unwrap();
        assert_eq!((c.rope_theta, c.rope_scaling), (1e6, RopeScaling::None));
    }

    #[test]
    fn unsupported_rope_and_architecture_are_named() {
        let mut v = base();
        v["rope_scaling"] = json!({"type": "yarn", "factor": 4.0});
        let err = parse(v).unwrap_err();
        assert!(
            matches!(&err, ModelError::UnsupportedRope { rope_type, .. } if rope_type == "yarn")
        );
        assert!(err.to_string().contains("config.json"));

        let mut v = base();
        v["architectures"] = json!(["GPT2LMHeadModel"]);
        let err = parse(v).unwrap_err();
        assert!(
            matches!(&err, ModelError::UnsupportedArchitecture { architecture, .. } if architecture == "GPT2LMHeadModel")
        );
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("hidden_size");
        let err = parse(v).unwrap_err().to_string();
        assert!(
            err.contains("`hidden_size`") && err.contains("missing"),
            "{err}"
        );

        let mut v = base();
        v["num_key_value_heads"] = json!(3);
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains("num_key_value_heads"), "{err}");

        let mut v = base();
        v["vocab_size"] = json!("lots");
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains("`vocab_size`"), "{err}");

        let mut v = base();
        v["rope_scaling"] = json!({"rope_type": "linear"});
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains("rope_scaling.factor"), "{err}");
    }

    #[test]
    fn out_of_range_sizes_are_refused_naming_field_and_value() {
        for (field, value) in [
            ("vocab_size", json!(3_000_000_000u64)),
            ("hidden_size", json!(1u64 << 40)),
            ("intermediate_size", json!(1u64 << 40)),
            ("num_hidden_layers", json!(100_000)),
            ("num_attention_heads", json!(1u64 << 32)),
            ("head_dim", json!(0)),
            ("head_dim", json!(1u64 << 20)),
            ("max_position_embeddings", json!(1u64 << 40)),
        ] {
            let mut v = base();
            v[field] = value.clone();
            if field == "num_attention_heads" {
                v["num_key_value_heads"] = value.clone();
            }
            let err = parse(v).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`{field}`")) && err.contains(&value.to_string()),
                "{field} = {value}: {err}"
            );
        }
        // A sliding window is a context length too.
        let mut v = base();
        v["architectures"] = json!(["MistralForCausalLM"]);
        v["sliding_window"] = json!(1u64 << 40);
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains("`sliding_window`"), "{err}");
    }

    #[test]
    fn bounds_admit_the_largest_real_models() {
        // Llama 3.1 405B's shape with Gemma 3's vocabulary and a 1M context.
        let mut v = base();
        v["hidden_size"] = json!(16384);
        v["intermediate_size"] = json!(53248);
        v["num_hidden_layers"] = json!(126);
        v["num_attention_heads"] = json!(128);
        v["num_key_value_heads"] = json!(8);
        v["vocab_size"] = json!(262_144);
        v["max_position_embeddings"] = json!(1_048_576);
        let c = parse(v).unwrap();
        assert_eq!(c.head_dim, 128);
        assert!(c.parameter_count() > 400_000_000_000);
    }

    #[test]
    fn parameter_count_saturates_instead_of_wrapping() {
        // Built directly (the parser refuses such sizes): the count must not wrap around
        // to a small number that would pass a memory check.
        let mut c = parse(base()).unwrap();
        c.vocab_size = usize::MAX / 2;
        c.hidden_size = usize::MAX / 2;
        assert_eq!(c.parameter_count(), usize::MAX);
        c.vocab_size = 100;
        c.hidden_size = 64;
        c.num_layers = usize::MAX / 3;
        assert_eq!(c.parameter_count(), usize::MAX);
    }

    #[test]
    fn nonsense_rope_and_norm_numbers_are_refused() {
        let mut v = base();
        v["rope_theta"] = json!(-1.0);
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains("`rope_theta`") && err.contains("-1"), "{err}");
        let mut v = base();
        v["rope_scaling"] = json!({"rope_type": "linear", "factor": 0.0});
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains("rope_scaling.factor"), "{err}");
        let mut v = base();
        v["rms_norm_eps"] = json!(-0.5);
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains("`rms_norm_eps`"), "{err}");
    }

    #[test]
    fn oversized_config_file_is_refused_before_reading() {
        let dir = tempdir();
        let path = dir.join("config.json");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_CONFIG_FILE_BYTES + 1).unwrap();
        let err = ModelConfig::from_file(&path).unwrap_err();
        assert!(matches!(err, ModelError::FileTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn a_file_given_as_the_model_folder_is_named_as_a_file() {
        let dir = tempdir();
        let file = dir.join("model.safetensors");
        std::fs::write(&file, b"x").unwrap();
        let err = ModelConfig::from_dir(&file).unwrap_err();
        assert!(matches!(err, ModelError::NotAFolder(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("is a file") && text.contains("folder") && text.contains("config.json"),
            "{text}"
        );
    }

    #[test]
    fn qwen2_has_bias_and_generation_config_overrides() {
        let dir = tempdir();
        let mut v = base();
        v["architectures"] = json!(["Qwen2ForCausalLM"]);
        v["use_sliding_window"] = json!(false);
        v["sliding_window"] = json!(4096);
        std::fs::write(dir.join("config.json"), v.to_string()).unwrap();
        std::fs::write(
            dir.join("generation_config.json"),
            r#"{"bos_token_id": 5, "eos_token_id": [2, 9]}"#,
        )
        .unwrap();
        let c = ModelConfig::from_dir(&dir).unwrap();
        assert!(c.qkv_bias);
        assert_eq!(c.sliding_window, None);
        assert_eq!(c.bos_token_id, Some(5));
        assert_eq!(c.eos_token_ids, vec![2, 9]);
    }

    #[test]
    fn missing_folder_and_file() {
        let err = ModelConfig::from_dir(Path::new("/nonexistent/tandem")).unwrap_err();
        assert!(matches!(err, ModelError::MissingFolder(_)));
        let dir = tempdir();
        let err = ModelConfig::from_dir(&dir).unwrap_err();
        assert!(matches!(err, ModelError::MissingFile { .. }), "{err}");
        std::fs::write(dir.join("config.json"), "{not json").unwrap();
        let err = ModelConfig::from_dir(&dir).unwrap_err();
        assert!(matches!(err, ModelError::Json { .. }), "{err}");
    }
}
