//! What a GGUF file's metadata and tensor names mean in Tandem's (Hugging Face's) terms:
//! the `config.json` its keys stand for, the checkpoint name of each tensor, and the
//! row order llama.cpp's converter gave Q and K.
//!
//! The configuration is built as the `config.json` object transformers would read and
//! parsed by the same code as a real one, so a GGUF model passes the same checks and
//! bounds as a safetensors folder and each error names the GGUF key it came from.

use serde_json::{json, Map, Value};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::formats::gguf::{GgufFile, GgufValue};

/// `general.architecture` values Tandem loads, with the Hugging Face class each is.
const ARCHITECTURES: [(&str, &str); 2] =
    [("llama", "LlamaForCausalLM"), ("qwen2", "Qwen2ForCausalLM")];

/// The Hugging Face `config.json` object that a GGUF file's metadata describes.
pub fn hf_config(file: &GgufFile) -> Result<Map<String, Value>> {
    let bad = |key: &str, reason: String| ModelError::BadField {
        path: file.path().to_path_buf(),
        field: key.to_string(),
        reason,
    };
    let arch = file
        .architecture()
        .ok_or_else(|| bad("general.architecture", "missing (not a model file?)".into()))?;
    let class = ARCHITECTURES
        .iter()
        .find(|(name, _)| *name == arch)
        .map(|(_, class)| *class)
        .ok_or_else(|| {
            let known: Vec<&str> = ARCHITECTURES.iter().map(|(n, _)| *n).collect();
            bad(
                "general.architecture",
                format!(
                    "`{arch}` is not supported (supported: {})",
                    known.join(", ")
                ),
            )
        })?;
    let key = |name: &str| format!("{arch}.{name}");
    let int = |name: &str| -> Result<Option<u64>> {
        match file.get(&key(name)) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                bad(
                    &key(name),
                    format!("expected a non-negative integer, got a {}", v.type_name()),
                )
            }),
        }
    };
    let float = |name: &str| -> Result<Option<f64>> {
        match file.get(&key(name)) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                bad(
                    &key(name),
                    format!("expected a number, got a {}", v.type_name()),
                )
            }),
        }
    };
    let required =
        |name: &str| -> Result<u64> { int(name)?.ok_or_else(|| bad(&key(name), "missing".into())) };

    let mut config = Map::new();
    config.insert("architectures".into(), json!([class]));
    config.insert("model_type".into(), json!(arch));
    config.insert("hidden_size".into(), json!(required("embedding_length")?));
    config.insert(
        "intermediate_size".into(),
        json!(required("feed_forward_length")?),
    );
    config.insert("num_hidden_layers".into(), json!(required("block_count")?));
    let heads = required("attention.head_count")?;
    config.insert("num_attention_heads".into(), json!(heads));
    config.insert(
        "num_key_value_heads".into(),
        json!(int("attention.head_count_kv")?.unwrap_or(heads)),
    );
    if let Some(head_dim) = int("attention.key_length")? {
        config.insert("head_dim".into(), json!(head_dim));
        if let Some(value_dim) = int("attention.value_length")? {
            if value_dim != head_dim {
                return Err(bad(
                    &key("attention.value_length"),
                    format!("{value_dim} differs from attention.key_length {head_dim}; Tandem needs them equal"),
                ));
            }
        }
    }
    // A sliding window on a `llama` file is Mistral's attention (llama.cpp converts
    // Mistral as `llama`): Tandem's Mistral is exactly Llama with that window.
    if let Some(window) = int("attention.sliding_window")? {
        if arch != "llama" {
            return Err(bad(
                &key("attention.sliding_window"),
                format!("a sliding window on `{arch}` is not supported"),
            ));
        }
        config.insert("architectures".into(), json!(["MistralForCausalLM"]));
        config.insert("sliding_window".into(), json!(window));
    }
    if let Some(eps) = float("attention.layer_norm_rms_epsilon")? {
        config.insert("rms_norm_eps".into(), json!(eps));
    }
    config.insert(
        "rope_theta".into(),
        json!(float("rope.freq_base")?.unwrap_or(10_000.0)),
    );
    if let Some(context) = int("context_length")? {
        config.insert("max_position_embeddings".into(), json!(context));
    }
    match file.get(&key("rope.scaling.type")).map(|v| v.as_str()) {
        None | Some(Some("none")) => {}
        Some(Some("linear")) => {
            let factor = float("rope.scaling.factor")?.ok_or_else(|| {
                bad(
                    &key("rope.scaling.factor"),
                    "missing for linear scaling".into(),
                )
            })?;
            config.insert(
                "rope_scaling".into(),
                json!({"rope_type": "linear", "factor": factor}),
            );
        }
        Some(other) => {
            return Err(bad(
                &key("rope.scaling.type"),
                format!("{other:?} is not supported (supported: none, linear)"),
            ))
        }
    }
    let vocab = match file
        .get("tokenizer.ggml.tokens")
        .and_then(GgufValue::as_array)
    {
        Some(tokens) => tokens.len() as u64,
        None => int("vocab_size")?.ok_or_else(|| {
            bad(
                "tokenizer.ggml.tokens",
                "missing (and no vocab_size)".into(),
            )
        })?,
    };
    // The embedding table decides: a padded vocabulary is wider than the token list.
    let vocab = match file.tensor("token_embd.weight").map(|t| t.dims.as_slice()) {
        Some([_, rows]) => (*rows).max(vocab),
        _ => vocab,
    };
    config.insert("vocab_size".into(), json!(vocab));
    config.insert(
        "tie_word_embeddings".into(),
        json!(file.tensor("output.weight").is_none()),
    );
    if arch == "llama" && file.tensor("blk.0.attn_q.bias").is_some() {
        config.insert("attention_bias".into(), json!(true));
    }
    for (gguf_key, hf_key) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
    ] {
        if let Some(id) = file.get(gguf_key) {
            let id = id.as_u64().ok_or_else(|| {
                bad(
                    gguf_key,
                    format!("expected a token id, got a {}", id.type_name()),
                )
            })?;
            config.insert(hf_key.into(), json!(id));
        }
    }
    Ok(config)
}

