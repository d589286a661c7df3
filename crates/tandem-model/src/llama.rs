//! The Llama-family decoder: Llama, Qwen2 (QKV bias) and Mistral (sliding window) share
//! this one file, config → module, as candle-transformers' `llama.rs` does.
//!
//! Every forward reads and extends the KV cache; logits come back for every new position
//! so a speculative verifier can score γ drafts in one pass.

use std::path::Path;

use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Int, Tensor, TensorData};

use crate::backend::TandemBackend;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use crate::layers::{tensor1, tensor2, transpose_and_concat, Linear, RmsNorm};
use crate::rope;
use crate::safetensors::WeightFiles;

/// Default KV capacity when the caller does not choose one: enough for long chats
/// without preallocating a 32k-position cache for every model.
pub const DEFAULT_CONTEXT: usize = 4096;

/// How a model is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// KV cache capacity in positions; `None` = min(max_position_embeddings, 4096).
    pub context_len: Option<usize>,
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
}

struct DecoderLayer<B: TandemBackend> {
    input_norm: RmsNorm<B>,
    attention: Attention<B>,
    post_attention_norm: RmsNorm<B>,
    mlp: Mlp<B>,
}

/// A loaded decoder with its KV cache.
pub struct Llama<B: TandemBackend> {
    config: ModelConfig,
    embed: Tensor<B, 2>,
    layers: Vec<DecoderLayer<B>>,
    norm: RmsNorm<B>,
    lm_head: Linear<B>,
    /// `[capacity, head_dim]` cos table and sin table with the first half negated, so
    /// rope(x) = x·cos + swap_halves(x)·sin_signed.
    rope_cos: Tensor<B, 2>,
    rope_sin_signed: Tensor<B, 2>,
    cache: KvCache<B>,
    device: B::Device,
}

impl<B: TandemBackend> Llama<B> {
    /// Loads `config.json` and the safetensors weights of a model folder.
    pub fn load(dir: &Path, options: &LoadOptions, device: &B::Device) -> Result<Self> {
        let config = ModelConfig::from_dir(dir)?;
        let weights = WeightFiles::open(dir)?;
        Self::from_weights(config, &weights, options, device)
    }

    /// Builds the model from an opened checkpoint, checking every tensor's shape.
    pub fn from_weights(
        config: ModelConfig,
        weights: &WeightFiles,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let c = &config;
        let d = c.hidden_size;
        let q_dim = c.num_heads * c.head_dim;
        let kv_dim = c.num_kv_heads * c.head_dim;
        let capacity = options
            .context_len
            .unwrap_or(DEFAULT_CONTEXT)
            .min(c.max_position_embeddings);
        if capacity == 0 {
            return Err(ModelError::InvalidArgument(
                "context length must be positive".into(),
            ));
        }

        let norm = |name: &str| -> Result<RmsNorm<B>> {
            Ok(RmsNorm {
                gamma: tensor1(weights.read(name, &[d])?, device),
                eps: c.rms_norm_eps,
            })
        };
        // Reads HF `[out, in]` weights and fuses them into one `[in, Σ out]` linear.
        let fused = |names: &[(&str, usize)],
                     in_features: usize,
                     bias: bool|
         -> Result<Linear<B>> {
            let parts = names
                .iter()
                .map(|&(name, out)| weights.read(&format!("{name}.weight"), &[out, in_features]))
                .collect::<Result<Vec<_>>>()?;
            let total_out = names.iter().map(|(_, out)| out).sum();
            let slices: Vec<(&[f32], usize)> = parts
                .iter()
                .zip(names)
                .map(|(p, &(_, out))| (p.as_slice(), out))
                .collect();
            let weight = tensor2(
                transpose_and_concat(&slices, in_features),
                in_features,
                total_out,
                device,
            );
            let bias = if bias {
                let mut values = Vec::with_capacity(total_out);
                for &(name, out) in names {
                    values.extend(weights.read(&format!("{name}.bias"), &[out])?);
                }
                Some(tensor1(values, device))
            } else {
                None
            };
            Ok(Linear { weight, bias })
        };

        let mut layers = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let p = format!("model.layers.{i}");
            let attn = format!("{p}.self_attn");
            let mlp = format!("{p}.mlp");
            layers.push(DecoderLayer {
                input_norm: norm(&format!("{p}.input_layernorm.weight"))?,
                attention: Attention {
                    qkv: fused(
                        &[
                            (&format!("{attn}.q_proj"), q_dim),
                            (&format!("{attn}.k_proj"), kv_dim),
                            (&format!("{attn}.v_proj"), kv_dim),
                        ],
                        d,
                        c.qkv_bias,
                    )?,
                    out: fused(&[(&format!("{attn}.o_proj"), d)], q_dim, false)?,
                },
                post_attention_norm: norm(&format!("{p}.post_attention_layernorm.weight"))?,
                mlp: Mlp {
                    gate_up: fused(
                        &[
                            (&format!("{mlp}.gate_proj"), c.intermediate_size),
                            (&format!("{mlp}.up_proj"), c.intermediate_size),
                        ],
                        d,
                        false,
                    )?,
                    down: fused(
                        &[(&format!("{mlp}.down_proj"), d)],
                        c.intermediate_size,
                        false,
                    )?,
                },
            });
        }

