//! The RMSNorm weights of a checkpoint as Tandem holds them: which tensors each decoder
//! layer has (by family), read as multipliers. One reader serves both engines, so they
//! cannot disagree about names, sizes or Gemma's `1 + w`.

use crate::config::ModelConfig;
use crate::error::Result;
use crate::formats::safetensors::WeightFiles;

/// Reads the norm weight `name` of `size` values as the multiplier the norm applies:
/// Gemma's `1 + w` is added up here, in f32 as transformers computes it.
pub fn norm_weights(
    c: &ModelConfig,
    weights: &WeightFiles,
    name: &str,
    size: usize,
) -> Result<Vec<f32>> {
    let mut gamma = weights.read(name, &[size])?;
    if c.norm_weight_offset != 0.0 {
        gamma.iter_mut().for_each(|g| *g += c.norm_weight_offset);
    }
    Ok(gamma)
}

/// The norm weights of one decoder layer.
pub struct LayerNorms {
    /// `input_layernorm`: the attention's input.
    pub input: Vec<f32>,
    /// `self_attn.q_norm` / `k_norm`, `[head_dim]` (Qwen3, Gemma 3).
    pub q: Option<Vec<f32>>,
    pub k: Option<Vec<f32>>,
    /// The attention output's norm before the residual add (Gemma 2/3's
    /// `post_attention_layernorm`).
    pub attention_out: Option<Vec<f32>>,
    /// The MLP's input: `post_attention_layernorm`, or Gemma 2/3's
    /// `pre_feedforward_layernorm`.
    pub mlp: Vec<f32>,
    /// The MLP output's norm before the residual add (Gemma 2/3's
    /// `post_feedforward_layernorm`).
    pub mlp_out: Option<Vec<f32>>,
}

impl LayerNorms {
    /// Reads the norms of decoder layer `layer`.
    pub fn read(c: &ModelConfig, weights: &WeightFiles, layer: usize) -> Result<Self> {
        let p = format!("model.layers.{layer}");
        let norm =
            |name: &str| norm_weights(c, weights, &format!("{p}.{name}.weight"), c.hidden_size);
        let head_norm = |name: &str| {
            c.qk_norm
                .then(|| {
                    norm_weights(
                        c,
                        weights,
                        &format!("{p}.self_attn.{name}.weight"),
                        c.head_dim,
                    )
                })
                .transpose()
        };
        let sandwich = |name: &str| c.sandwich_norms.then(|| norm(name)).transpose();
        Ok(Self {
            input: norm("input_layernorm")?,
            q: head_norm("q_norm")?,
            k: head_norm("k_norm")?,
            attention_out: sandwich("post_attention_layernorm")?,
            mlp: norm(if c.sandwich_norms {
                "pre_feedforward_layernorm"
            } else {
                "post_attention_layernorm"
            })?,
            mlp_out: sandwich("post_feedforward_layernorm")?,
        })
    }
}