/// The model configuration of a GGUF file (checked as a `config.json` is).
pub fn model_config(file: &GgufFile) -> Result<ModelConfig> {
    let mut config = ModelConfig::from_map(file.path(), &hf_config(file)?)?;
    if let Some(tensor) = file.tensor("rope_freqs.weight") {
        // Llama 3.1-style scaling: one divisor per frequency, precomputed by the converter.
        let bad = |reason: String| ModelError::BadField {
            path: file.path().to_path_buf(),
            field: "rope_freqs.weight".into(),
            reason,
        };
        let half = config.head_dim / 2;
        if tensor.dims != [half as u64] {
            return Err(bad(format!(
                "dims {:?}, expected [{half}] (head_dim / 2)",
                tensor.dims
            )));
        }
        let mut factors = vec![0.0f32; half];
        crate::quant::ggml::dequantize(tensor.ggml_type, file.tensor_bytes(tensor)?, &mut factors)
            .map_err(bad)?;
        if let Some(f) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
            return Err(bad(format!(
                "a factor of {f}: each must be positive and finite"
            )));
        }
        if config.rope_scaling != crate::config::RopeScaling::None {
            return Err(bad(
                "given with another RoPE scaling (rope.scaling.type)".into()
            ));
        }
        config.rope_scaling =
            crate::config::RopeScaling::Factors(factors.iter().map(|&f| f as f64).collect());
    }
    Ok(config)
}

