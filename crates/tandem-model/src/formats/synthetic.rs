//! Synthetic models: the exact shapes of well-known models with seeded random weights,
//! made in memory as they are read, so a speed measurement of an 8B model needs no
//! 16 GB download and no file to carry to a GPU machine. Speed does not depend on the
//! weight values; what such a model says is noise.
//!
//! A synthetic model is read through [`WeightFiles::synthetic`] like a checkpoint: the
//! loaders ask for tensors by name and shape, and each is generated from the seed and
//! its name (the same tensor whatever the order of reads): norm weights 1, every other
//! weight uniform with standard deviation 0.02 (transformers' `initializer_range`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde_json::{json, Value};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::formats::safetensors::WeightFiles;

/// The shapes a synthetic model can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntheticModel {
    /// A two-layer Llama 3 of hidden size 64: dry runs and tests.
    Tiny,
    /// Llama 3.2 1B's shapes (16 layers, hidden 2048, GQA 32/8, 128k vocabulary, tied).
    Llama32_1b,
    /// Llama 3.1 8B's shapes (32 layers, hidden 4096, GQA 32/8, 128k vocabulary).
    Llama31_8b,
}

impl SyntheticModel {
    pub const ALL: [SyntheticModel; 3] = [Self::Tiny, Self::Llama32_1b, Self::Llama31_8b];

    pub fn name(self) -> &'static str {
        match self {
            Self::Tiny => "tiny",
            Self::Llama32_1b => "llama-3.2-1b",
            Self::Llama31_8b => "llama-3.1-8b",
        }
    }

    /// The model's `config.json`, as its checkpoint on the hub has it (the fields the
    /// loader reads).
    fn config_json(self) -> Value {
        // (hidden, intermediate, layers, heads, kv heads, vocab, tied, max positions)
        let (hidden, intermediate, layers, heads, kv_heads, vocab, tied, positions) = match self {
            Self::Tiny => (64, 128, 2, 4, 2, 512, true, 1024),
            Self::Llama32_1b => (2048, 8192, 16, 32, 8, 128_256, true, 131_072),
            Self::Llama31_8b => (4096, 14_336, 32, 32, 8, 128_256, false, 131_072),
        };
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": hidden / heads,
            "vocab_size": vocab,
            "tie_word_embeddings": tied,
            "max_position_embeddings": positions,
            "hidden_act": "silu",
            "rms_norm_eps": 1e-5,
            "rope_theta": 500_000.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 32.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192
            },
            "attention_bias": false,
            "mlp_bias": false,
            "bos_token_id": 128_000,
            "eos_token_id": 128_001
        })
    }

    /// The model's config, parsed by the same code as a checkpoint's.
    pub fn config(self) -> Result<ModelConfig> {
        let Value::Object(map) = self.config_json() else {
            unreachable!("a JSON object literal")
        };
        ModelConfig::from_map(&self.source_path(), &map)
    }

    /// The config and weights of the model with weights drawn from `seed`.
    pub fn open(self, seed: u64) -> Result<(ModelConfig, WeightFiles)> {
        Ok((
            self.config()?,
            WeightFiles::synthetic(SyntheticWeights::new(self, seed)),
        ))
    }

    /// What errors name as the model's file.
    fn source_path(self) -> PathBuf {
        PathBuf::from(format!("synthetic:{}", self.name()))
    }
}

impl fmt::Display for SyntheticModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SyntheticModel {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                ModelError::InvalidArgument(format!(
                    "no synthetic model named {name:?} (known: {})",
                    known.join(", ")
                ))
            })
    }
}

/// Seeded weights generated on read (see the module docs).
pub struct SyntheticWeights {
    model: SyntheticModel,
    seed: u64,
}

/// Standard deviation of the generated weights.
const STD: f32 = 0.02;

impl SyntheticWeights {
    pub fn new(model: SyntheticModel, seed: u64) -> Self {
        Self { model, seed }
    }

