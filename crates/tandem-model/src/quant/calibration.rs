//! Calibration for int8: how much signal each input channel of each linear layer
//! carries, measured by running a short built-in text through the f32 model.
//!
//! The quantizer weighs each weight's rounding error by the mean square of the input
//! channel it multiplies (see [`crate::quant`]). The measurement runs one decoder layer
//! at a time, loading that layer's f32 weights, passing the hidden states of the whole
//! text through it and dropping it: peak memory is one f32 layer plus the embedding
//! table, so a model too large to hold in f32 can still be calibrated.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Tensor;

use crate::backends::TandemBackend;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::families::kv_cache::KvCache;
use crate::families::layers::tensor2;
use crate::families::linears::{self, LayerLinears};
use crate::families::llama::{self, load_norm, DecoderLayer, LayerPositions, LinearSite, RopeSet};
use crate::formats::safetensors::WeightFiles;
use crate::tokenizer::Tokenizer;

/// The calibration text: prose, code, SQL, a recipe, a letter and a chat turn, written
/// for Tandem (none of it is the text the accuracy tests measure on).
pub const CALIBRATION_TEXT: &str = include_str!("calibration.txt");

/// Token count of the synthetic calibration used when a model has no tokenizer.
const SYNTHETIC_TOKENS: usize = 256;

/// The token ids a calibration pass runs, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationTokens {
    pub ids: Vec<u32>,
    /// `"built-in text"` or `"synthetic ids"`, for the int8 cache's metadata.
    pub source: &'static str,
}

impl CalibrationTokens {
    /// [`CALIBRATION_TEXT`] in the model's tokenizer when `dir` has one; otherwise
    /// seeded pseudo-random ids over the vocabulary (tiny test models have no
    /// tokenizer). At most `max_position_embeddings` tokens.
    pub fn for_model(dir: Option<&Path>, config: &ModelConfig) -> Self {
        let text = dir
            .and_then(|dir| Tokenizer::from_dir(dir).ok())
            .and_then(|tokenizer| tokenizer.encode(CALIBRATION_TEXT).ok())
            .filter(|ids| !ids.is_empty() && ids.iter().all(|&t| (t as usize) < config.vocab_size));
        let (mut ids, source) = match text {
            Some(ids) => (ids, "built-in text"),
            None => (synthetic_ids(config.vocab_size), "synthetic ids"),
        };
        ids.truncate(config.max_position_embeddings.max(1));
        Self { ids, source }
    }
}

/// Seeded pseudo-random ids in `0..vocab_size` (a fixed LCG: the same every run).
fn synthetic_ids(vocab_size: usize) -> Vec<u32> {
    let mut state: u64 = 0x5EED_1234_ABCD_0001;
    (0..SYNTHETIC_TOKENS)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % vocab_size.max(1) as u64) as u32
        })
        .collect()
}

/// Per linear layer (by [`LinearSpec`](crate::families::linears::LinearSpec) name), the mean
/// square of each input channel over the calibration tokens.
#[derive(Debug, Clone, Default)]
pub struct Importance {
    by_linear: HashMap<String, Vec<f32>>,
    /// Where the calibration tokens came from and how many there were; empty for
    /// [`uniform`](Self::uniform).
    pub description: String,
}

impl Importance {
    /// No measurement: every channel of every layer weighs the same.
    pub fn uniform() -> Self {
        Self {
            by_linear: HashMap::new(),
            description: "none".into(),
        }
    }

    /// The importance of each input channel of the linear layer `name`, if measured.
    pub fn of(&self, name: &str) -> Option<&[f32]> {
        self.by_linear.get(name).map(Vec::as_slice)
    }

    /// Records the mean square of each column of `x` (`[n, in]`) for layer `name`.
    fn record<B: TandemBackend>(&mut self, name: String, x: &Tensor<B, 2>) {
        let [n, _] = x.dims();
        let sums = (x.clone() * x.clone()).sum_dim(0);
        let values = sums.into_data().convert::<f32>().into_vec::<f32>();
        let means = values
            .expect("f32 after convert")
            .into_iter()
            .map(|s| s / n.max(1) as f32)
            .collect();
        self.by_linear.insert(name, means);
    }
}