/// The Hugging Face checkpoint name of a GGUF tensor (`blk.3.attn_q.weight` →
/// `model.layers.3.self_attn.q_proj.weight`), or `None` for one Tandem does not use.
pub fn hf_tensor_name(gguf_name: &str) -> Option<String> {
    let top = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = top {
        return Some(name.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, suffix) = rest.rsplit_once('.')?;
    let hf_part = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    matches!(suffix, "weight" | "bias").then(|| format!("model.layers.{layer}.{hf_part}.{suffix}"))
}

/// Whether llama.cpp's converter reordered this tensor's rows: the `llama` architecture's
/// Q and K weights (and biases), whose RoPE in ggml rotates adjacent pairs.
pub fn has_permuted_rows(architecture: &str, gguf_name: &str) -> bool {
    architecture == "llama"
        && [".attn_q.", ".attn_k."]
            .iter()
            .any(|part| gguf_name.contains(part))
}

/// Undoes the converter's row order for Q or K, in place: within each head, ggml's row
/// `2i + j` is Hugging Face's row `j · head_dim/2 + i` (ggml rotates pairs of adjacent
/// elements; transformers rotates the two halves of a head). `rows` is `[heads ·
/// head_dim, cols]` in GGUF's row order on entry and Hugging Face's on return.
pub fn unpermute_rows(rows: &mut [f32], heads: usize, cols: usize) {
    assert!(heads > 0 && cols > 0 && rows.len().is_multiple_of(heads * cols));
    let head_dim = rows.len() / (heads * cols);
    assert!(head_dim.is_multiple_of(2), "head size must be even");
    let half = head_dim / 2;
    let mut head = vec![0.0f32; head_dim * cols];
    for h in rows.chunks_exact_mut(head_dim * cols) {
        head.copy_from_slice(h);
        for i in 0..half {
            for j in 0..2 {
                let (from, to) = (2 * i + j, j * half + i);
                h[to * cols..(to + 1) * cols]
                    .copy_from_slice(&head[from * cols..(from + 1) * cols]);
            }
        }
    }
}

/// llama.cpp's name for a file's precision (`general.file_type`, its `llama_ftype`).
pub fn file_type_name(file_type: u64) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        _ => return None,
    })
}

/// What a GGUF file holds, for a listing of models on this computer.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufSummary {
    /// `general.architecture` (`llama`, `qwen2`, `clip`, …).
    pub architecture: Option<String>,
    /// `general.name`, when the file gives one.
    pub name: Option<String>,
    /// The file's precision as llama.cpp names it (`Q4_K_M`), else its most common
    /// tensor type.
    pub precision: String,
    /// Parameters (elements of all tensors).
    pub parameters: u64,
    /// Why Tandem cannot load it (`None`: it can).
    pub problem: Option<String>,
}

/// How many of a file's tensors have each storage type (`{"Q4_K": 12, "Q6_K": 12, …}`),
/// by name.
pub fn tensor_type_counts(file: &GgufFile) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for t in file.tensors() {
        *counts.entry(t.ggml_type.name()).or_insert(0) += 1;
    }
    counts
}

/// The file's precision as llama.cpp names it (`general.file_type`, e.g. `Q4_K_M`), else
/// its most common tensor type.
pub fn precision(file: &GgufFile) -> String {
    if let Some(name) = file
        .get("general.file_type")
        .and_then(GgufValue::as_u64)
        .and_then(file_type_name)
    {
        return name.to_string();
    }
    tensor_type_counts(file)
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or_else(|| "no tensors".into(), |(name, _)| name)
}

/// Reads what a GGUF file holds and whether Tandem can load it: the architecture, the
/// configuration, the tokenizer and every tensor's type must be ones it supports.
pub fn summarize(file: &GgufFile) -> GgufSummary {
    let unsupported: std::collections::BTreeSet<String> = file
        .tensors()
        .iter()
        .filter(|t| !crate::quant::ggml::is_supported(t.ggml_type))
        .map(|t| t.ggml_type.name())
        .collect();
    let problem = if matches!(
        file.get("general.type").and_then(GgufValue::as_str),
        Some("mmproj")
    ) || file.architecture() == Some("clip")
    {
        Some("a vision projector (mmproj), not a language model".to_string())
    } else if !unsupported.is_empty() {
        Some(format!(
            "tensor types {} are not supported (supported: {})",
            Vec::from_iter(unsupported).join(", "),
            crate::quant::ggml::SUPPORTED
        ))
    } else {
        let checks = model_config(file)
            .and_then(|_| crate::formats::gguf_tokenizer::tokenizer_json(file).map(|_| ()));
        checks.err().map(|e| match e {
            ModelError::BadField { field, reason, .. } => format!("{field}: {reason}"),
            other => other.to_string(),
        })
    };
    GgufSummary {
        architecture: file.architecture().map(str::to_string),
        name: file
            .get("general.name")
            .and_then(GgufValue::as_str)
            .map(str::to_string),
        precision: precision(file),
        parameters: file.tensors().iter().map(|t| t.elements()).sum(),
        problem,
    }
}