        let embed_values = weights.read("model.embed_tokens.weight", &[c.vocab_size, d])?;
        let lm_head = if c.tie_word_embeddings {
            Linear {
                weight: tensor2(
                    transpose_and_concat(&[(&embed_values, c.vocab_size)], d),
                    d,
                    c.vocab_size,
                    device,
                ),
                bias: None,
            }
        } else {
            fused(&[("lm_head", c.vocab_size)], d, false)?
        };
        let embed = tensor2(embed_values, c.vocab_size, d, device);

        let inv_freq = rope::inverse_frequencies(c.head_dim, c.rope_theta, &c.rope_scaling);
        let (cos, mut sin) = rope::cos_sin_tables(&inv_freq, capacity);
        let half = c.head_dim / 2;
        for row in sin.chunks_mut(c.head_dim) {
            row[..half].iter_mut().for_each(|s| *s = -*s);
        }

        Ok(Self {
            embed,
            layers,
            norm: norm("model.norm.weight")?,
            lm_head,
            rope_cos: tensor2(cos, capacity, c.head_dim, device),
            rope_sin_signed: tensor2(sin, capacity, c.head_dim, device),
            cache: KvCache::new(c.num_layers, capacity, c.num_kv_heads, c.head_dim, device),
            device: device.clone(),
            config,
        })
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
        Ok(self.lm_head.forward(self.norm.forward(x)))
    }

    /// Like [`forward`](Self::forward) but computes logits for the last position only:
    /// a prefill needs just that row, and the LM head is the largest matmul.
    pub fn forward_last(&mut self, tokens: &[u32]) -> Result<Tensor<B, 2>> {
        let x = self.forward_hidden(tokens)?;
        let n = tokens.len();
        Ok(self.lm_head.forward(self.norm.forward(x.slice([n - 1..n]))))
    }

    /// Validates the input, then runs the decoder layers and extends the cache.
    fn forward_hidden(&mut self, tokens: &[u32]) -> Result<Tensor<B, 2>> {
        if tokens.is_empty() {
            return Err(ModelError::InvalidArgument(
                "forward needs at least one token".into(),
            ));
        }
        let vocab_size = self.config.vocab_size;
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(ModelError::TokenOutOfRange { token, vocab_size });
        }
        let start = self.cache.len();
        let n = tokens.len();
        if start + n > self.cache.capacity() {
            return Err(ModelError::ContextOverflow {
                needed: start + n,
                capacity: self.cache.capacity(),
            });
        }

        let ids = Tensor::<B, 1, Int>::from_data(
            TensorData::new(tokens.iter().map(|&t| t as i64).collect::<Vec<_>>(), [n]),
            &self.device,
        );
        let mut x = self.embed.clone().select(0, ids);
        let cos = self
            .rope_cos
            .clone()
            .slice([start..start + n])
            .unsqueeze_dim::<3>(1);
        let sin = self
            .rope_sin_signed
            .clone()
            .slice([start..start + n])
            .unsqueeze_dim::<3>(1);
        let mask = self.attention_mask(start, n);

        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.input_norm.forward(x.clone());
            let attn = self_attention(
                &self.config,
                &layer.attention,
                h,
                &cos,
                &sin,
                mask.as_ref(),
                &mut self.cache,
                i,
            );
            x = x + attn;
            let h = layer.post_attention_norm.forward(x.clone());
            x = x + layer.mlp.forward(h);
        }
        self.cache.advance(n);
        Ok(x)
    }

    /// Additive mask `[group · n, start + n]` for a multi-token step (causal, and the
    /// sliding window if any); `None` when every cached position is visible.
    fn attention_mask(&self, start: usize, n: usize) -> Option<Tensor<B, 2>> {
        let total = start + n;
        let window = self.config.sliding_window.filter(|&w| w < total);
        if n == 1 && window.is_none() {
            return None;
        }
        let group = self.config.group_size();
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
        Some(tensor2(mask, group * n, total, &self.device))
    }
}