    /// The tensor `name` of `shape`: ones for a norm's weight, else uniform values with
    /// standard deviation [`STD`] from a stream seeded by the seed and the name.
    pub(crate) fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_TENSOR_VALUES)
            .ok_or_else(|| {
                ModelError::InvalidArgument(format!(
                    "{}: tensor `{name}` of shape {shape:?} is too large to generate",
                    self.model.source_path().display()
                ))
            })?;
        if name.ends_with("norm.weight") {
            return Ok(vec![1.0; len]);
        }
        // Uniform on [−a, a) has standard deviation a / √3.
        let half_width = STD * 3f32.sqrt();
        let stream = self.seed ^ fnv1a(name.as_bytes());
        let mut values = vec![0.0f32; len];
        // Blocks of their own streams, so the threads can share the work (an 8B model
        // is 8 G values) and the values do not depend on the thread count.
        let fill = |first_block: usize, out: &mut [f32]| {
            for (b, block) in out.chunks_mut(STREAM_BLOCK).enumerate() {
                let mut state = stream ^ split_mix64(&mut ((first_block + b) as u64));
                for v in block {
                    // The top 24 bits of a SplitMix64 output: uniform in [0, 1).
                    let unit = (split_mix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32;
                    *v = (2.0 * unit - 1.0) * half_width;
                }
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let blocks_per_thread = len.div_ceil(STREAM_BLOCK).div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for (t, part) in values
                .chunks_mut(blocks_per_thread * STREAM_BLOCK)
                .enumerate()
            {
                scope.spawn(move || fill(t * blocks_per_thread, part));
            }
        });
        Ok(values)
    }
}

/// Values drawn from one stream: 64 Ki.
const STREAM_BLOCK: usize = 1 << 16;

/// The most values one generated tensor may have: Llama 3.1 8B's largest, its 128k × 4096
/// embedding, is 0.53 G.
const MAX_TENSOR_VALUES: usize = 1 << 30;

/// SplitMix64's next output (Steele, Lea and Flood's generator, as `java.util.SplittableRandom`).
fn split_mix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a of `bytes`: a tensor name's share of its seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuModel;
    use crate::LoadOptions;

    #[test]
    fn the_presets_have_the_real_models_shapes() {
        let c = SyntheticModel::Llama31_8b.config().unwrap();
        assert_eq!(
            (
                c.hidden_size,
                c.num_layers,
                c.num_heads,
                c.num_kv_heads,
                c.vocab_size
            ),
            (4096, 32, 32, 8, 128_256)
        );
        // 8.03 B parameters, as Meta counts Llama 3.1 8B.
        let billions = c.parameter_count() as f64 / 1e9;
        assert!((billions - 8.03).abs() < 0.01, "{billions}");
        let c = SyntheticModel::Llama32_1b.config().unwrap();
        assert!(c.tie_word_embeddings);
        let billions = c.parameter_count() as f64 / 1e9;
        assert!((billions - 1.24).abs() < 0.01, "{billions}");
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_listed() {
        for m in SyntheticModel::ALL {
            assert_eq!(m.name().parse::<SyntheticModel>().unwrap(), m);
        }
        let err = "llama-9b"
            .parse::<SyntheticModel>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("llama-9b") && err.contains("llama-3.1-8b"),
            "{err}"
        );
    }

    #[test]
    fn weights_depend_on_seed_and_name_only() {
        let a = SyntheticWeights::new(SyntheticModel::Tiny, 7);
        let x = a
            .read("model.layers.0.mlp.up_proj.weight", &[128, 64])
            .unwrap();
        assert_eq!(
            x,
            a.read("model.layers.0.mlp.up_proj.weight", &[128, 64])
                .unwrap()
        );
        assert_ne!(
            x,
            a.read("model.layers.1.mlp.up_proj.weight", &[128, 64])
                .unwrap()
        );
        let b = SyntheticWeights::new(SyntheticModel::Tiny, 8);
        assert_ne!(
            x,
            b.read("model.layers.0.mlp.up_proj.weight", &[128, 64])
                .unwrap()
        );
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let std = (x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.002 && (std - STD).abs() < 0.002,
            "{mean} {std}"
        );
        let norm = a
            .read("model.layers.0.input_layernorm.weight", &[64])
            .unwrap();
        assert!(norm.iter().all(|&v| v == 1.0));
        let err = a.read("x", &[1 << 20, 1 << 20]).unwrap_err().to_string();
        assert!(
            err.contains("synthetic:tiny") && err.contains("`x`"),
            "{err}"
        );
    }

    #[test]
    fn a_synthetic_model_runs_on_the_cpu_engine() {
        let (config, weights) = SyntheticModel::Tiny.open(1).unwrap();
        let options = LoadOptions {
            context_len: Some(64),
            ..Default::default()
        };
        let mut model = CpuModel::from_weights(config, &weights, &options).unwrap();
        let logits = model.forward_tail(&[1, 2, 3], 1).unwrap();
        assert_eq!(logits.len(), 512);
        assert!(logits.iter().all(|v| v.is_finite()));
    }
}