/// A GGUF file's tensors under their checkpoint names, read as the f32 `[out, in]`
/// matrices a safetensors checkpoint holds: dequantized one tensor at a time (never a
/// whole-model f32 copy), Q and K rows back in Hugging Face's order.
pub struct GgufWeights {
    file: GgufFile,
    /// Checkpoint name → index into the file's tensors.
    by_name: std::collections::HashMap<String, usize>,
    heads: usize,
    kv_heads: usize,
}

impl GgufWeights {
    /// The weights of `file`, whose configuration is `config` (for the head counts the
    /// Q/K row order depends on).
    pub fn new(file: GgufFile, config: &ModelConfig) -> Self {
        let by_name = file
            .tensors()
            .iter()
            .enumerate()
            .filter_map(|(i, t)| hf_tensor_name(&t.name).map(|name| (name, i)))
            .collect();
        Self {
            file,
            by_name,
            heads: config.num_heads,
            kv_heads: config.num_kv_heads,
        }
    }

    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Reads tensor `name` (a checkpoint name) as f32 and checks its shape
    /// (`expected_shape` in checkpoint order, `[out, in]`).
    pub fn read(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>> {
        let path = self.file.path();
        let tensor = self
            .by_name
            .get(name)
            .map(|&i| &self.file.tensors()[i])
            .ok_or_else(|| ModelError::MissingTensor {
                path: path.to_path_buf(),
                name: name.to_string(),
            })?;
        // GGUF lists dimensions fastest first: reversed, they are the checkpoint's.
        let shape: Vec<usize> = tensor.dims.iter().rev().map(|&d| d as usize).collect();
        if shape != expected_shape {
            return Err(ModelError::TensorShape {
                path: path.to_path_buf(),
                name: format!("{name} (`{}` in the file)", tensor.name),
                expected: expected_shape.to_vec(),
                actual: shape,
            });
        }
        let mut values = vec![0.0f32; shape.iter().product()];
        let bytes = self.file.tensor_bytes(tensor)?;
        crate::quant::ggml::dequantize(tensor.ggml_type, bytes, &mut values).map_err(|reason| {
            ModelError::CorruptGguf {
                path: path.to_path_buf(),
                reason: format!("tensor `{}`: {reason}", tensor.name),
            }
        })?;
        if has_permuted_rows(self.file.architecture().unwrap_or_default(), &tensor.name) {
            let heads = if tensor.name.contains(".attn_q.") {
                self.heads
            } else {
                self.kv_heads
            };
            let cols = if shape.len() == 2 { shape[1] } else { 1 };
            unpermute_rows(&mut values, heads, cols);
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::gguf::writer::{gguf_bytes, TensorToWrite};
    use crate::formats::gguf::GgmlType;

    /// llama.cpp's converter (`LlamaModel.permute`): HF rows → GGUF rows, per head.
    fn permute(hf: &[f32], heads: usize, cols: usize) -> Vec<f32> {
        let head_dim = hf.len() / heads / cols;
        let half = head_dim / 2;
        let mut out = vec![0.0; hf.len()];
        for h in 0..heads {
            for j in 0..2 {
                for i in 0..half {
                    let from = h * head_dim + j * half + i;
                    let to = h * head_dim + 2 * i + j;
                    out[to * cols..(to + 1) * cols]
                        .copy_from_slice(&hf[from * cols..(from + 1) * cols]);
                }
            }
        }
        out
    }

    #[test]
    fn unpermuting_undoes_the_converters_row_order() {
        let (heads, head_dim, cols) = (3, 8, 5);
        let hf: Vec<f32> = (0..heads * head_dim * cols).map(|v| v as f32).collect();
        let mut rows = permute(&hf, heads, cols);
        assert_ne!(rows, hf);
        unpermute_rows(&mut rows, heads, cols);
        assert_eq!(rows, hf);
    }

    #[test]
    fn tensor_names_map_to_the_checkpoints() {
        assert_eq!(
            hf_tensor_name("blk.12.ffn_down.weight").unwrap(),
            "model.layers.12.mlp.down_proj.weight"
        );
        assert_eq!(
            hf_tensor_name("blk.0.attn_k.bias").unwrap(),
            "model.layers.0.self_attn.k_proj.bias"
        );
        assert_eq!(hf_tensor_name("output.weight").unwrap(), "lm_head.weight");
        assert_eq!(
            hf_tensor_name("token_embd.weight").unwrap(),
            "model.embed_tokens.weight"
        );
        assert!(hf_tensor_name("blk.x.attn_q.weight").is_none());
        assert!(hf_tensor_name("rope_freqs.weight").is_none());
        assert!(has_permuted_rows("llama", "blk.0.attn_q.weight"));
        assert!(!has_permuted_rows("qwen2", "blk.0.attn_q.weight"));
        assert!(!has_permuted_rows("llama", "blk.0.attn_v.weight"));
    }

    fn open(metadata: &[(&str, GgufValue)], tensors: &[TensorToWrite]) -> GgufFile {
        crate::formats::gguf::writer::open_bytes(&gguf_bytes(metadata, tensors)).unwrap()
    }

    fn llama_metadata() -> Vec<(&'static str, GgufValue)> {
        vec![
            ("general.architecture", GgufValue::String("llama".into())),
            ("llama.embedding_length", GgufValue::U32(64)),
            ("llama.feed_forward_length", GgufValue::U32(128)),
            ("llama.block_count", GgufValue::U32(2)),
            ("llama.attention.head_count", GgufValue::U32(4)),
            ("llama.attention.head_count_kv", GgufValue::U32(2)),
            (
                "llama.attention.layer_norm_rms_epsilon",
                GgufValue::F32(1e-5),
            ),
            ("llama.rope.freq_base", GgufValue::F32(100_000.0)),
            ("llama.context_length", GgufValue::U32(8192)),
            (
                "tokenizer.ggml.tokens",
                GgufValue::Array(
                    (0..100)
                        .map(|i| GgufValue::String(format!("t{i}")))
                        .collect(),
                ),
            ),
            ("tokenizer.ggml.bos_token_id", GgufValue::U32(1)),
            ("tokenizer.ggml.eos_token_id", GgufValue::U32(2)),
        ]
    }

    #[test]
    fn metadata_becomes_the_configuration_transformers_would_read() {
        let file = open(&llama_metadata(), &[]);
        let config = model_config(&file).unwrap();
        assert_eq!(
            (
                config.hidden_size,
                config.intermediate_size,
                config.num_layers
            ),
            (64, 128, 2)
        );
        assert_eq!(
            (config.num_heads, config.num_kv_heads, config.head_dim),
            (4, 2, 16)
        );
        assert_eq!(
            (config.vocab_size, config.max_position_embeddings),
            (100, 8192)
        );
        assert_eq!(config.rope_theta, 100_000.0);
        assert!(
            config.tie_word_embeddings,
            "no output.weight: the head is the embedding"
        );
        assert_eq!(
            (config.bos_token_id, config.eos_token_ids.clone()),
            (Some(1), vec![2])
        );
    }

    #[test]
    fn a_summary_says_what_a_file_is_and_why_it_cannot_load() {
        let f32s = [0u8; 64 * 4];
        let tensor = [TensorToWrite {
            name: "token_embd.weight",
            dims: vec![64],
            ggml_type: GgmlType::F32,
            bytes: &f32s,
        }];
        let mut metadata = llama_metadata();
        metadata.push(("general.file_type", GgufValue::U32(15)));
        metadata.push(("tokenizer.ggml.model", GgufValue::String("gpt2".into())));
        metadata.push((
            "tokenizer.ggml.merges",
            GgufValue::Array(vec![GgufValue::String("t 1".into())]),
        ));
        let summary = summarize(&open(&metadata, &tensor));
        assert_eq!(summary.architecture.as_deref(), Some("llama"));
        assert_eq!(
            (summary.precision.as_str(), summary.parameters),
            ("Q4_K_M", 64)
        );
        assert_eq!(summary.problem, None);
        // An unknown tensor type, a projector, an unsupported tokenizer: each says why.
        let odd = [TensorToWrite {
            name: "blk.0.attn_q.weight",
            dims: vec![4],
            ggml_type: GgmlType::Other(23),
            bytes: &[0; 8],
        }];
        let problem = summarize(&open(&metadata, &odd)).problem.unwrap();
        assert!(problem.contains("ggml type 23"), "{problem}");
        let mut clip = metadata.clone();
        clip[0].1 = GgufValue::String("clip".into());
        assert!(summarize(&open(&clip, &tensor))
            .problem
            .unwrap()
            .contains("vision projector"));
        let mut other_tokenizer = metadata.clone();
        other_tokenizer.retain(|(k, _)| *k != "tokenizer.ggml.model");
        other_tokenizer.push(("tokenizer.ggml.model", GgufValue::String("rwkv".into())));
        let problem = summarize(&open(&other_tokenizer, &tensor)).problem.unwrap();
        assert!(problem.starts_with("tokenizer.ggml.model"), "{problem}");
    }

    #[test]
    fn what_tandem_cannot_compute_is_an_error_naming_the_key() {
        let mut unknown = llama_metadata();
        unknown[0].1 = GgufValue::String("mamba".into());
        let e = model_config(&open(&unknown, &[])).unwrap_err().to_string();
        assert!(
            e.contains("general.architecture") && e.contains("mamba"),
            "{e}"
        );
        let mut missing = llama_metadata();
        missing.retain(|(k, _)| *k != "llama.block_count");
        let e = model_config(&open(&missing, &[])).unwrap_err().to_string();
        assert!(
            e.contains("llama.block_count") && e.contains("missing"),
            "{e}"
        );
        let mut yarn = llama_metadata();
        yarn.push(("llama.rope.scaling.type", GgufValue::String("yarn".into())));
        let e = model_config(&open(&yarn, &[])).unwrap_err().to_string();
        assert!(
            e.contains("llama.rope.scaling.type") && e.contains("yarn"),
            "{e}"
        );
        let mut wrong_type = llama_metadata();
        wrong_type.push(("llama.attention.key_length", GgufValue::String("16".into())));
        let e = model_config(&open(&wrong_type, &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("llama.attention.key_length"), "{e}");
        // The same bounds as a config.json.
        let mut huge = llama_metadata();
        huge[3].1 = GgufValue::U64(1 << 40);
        assert!(model_config(&open(&huge, &[])).is_err());
        // rope_freqs must have head_dim / 2 positive entries (here head_dim is 16).
        let mut mistral = llama_metadata();
        mistral.push(("llama.attention.sliding_window", GgufValue::U32(4096)));
        let config = model_config(&open(&mistral, &[])).unwrap();
        assert_eq!(config.architecture, crate::config::Architecture::Mistral);
        assert_eq!(config.sliding_window, Some(4096));
        let mut value_length = llama_metadata();
        value_length.push(("llama.attention.key_length", GgufValue::U32(16)));
        value_length.push(("llama.attention.value_length", GgufValue::U32(32)));
        let e = model_config(&open(&value_length, &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("llama.attention.value_length"), "{e}");
        let rope_freqs = [TensorToWrite {
            name: "rope_freqs.weight",
            dims: vec![8],
            ggml_type: GgmlType::F32,
            bytes: &[0; 32],
        }];
        let e = model_config(&open(&llama_metadata(), &rope_freqs))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rope_freqs.weight") && e.contains("positive"),
            "{e}"
        );
        let ones: Vec<u8> = (0..8).flat_map(|_| 2.0f32.to_le_bytes()).collect();
        let rope_freqs = [TensorToWrite {
            name: "rope_freqs.weight",
            dims: vec![8],
            ggml_type: GgmlType::F32,
            bytes: &ones,
        }];
        let config = model_config(&open(&llama_metadata(), &rope_freqs)).unwrap();
        assert_eq!(
            config.rope_scaling,
            crate::config::RopeScaling::Factors(vec![2.0; 8])
        );
    }
}
