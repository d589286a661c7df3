//! How much memory a pair needs: both models' weights at the chosen
//! precision plus both KV caches at the chosen context length.
//!
//! The count follows how Tandem stores a model, not how the hub ships it
//! (bf16): weights are widened to f32 on load, or, with int8, every linear
//! layer's matrix (the output head included) becomes one byte per weight
//! plus an f16 scale per output channel and block of 16 inputs and an f32 one
//! per channel (the CPU engine's packed layout), while embeddings, norms and
//! biases stay f32. A head tied to the embeddings is still loaded as its own
//! (transposed) matrix, so it counts next to the embedding table even though
//! `parameter_count` counts it once. The KV cache is f32, and a sliding-window
//! layer's holds only its window (plus a margin), as the CPU engine's does.

use serde::{Deserialize, Serialize};
use tandem_model::cpu::attention::{layer_slots, positions_held};
use tandem_model::families::linears;
use tandem_model::{quant, ModelConfig, Precision};

const F32_BYTES: u64 = 4;
const F16_BYTES: u64 = 2;

/// `Precision` as "f32" / "f16" / "int8" in JSON (the model crate's type has no
/// serde, and needs none).
pub(crate) mod precision_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use tandem_model::Precision;

    pub fn serialize<S: Serializer>(precision: &Precision, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(precision)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// One model's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelMemory {
    pub parameters: u64,
    pub weight_bytes: u64,
    pub kv_cache_bytes: u64,
    /// Positions the cache holds: the requested context, or less where the
    /// model's `max_position_embeddings` is smaller (the loader caps it too).
    pub context_len: usize,
}

impl ModelMemory {
    pub fn total_bytes(&self) -> u64 {
        self.weight_bytes.saturating_add(self.kv_cache_bytes)
    }
}

/// Both models' needs. A model whose config could not be read is `None`
/// and missing from the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    #[serde(with = "precision_name")]
    pub precision: Precision,
    /// The context length asked for.
    pub context_len: usize,
    pub draft: Option<ModelMemory>,
    pub target: Option<ModelMemory>,
    pub total_bytes: u64,
}

impl MemoryEstimate {
    pub fn new(
        draft: Option<&ModelConfig>,
        target: Option<&ModelConfig>,
        precision: Precision,
        context_len: usize,
    ) -> MemoryEstimate {
        let draft = draft.map(|c| model_memory(c, precision, context_len));
        let target = target.map(|c| model_memory(c, precision, context_len));
        let total_bytes = draft
            .iter()
            .chain(&target)
            .map(ModelMemory::total_bytes)
            .fold(0, u64::saturating_add);
        MemoryEstimate {
            precision,
            context_len,
            draft,
            target,
            total_bytes,
        }
    }
}

/// Memory for one model at `precision` with a cache of `context_len` positions.
pub fn model_memory(config: &ModelConfig, precision: Precision, context_len: usize) -> ModelMemory {
    let context_len = context_len.min(config.max_position_embeddings);
    ModelMemory {
        parameters: config.parameter_count() as u64,
        weight_bytes: weight_bytes(config, precision),
        kv_cache_bytes: kv_cache_bytes(config, context_len),
        context_len,
    }
}

/// Bytes of the weights as loaded.
pub fn weight_bytes(config: &ModelConfig, precision: Precision) -> u64 {
    let linear = linear_shapes(config);
    // Saturating throughout: a parsed config is bounded so that nothing here comes
    // near u64::MAX, and a hand-built one must not wrap round to a small figure.
    let linear_weights = linear
        .iter()
        .map(|(inputs, outputs)| inputs.saturating_mul(*outputs))
        .fold(0, u64::saturating_add);
    let head = (config.vocab_size as u64).saturating_mul(config.hidden_size as u64);
    let untied_head = if config.tie_word_embeddings { 0 } else { head };
    // Embeddings, norms and biases: what the parameter count holds besides
    // the linear matrices (a tied head is inside the embeddings there).
    let other = (config.parameter_count() as u64).saturating_sub(
        linear_weights
            .saturating_sub(head)
            .saturating_add(untied_head),
    );
    let linear_bytes = match precision {
        Precision::F32 => linear_weights.saturating_mul(F32_BYTES),
        Precision::F16 => linear_weights.saturating_mul(F16_BYTES),
        // The packed layout the CPU engine holds: a byte per weight, an f16 scale per
        // output column and block of 16 inputs, an f32 scale per column.
        Precision::Int8 => linear
            .iter()
            .map(|&(i, o)| quant::PackedInt8::size_for(i as usize, o as usize) as u64)
            .fold(0, u64::saturating_add),
    };
    linear_bytes.saturating_add(other.saturating_mul(F32_BYTES))
}

/// `(inputs, outputs)` of every linear matrix as the loader builds them
/// (fused QKV and gate/up, then the output head, tied or not).
fn linear_shapes(config: &ModelConfig) -> Vec<(u64, u64)> {
    linears::all(config)
        .iter()
        .map(|spec| (spec.in_features as u64, spec.out_features() as u64))
        .collect()
}