/// Runs `tokens` through the f32 model one decoder layer at a time and records the mean
/// square of every input channel of every linear layer, the LM head included.
pub fn measure<B: TandemBackend>(
    config: &ModelConfig,
    weights: &WeightFiles,
    tokens: &CalibrationTokens,
    device: &B::Device,
) -> Result<Importance> {
    let c = config;
    let ids = &tokens.ids;
    let n = ids.len();
    if n == 0 {
        return Err(ModelError::InvalidArgument(
            "calibration needs at least one token".into(),
        ));
    }
    let d = c.hidden_size;
    let mut importance = Importance {
        by_linear: HashMap::new(),
        description: format!("{}, {n} tokens", tokens.source),
    };

    let embed = weights.read("model.embed_tokens.weight", &[c.vocab_size, d])?;
    let mut rows = Vec::with_capacity(n * d);
    for &id in ids {
        let id = id as usize;
        if id >= c.vocab_size {
            return Err(ModelError::TokenOutOfRange {
                token: id as u32,
                vocab_size: c.vocab_size,
            });
        }
        rows.extend_from_slice(&embed[id * d..(id + 1) * d]);
    }
    drop(embed);
    let mut x = llama::embed(c, tensor2::<B>(rows, n, d, device));

    let ropes = RopeSet::<B>::new(c, n, device);
    // One forward over every token: LongRoPE's long tables if they outgrow its switch.
    let long = c.longrope_switch().is_some_and(|switch| n > switch);
    let mut positions = LayerPositions::new(0, n, long);
    for i in 0..c.num_layers {
        let layer = DecoderLayer::<B>::load(c, i, weights, None, false, device)?;
        let names = LayerLinears::of(c, i);
        let mut cache = KvCache::new(1, n, c.num_kv_heads, c.head_dim, device);
        let mut probe = |site: LinearSite, input: &Tensor<B, 2>| {
            let name = match site {
                LinearSite::Qkv => &names.qkv.name,
                LinearSite::Out => &names.out.name,
                LinearSite::GateUp => &names.gate_up.name,
                LinearSite::Down => &names.down.name,
            };
            importance.record(name.clone(), input);
        };
        let (rope, mask) = positions.of(c, &layer, &ropes, device);
        x = layer.forward(
            c,
            x,
            rope.as_ref(),
            mask.as_ref(),
            &mut cache,
            0,
            &mut probe,
        );
    }
    let norm = load_norm::<B>(c, weights, "model.norm.weight", device)?;
    importance.record(linears::lm_head(c).name, &norm.forward(x));
    Ok(importance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Flex;
    use crate::test_models::fixture_dir;

    fn fixture(name: &str) -> (ModelConfig, WeightFiles) {
        let dir = fixture_dir(name);
        (
            ModelConfig::from_dir(&dir).unwrap(),
            WeightFiles::open(&dir).unwrap(),
        )
    }

    #[test]
    fn every_linear_gets_one_finite_value_per_input_channel() {
        for name in ["llama-gqa", "qwen2-bias", "mistral-linear", "llama3-tied"] {
            let (config, weights) = fixture(name);
            let tokens = CalibrationTokens::for_model(None, &config);
            assert_eq!(tokens.source, "synthetic ids");
            let importance =
                measure::<Flex>(&config, &weights, &tokens, &Default::default()).unwrap();
            for spec in linears::all(&config) {
                let values = importance
                    .of(&spec.name)
                    .unwrap_or_else(|| panic!("{}", spec.name));
                assert_eq!(values.len(), spec.in_features, "{name} {}", spec.name);
                assert!(
                    values.iter().all(|v| v.is_finite() && *v >= 0.0)
                        && values.iter().any(|v| *v > 0.0),
                    "{name} {}",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn first_layer_importance_is_the_mean_square_of_the_normed_embeddings() {
        // Computed by hand: qkv_proj of layer 0 sees RMSNorm(embedding rows) · gamma.
        let (config, weights) = fixture("llama-gqa");
        let d = config.hidden_size;
        let tokens = CalibrationTokens {
            ids: vec![3, 1, 4, 1, 5, 9, 2, 6],
            source: "synthetic ids",
        };
        let importance = measure::<Flex>(&config, &weights, &tokens, &Default::default()).unwrap();
        let embed = weights
            .read("model.embed_tokens.weight", &[config.vocab_size, d])
            .unwrap();
        let gamma = weights
            .read("model.layers.0.input_layernorm.weight", &[d])
            .unwrap();
        let mut want = vec![0.0f64; d];
        for &t in &tokens.ids {
            let row = &embed[t as usize * d..][..d];
            let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d as f64;
            let r = 1.0 / (ms + config.rms_norm_eps).sqrt();
            for ((w, &v), &g) in want.iter_mut().zip(row).zip(&gamma) {
                *w += (v as f64 * r * g as f64).powi(2) / tokens.ids.len() as f64;
            }
        }
        let got = importance.of("model.layers.0.self_attn.qkv_proj").unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * w.abs().max(1e-3),
                "{g} vs {w}"
            );
        }
        assert_eq!(importance.description, "synthetic ids, 8 tokens");
    }

    #[test]
    fn synthetic_ids_are_reproducible_and_in_range() {
        let a = synthetic_ids(100);
        assert_eq!(a, synthetic_ids(100));
        assert_eq!(a.len(), SYNTHETIC_TOKENS);
        assert!(a.iter().all(|&t| t < 100));
        assert!(a.iter().collect::<std::collections::HashSet<_>>().len() > 50);
    }
}