impl<B: TandemBackend> Mlp<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let gate_up = self.gate_up.forward(x);
        let [n, width] = gate_up.dims();
        let half = width / 2;
        let gate = gate_up.clone().slice([0..n, 0..half]);
        let up = gate_up.slice([0..n, half..width]);
        self.down.forward(silu(gate) * up)
    }
}

/// Rotates `x` by the position's angles: x·cos + swap_halves(x)·sin_signed.
///
/// # Shapes
/// - x: `[n, heads, head_dim]`; cos, sin: `[n, 1, head_dim]`
fn apply_rope<B: TandemBackend>(
    x: Tensor<B, 3>,
    cos: &Tensor<B, 3>,
    sin: &Tensor<B, 3>,
) -> Tensor<B, 3> {
    let [n, heads, dim] = x.dims();
    let half = dim / 2;
    let first = x.clone().slice([0..n, 0..heads, 0..half]);
    let second = x.clone().slice([0..n, 0..heads, half..dim]);
    let swapped = Tensor::cat(vec![second, first], 2);
    x * cos.clone() + swapped * sin.clone()
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
    attn: &Attention<B>,
    h: Tensor<B, 2>,
    cos: &Tensor<B, 3>,
    sin: &Tensor<B, 3>,
    mask: Option<&Tensor<B, 2>>,
    cache: &mut KvCache<B>,
    layer: usize,
) -> Tensor<B, 2> {
    let n = h.dims()[0];
    let (heads, kv_heads, dim) = (c.num_heads, c.num_kv_heads, c.head_dim);
    let group = heads / kv_heads;
    let q_dim = heads * dim;
    let kv_dim = kv_heads * dim;

    let qkv = attn.qkv.forward(h);
    let q = qkv.clone().slice([0..n, 0..q_dim]).reshape([n, heads, dim]);
    let k = qkv
        .clone()
        .slice([0..n, q_dim..q_dim + kv_dim])
        .reshape([n, kv_heads, dim]);
    let v = qkv
        .slice([0..n, q_dim + kv_dim..q_dim + 2 * kv_dim])
        .reshape([n, kv_heads, dim]);
    let q = apply_rope(q, cos, sin).mul_scalar(1.0 / (dim as f64).sqrt());
    let k = apply_rope(k, cos, sin);

    let (keys, values) = cache.append(layer, k, v);
    let total = keys.dims()[0];
    // [kv_heads, dim, total] and [kv_heads, total, dim]: strided views, no copies.
    let keys_t = keys.permute([1, 2, 0]);
    let values = values.swap_dims(0, 1);
    // [n, heads, dim] → [kv_heads, group · n, dim]; head h uses KV head h / group.
    let q = q.swap_dims(0, 1).reshape([kv_heads, group * n, dim]);

    let mut scores = q.matmul(keys_t);
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
    attn.out.forward(out)
}