/// Keys and values of every layer for `context_len` positions, in f32, as the CPU
/// engine holds them (`tandem_model::cpu::attention::KvCache::bytes_for`): a layer that
/// attends to a sliding window (Gemma 2/3, Mistral, Phi-3) keeps only the window plus a
/// rollback margin, in a ring written twice, when that is fewer positions than the
/// context; any other layer keeps every position.
pub fn kv_cache_bytes(config: &ModelConfig, context_len: usize) -> u64 {
    let per_position = [
        2,
        config.num_kv_heads as u64,
        config.head_dim as u64,
        F32_BYTES,
    ]
    .into_iter()
    .fold(1, u64::saturating_mul);
    cached_positions(config, context_len).saturating_mul(per_position)
}

/// Positions the caches of all layers hold together. The layers past `config.layers`
/// (a hand-built config may claim absurdly many) are full ones, counted at once.
fn cached_positions(config: &ModelConfig, context_len: usize) -> u64 {
    let listed = config.layers.len().min(config.num_layers);
    let rest = (config.num_layers - listed) as u64;
    (0..listed)
        .map(|i| positions_held(config.layer_window(i), context_len) as u64)
        .fold(0, u64::saturating_add)
        .saturating_add(rest.saturating_mul(positions_held(None, context_len) as u64))
}

