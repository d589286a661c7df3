//! The linear layers of a Llama-family checkpoint as Tandem holds them: which Hugging
//! Face tensors fuse into each, read as f32 or quantized to int8.
//!
//! One list serves the f32 load, the int8 load and the int8 cache, so the three cannot
//! disagree about names, fusion order or shapes.

use crate::config::ModelConfig;
use crate::error::Result;
use crate::families::layers::transpose_and_concat;
use crate::formats::safetensors::WeightFiles;
use crate::quant::{PackedInt8, PackedInt8Builder};

/// One linear layer: Hugging Face `[out, in]` parts placed side by side as one
/// `[in, Σ out]` weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearSpec {
    /// Tandem's name for the layer, the key of the int8 cache
    /// (`model.layers.0.self_attn.qkv_proj`, `lm_head`).
    pub name: String,
    /// Hugging Face tensor prefixes (`….q_proj`) and their output widths, in column order.
    pub parts: Vec<(String, usize)>,
    pub in_features: usize,
    /// Whether each part has a `.bias` (Qwen2's QKV).
    pub bias: bool,
}

/// The four linear layers of one decoder layer.
pub struct LayerLinears {
    pub qkv: LinearSpec,
    pub out: LinearSpec,
    pub gate_up: LinearSpec,
    pub down: LinearSpec,
}

impl LayerLinears {
    pub fn of(c: &ModelConfig, layer: usize) -> Self {
        let p = format!("model.layers.{layer}");
        let attn = format!("{p}.self_attn");
        let mlp = format!("{p}.mlp");
        let q_dim = c.num_heads * c.head_dim;
        let kv_dim = c.num_kv_heads * c.head_dim;
        let d = c.hidden_size;
        let spec = |name: String, parts: Vec<(String, usize)>, in_features, bias| LinearSpec {
            name,
            parts,
            in_features,
            bias,
        };
        // Phi-3 stores Q, K, V as one `qkv_proj` and gate and up as one `gate_up_proj`,
        // in the column order Tandem fuses them in.
        let (qkv_parts, gate_up_parts) = if c.fused_checkpoint_linears {
            (
                vec![(format!("{attn}.qkv_proj"), q_dim + 2 * kv_dim)],
                vec![(format!("{mlp}.gate_up_proj"), 2 * c.intermediate_size)],
            )
        } else {
            (
                vec![
                    (format!("{attn}.q_proj"), q_dim),
                    (format!("{attn}.k_proj"), kv_dim),
                    (format!("{attn}.v_proj"), kv_dim),
                ],
                vec![
                    (format!("{mlp}.gate_proj"), c.intermediate_size),
                    (format!("{mlp}.up_proj"), c.intermediate_size),
                ],
            )
        };
        Self {
            qkv: spec(format!("{attn}.qkv_proj"), qkv_parts, d, c.qkv_bias),
            out: spec(
                format!("{attn}.o_proj"),
                vec![(format!("{attn}.o_proj"), d)],
                q_dim,
                false,
            ),
            gate_up: spec(format!("{mlp}.gate_up_proj"), gate_up_parts, d, false),
            down: spec(
                format!("{mlp}.down_proj"),
                vec![(format!("{mlp}.down_proj"), d)],
                c.intermediate_size,
                false,
            ),
        }
    }

    pub fn into_array(self) -> [LinearSpec; 4] {
        [self.qkv, self.out, self.gate_up, self.down]
    }
}

/// The LM head: its own weight, or the transposed embedding table when tied (the
/// embedding itself stays f32 either way; only this copy is ever quantized).
pub fn lm_head(c: &ModelConfig) -> LinearSpec {
    let source = if c.tie_word_embeddings {
        "model.embed_tokens"
    } else {
        "lm_head"
    };
    LinearSpec {
        name: "lm_head".into(),
        parts: vec![(source.into(), c.vocab_size)],
        in_features: c.hidden_size,
        bias: false,
    }
}

/// Every linear layer of the model, decoder layers in order, then the LM head.
pub fn all(c: &ModelConfig) -> Vec<LinearSpec> {
    (0..c.num_layers)
        .flat_map(|i| LayerLinears::of(c, i).into_array())
        .chain(std::iter::once(lm_head(c)))
        .collect()
}

impl LinearSpec {
    pub fn out_features(&self) -> usize {
        self.parts.iter().map(|(_, out)| out).sum()
    }

    /// Reads the parts as one fused `[in, out]` f32 matrix.
    pub fn read_f32(&self, weights: &WeightFiles) -> Result<Vec<f32>> {
        let parts = self
            .parts
            .iter()
            .map(|(name, out)| weights.read(&format!("{name}.weight"), &[*out, self.in_features]))
            .collect::<Result<Vec<_>>>()?;
        let slices: Vec<(&[f32], usize)> = parts
            .iter()
            .zip(&self.parts)
            .map(|(values, (_, out))| (values.as_slice(), *out))
            .collect();
        Ok(transpose_and_concat(&slices, self.in_features))
    }

    /// Quantizes the parts into one fused packed int8 matrix, holding one part's f32
    /// values at a time. `importance` is the mean square of each input channel (see
    /// [`crate::quant::calibration`]); `None` weighs every channel alike.
    pub fn quantize(
        &self,
        weights: &WeightFiles,
        importance: Option<&[f32]>,
    ) -> Result<PackedInt8> {
        let mut builder = PackedInt8Builder::new(self.in_features, self.out_features(), importance);
        for (name, out) in &self.parts {
            let part = weights.read(&format!("{name}.weight"), &[*out, self.in_features])?;
            builder.push_part(&part, *out);
        }
        Ok(builder.finish())
    }

    /// The fused bias, if the layer has one (always f32).
    pub fn read_bias(&self, weights: &WeightFiles) -> Result<Option<Vec<f32>>> {
        if !self.bias {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(self.out_features());
        for (name, out) in &self.parts {
            values.extend(weights.read(&format!("{name}.bias"), &[*out])?);
        }
        Ok(Some(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture_config(name: &str) -> ModelConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        ModelConfig::from_dir(&dir.join(name)).unwrap()
    }

    #[test]
    fn lists_four_linears_per_layer_then_the_head() {
        let c = fixture_config("qwen2-bias");
        let specs = all(&c);
        assert_eq!(specs.len(), 4 * c.num_layers + 1);
        assert_eq!(specs[0].name, "model.layers.0.self_attn.qkv_proj");
        assert!(specs[0].bias && !specs[1].bias);
        assert_eq!(
            specs[0].out_features(),
            (c.num_heads + 2 * c.num_kv_heads) * c.head_dim
        );
        assert_eq!(specs[2].out_features(), 2 * c.intermediate_size);
        assert_eq!(specs.last().unwrap().name, "lm_head");
    }

    #[test]
    fn tied_head_reads_the_embedding_table() {
        let c = fixture_config("llama3-tied");
        assert!(c.tie_word_embeddings);
        assert_eq!(lm_head(&c).parts[0].0, "model.embed_tokens");
    }
}