/// How many of the decoder's layers attend to a sliding window smaller than
/// `context_len` (their caches stay small however long the conversation).
pub fn sliding_layers(config: &ModelConfig, context_len: usize) -> usize {
    (0..config.layers.len().min(config.num_layers))
        .filter(|&i| layer_slots(config.layer_window(i), context_len).1)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tandem_model::cpu::attention::ROLLBACK;

    fn fixture(name: &str) -> ModelConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name);
        ModelConfig::from_dir(&dir).unwrap()
    }

    /// llama-gqa: hidden 64, 2 layers, 4 heads / 2 KV heads of 16, MLP 128,
    /// vocab 384, untied head, max_position_embeddings 256.
    #[test]
    fn matches_a_hand_count_for_llama_gqa() {
        let config = fixture("llama-gqa");
        // Per layer: q 64·64 + k 64·32 + v 64·32 + o 64·64 + 3 · 64·128 = 36 864.
        let linear = 2 * 36_864 + 384 * 64; // + untied head = 98 304
                                            // Embeddings 384·64 + two norms of 64 per layer + the final norm.
        let other = 384 * 64 + 2 * 2 * 64 + 64; // 24 896
        assert_eq!(config.parameter_count(), linear + other);

        assert_eq!(weight_bytes(&config, Precision::F32), 4 * 123_200);
        // f16 halves the linear layers only.
        assert_eq!(
            weight_bytes(&config, Precision::F16),
            (2 * linear + 4 * other) as u64
        );
        // f16 block scales: blocks of 16 input rows × output columns. Per layer: qkv
        // 4·128, o 4·64, gate/up 4·256, down 8·64 = 2304; two layers plus the head's
        // 4·384. f32 column scales: per layer 128 + 64 + 256 + 64, plus the head's 384.
        let scales = 2 * 2304 + 4 * 384;
        let columns = 2 * 512 + 384;
        assert_eq!(
            weight_bytes(&config, Precision::Int8),
            (linear + 2 * scales + 4 * columns + 4 * other) as u64
        );
        assert_eq!(weight_bytes(&config, Precision::Int8), 215_808);

        // 2 layers · (K and V) · 2 KV heads · 16 · 4 bytes = 512 bytes a position.
        assert_eq!(kv_cache_bytes(&config, 100), 51_200);
        // The cache is capped at max_position_embeddings (256).
        let memory = model_memory(&config, Precision::F32, 4096);
        assert_eq!(memory.context_len, 256);
        assert_eq!(memory.kv_cache_bytes, 512 * 256);
        assert_eq!(memory.total_bytes(), 492_800 + 131_072);
    }

    #[test]
    fn qwen2_biases_stay_f32_and_a_tied_head_is_a_copy() {
        // qwen2-bias: as llama-gqa plus q/k/v biases (64 + 32 + 32 per layer).
        let qwen = fixture("qwen2-bias");
        assert_eq!(qwen.parameter_count(), 123_200 + 2 * 128);
        assert_eq!(weight_bytes(&qwen, Precision::Int8), 215_808 + 4 * 2 * 128);

        // llama3-tied: hidden 64, 4 heads of 32 (q 128), 1 KV head (kv 32),
        // MLP 128, vocab 384. The parameter count holds the table once; the
        // loader also keeps a transposed copy as the head.
        let tied = fixture("llama3-tied");
        let per_layer = 64 * 128 + 2 * 64 * 32 + 128 * 64 + 3 * 64 * 128; // 45 056
        let other = 384 * 64 + 2 * 2 * 64 + 64; // embeddings + norms = 24 896
        assert_eq!(tied.parameter_count(), 2 * per_layer + other);
        let head = 384 * 64;
        assert_eq!(
            weight_bytes(&tied, Precision::F32),
            4 * (2 * per_layer + head + other) as u64
        );
        // Block scales (blocks of 16 rows) per layer: qkv 4·192, o 8·64, gate/up 4·256,
        // down 8·64 = 2816; the head's 4·384. Columns per layer 192 + 64 + 256 + 64.
        let scales = 2 * 2816 + 4 * 384;
        let columns = 2 * 576 + 384;
        assert_eq!(
            weight_bytes(&tied, Precision::Int8),
            (2 * per_layer + head + 2 * scales + 4 * columns + 4 * other) as u64
        );
    }

    #[test]
    fn cache_sizes_saturate_rather_than_wrap() {
        // Hand-built (a parsed config is bounded): a wrapped product would look small.
        let mut config = fixture("llama-gqa");
        config.num_layers = usize::MAX / 2;
        assert_eq!(kv_cache_bytes(&config, 1 << 40), u64::MAX);
        let memory = ModelMemory {
            parameters: 0,
            weight_bytes: u64::MAX,
            kv_cache_bytes: 1,
            context_len: 1,
        };
        assert_eq!(memory.total_bytes(), u64::MAX);
    }

    /// A Gemma 3 1B-like config: 26 layers, 5 sliding (window 512) to 1 full.
    fn gemma3_like(layer_types: Option<Vec<&str>>) -> ModelConfig {
        let dir = tempfile::tempdir().unwrap();
        let mut config = serde_json::json!({
            "architectures": ["Gemma3ForCausalLM"],
            "hidden_size": 1152, "intermediate_size": 6912, "num_hidden_layers": 26,
            "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
            "vocab_size": 262144, "max_position_embeddings": 32768,
            "sliding_window": 512, "sliding_window_pattern": 6,
            "query_pre_attn_scalar": 256, "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0, "torch_dtype": "bfloat16",
            "bos_token_id": 2, "eos_token_id": [1, 106]
        });
        if let Some(types) = layer_types {
            config["layer_types"] = serde_json::json!(types);
        }
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        ModelConfig::from_dir(dir.path()).unwrap()
    }

    #[test]
    fn sliding_window_layers_need_less_cache() {
        let mixed = gemma3_like(None);
        let full = gemma3_like(Some(vec!["full_attention"; 26]));
        assert_eq!(sliding_layers(&mixed, 4096), 22);
        assert_eq!(sliding_layers(&full, 4096), 0);
        // Per position and layer: K and V · 1 KV head · 256 · 4 bytes = 2 KiB.
        let per_layer = 2 * 256 * 4;
        assert_eq!(kv_cache_bytes(&full, 4096), 26 * 4096 * per_layer);
        // 4 full layers keep 4096 positions; 22 sliding ones a ring of 2 · (512 + 32).
        let ring = 2 * (512 + ROLLBACK) as u64;
        assert_eq!(
            kv_cache_bytes(&mixed, 4096),
            (4 * 4096 + 22 * ring) * per_layer
        );
        assert!(kv_cache_bytes(&mixed, 4096) < kv_cache_bytes(&full, 4096) / 2);
        // Exactly what the CPU engine allocates.
        let windows: Vec<Option<usize>> = (0..mixed.num_layers)
            .map(|i| mixed.layer_window(i))
            .collect();
        assert_eq!(
            kv_cache_bytes(&mixed, 4096),
            tandem_model::cpu::attention::KvCache::bytes_for(&windows, 4096, 1, 256) as u64
        );
        // A context no longer than window + margin: every layer keeps the whole context.
        assert_eq!(sliding_layers(&mixed, 512 + ROLLBACK), 0);
        assert_eq!(
            kv_cache_bytes(&mixed, 512 + ROLLBACK),
            kv_cache_bytes(&full, 512 + ROLLBACK)
        );
        let memory = MemoryEstimate::new(Some(&mixed), Some(&full), Precision::Int8, 4096);
        let (draft, target) = (memory.draft.unwrap(), memory.target.unwrap());
        assert_eq!(draft.weight_bytes, target.weight_bytes);
        assert!(draft.total_bytes() < target.total_bytes());
    }

    #[test]
    fn estimate_sums_both_models_and_skips_unknown_ones() {
        let config = fixture("llama-gqa");
        let both = MemoryEstimate::new(Some(&config), Some(&config), Precision::F32, 128);
        let one = model_memory(&config, Precision::F32, 128);
        assert_eq!(both.total_bytes, 2 * one.total_bytes());
        let only_target = MemoryEstimate::new(None, Some(&config), Precision::F32, 128);
        assert_eq!(only_target.total_bytes, one.total_bytes());
        assert_eq!(only_target.draft, None);
    }
}
