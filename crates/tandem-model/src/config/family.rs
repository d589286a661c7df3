//! What each model family changes in the shared decoder, read from its `config.json`
//! with the defaults transformers' config class gives a missing key.
//!
//! Every family is the Llama layer plus some of: norms by (1 + w) and scaled
//! embeddings (Gemma), the tanh GELU (Gemma), q/k norms (Qwen3, Gemma 3), sliding
//! layers ([`layer_kinds`]), soft-capping and a `query_pre_attn_scalar` (Gemma 2),
//! sandwich norms (Gemma 2/3), partial and LongRoPE rotary embeddings (Phi-3) and NoPE
//! layers (SmolLM3). A key asking for anything else is an error naming it.

use std::borrow::Cow;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Activation, Architecture, Fields, LayerKind, LayerRope, MAX_CONTEXT};
use crate::error::{ModelError, Result};

/// Gemma 3's default base for its sliding (local) layers.
pub(super) const GEMMA3_LOCAL_ROPE_THETA: f64 = 10_000.0;

/// Families whose layers are not all attention: refused with the reason.
const HYBRID: &[(&str, &str)] = &[
    ("Qwen3_5", "Qwen3.5 mixes recurrent (gated delta-net) layers with attention; Tandem runs attention-only decoders"),
    ("Qwen3Next", "Qwen3-Next mixes recurrent (gated delta-net) layers with attention and routes experts; Tandem runs dense attention-only decoders"),
    ("Gemma4", "Gemma 4 shares KV caches across layers; Tandem gives every layer its own cache"),
    ("Gemma3n", "Gemma 3n has per-layer embeddings and shared KV layers; Tandem runs plain decoders"),
    ("Qwen3Moe", "mixture-of-experts layers are not supported"),
];

/// The Hugging Face class of a `model_type` (for configs without `architectures`).
pub(super) fn class_of_model_type(model_type: &str) -> &str {
    match model_type {
        "llama" => "LlamaForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        "mistral" => "MistralForCausalLM",
        "qwen3" => "Qwen3ForCausalLM",
        "gemma" => "GemmaForCausalLM",
        "gemma2" => "Gemma2ForCausalLM",
        "gemma3_text" => "Gemma3ForCausalLM",
        "gemma3" => "Gemma3ForConditionalGeneration",
        "phi3" => "Phi3ForCausalLM",
        "smollm3" => "SmolLM3ForCausalLM",
        other => other,
    }
}

pub(super) fn architecture_named(path: &Path, name: &str) -> Result<Architecture> {
    Ok(match name {
        "LlamaForCausalLM" => Architecture::Llama,
        "Qwen2ForCausalLM" => Architecture::Qwen2,
        "MistralForCausalLM" => Architecture::Mistral,
        "Qwen3ForCausalLM" => Architecture::Qwen3,
        "GemmaForCausalLM" => Architecture::Gemma,
        "Gemma2ForCausalLM" => Architecture::Gemma2,
        "Gemma3ForCausalLM" | "Gemma3ForConditionalGeneration" => Architecture::Gemma3,
        "Phi3ForCausalLM" => Architecture::Phi3,
        "SmolLM3ForCausalLM" => Architecture::SmolLM3,
        _ => {
            if let Some((_, why)) = HYBRID.iter().find(|(prefix, _)| name.starts_with(prefix)) {
                return Err(ModelError::UnsupportedFamily {
                    path: path.to_path_buf(),
                    architecture: name.to_string(),
                    why,
                });
            }
            return Err(ModelError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                architecture: name.to_string(),
            });
        }
    })
}

/// Defaults of `Gemma3TextConfig` for the keys Gemma 3's hub configs leave out.
fn gemma3_defaults() -> [(&'static str, Value); 13] {
    use serde_json::json;
    [
        ("vocab_size", json!(262_208)),
        ("hidden_size", json!(2304)),
        ("intermediate_size", json!(9216)),
        ("num_hidden_layers", json!(26)),
        ("num_attention_heads", json!(8)),
        ("num_key_value_heads", json!(4)),
        ("head_dim", json!(256)),
        ("max_position_embeddings", json!(131_072)),
        ("rms_norm_eps", json!(1e-6)),
        ("query_pre_attn_scalar", json!(256)),
        ("sliding_window", json!(4096)),
        ("eos_token_id", json!(1)),
        ("bos_token_id", json!(2)),
    ]
}

/// The object the decoder's fields are read from: the config itself, or for Gemma 3
/// its `text_config` (with `dtype` and the token ids of the outer config when the
/// inner one lacks them), with `Gemma3TextConfig`'s defaults under both.
pub(super) fn text_config(
    architecture: Architecture,
    map: &Map<String, Value>,
) -> Cow<'_, Map<String, Value>> {
    if architecture != Architecture::Gemma3 {
        return Cow::Borrowed(map);
    }
    let mut text = match map.get("text_config").and_then(Value::as_object) {
        Some(text) => {
            let mut text = text.clone();
            for key in [
                "torch_dtype",
                "dtype",
                "eos_token_id",
                "bos_token_id",
                "tie_word_embeddings",
            ] {
                if let (None, Some(v)) = (text.get(key), map.get(key)) {
                    text.insert(key.to_string(), v.clone());
                }
            }
            text
        }
        None => map.clone(),
    };
    for (key, value) in gemma3_defaults() {
        text.entry(key).or_insert(value);
    }
    Cow::Owned(text)
}

pub(super) fn default_rope_theta(architecture: Architecture) -> f64 {
    match architecture {
        Architecture::Gemma3 => 1_000_000.0,
        Architecture::SmolLM3 => 2_000_000.0,
        _ => 10_000.0,
    }
}

/// The MLP activation: `hidden_act` (Gemma 1 reads its legacy `gelu` as the tanh
/// approximation, as transformers does), `hidden_activation` for Gemma 2/3.
pub(super) fn activation(f: &Fields, architecture: Architecture) -> Result<Activation> {
    let (key, default) = match architecture {
        Architecture::Gemma2 | Architecture::Gemma3 => ("hidden_activation", "gelu_pytorch_tanh"),
        Architecture::Gemma => ("hidden_act", "gelu_pytorch_tanh"),
        _ => ("hidden_act", "silu"),
    };
    let value = match f.get(key) {
        None => default,
        Some(v) => v
            .as_str()
            .ok_or_else(|| ModelError::field(f.path, key, format!("expected a string, got {v}")))?,
    };
    match (value, architecture) {
        ("silu" | "swish", _) => Ok(Activation::Silu),
        ("gelu_pytorch_tanh", _) | ("gelu", Architecture::Gemma) => Ok(Activation::GeluTanh),
        _ => Err(ModelError::field(
            f.path,
            key,
            format!("`{value}` is not supported (silu, gelu_pytorch_tanh)"),
        )),
    }
}

/// Which layers slide and which RoPE each applies, and the window of the sliding ones
/// (`None` when none slides).
pub(super) fn layer_kinds(
    f: &Fields,
    architecture: Architecture,
    num_layers: usize,
) -> Result<(Vec<LayerKind>, Option<usize>)> {
    use Architecture::*;
    let window = f.usize_opt_in("sliding_window", MAX_CONTEXT)?;
    let use_sliding = f.bool_opt("use_sliding_window")?;
    if f.bool_opt("use_bidirectional_attention")?.unwrap_or(false) {
        return Err(ModelError::field(
            f.path,
            "use_bidirectional_attention",
            "true (an encoder for embeddings, not a decoder) is not supported",
        ));
    }
    // SmolLM3: 1 = the layer applies RoPE, 0 = NoPE.
    let no_rope: Vec<bool> = match (architecture, f.get("no_rope_layers")) {
        (SmolLM3, Some(Value::Array(flags))) => {
            if flags.len() != num_layers {
                return Err(ModelError::field(
                    f.path,
                    "no_rope_layers",
                    format!("has {} entries for {num_layers} layers", flags.len()),
                ));
            }
            flags
                .iter()
                .map(|v| match v.as_u64() {
                    Some(1) => Ok(false),
                    Some(0) => Ok(true),
                    _ => Err(ModelError::field(
                        f.path,
                        "no_rope_layers",
                        format!("{v} is not 0 (no RoPE) or 1 (RoPE)"),
                    )),
                })
                .collect::<Result<_>>()?
        }
        (SmolLM3, _) => {
            let interval = f
                .usize_opt_in("no_rope_layer_interval", MAX_CONTEXT)?
                .unwrap_or(4);
            (0..num_layers).map(|i| (i + 1) % interval == 0).collect()
        }
        _ => vec![false; num_layers],
    };
    let sliding: Vec<bool> = match f.get("layer_types") {
        Some(Value::Array(types)) => {
            if types.len() != num_layers {
                return Err(ModelError::field(
                    f.path,
                    "layer_types",
                    format!("has {} entries for {num_layers} layers", types.len()),
                ));
            }
            types
                .iter()
                .map(|t| match t.as_str() {
                    Some("full_attention") => Ok(false),
                    Some("sliding_attention") => Ok(true),
                    _ => Err(ModelError::field(
                        f.path,
                        "layer_types",
                        format!("{t} is not supported (full_attention, sliding_attention)"),
                    )),
                })
                .collect::<Result<_>>()?
        }
        Some(other) => {
            return Err(ModelError::field(
                f.path,
                "layer_types",
                format!("expected a list, got {other}"),
            ))
        }
        None => (0..num_layers)
            .map(|i| match architecture {
                Llama | Qwen2 | Gemma => false,
                Mistral | Phi3 => window.is_some(),
                Qwen3 => {
                    let from = f
                        .usize_opt("max_window_layers")
                        .ok()
                        .flatten()
                        .unwrap_or(28);
                    use_sliding.unwrap_or(false) && window.is_some() && i >= from
                }
                SmolLM3 => use_sliding.unwrap_or(false) && window.is_some() && no_rope[i],
                Gemma2 => (i + 1) % 2 != 0,
                Gemma3 => {
                    let pattern = f
                        .usize_opt("sliding_window_pattern")
                        .ok()
                        .flatten()
                        .unwrap_or(6);
                    pattern == 0 || (i + 1) % pattern != 0
                }
            })
            .collect(),
    };
    // Qwen3 and SmolLM3 write `sliding_window` only with `use_sliding_window`.
    let window = match (architecture, use_sliding) {
        (Qwen3 | SmolLM3, Some(false) | None) if !sliding.contains(&true) => None,
        _ => window,
    };
    let window = match (sliding.contains(&true), window, architecture) {
        (false, _, _) => None,
        (true, Some(w), _) => Some(w),
        (true, None, Gemma2 | Gemma3) => Some(4096),
        (true, None, _) => {
            return Err(ModelError::field(
                f.path,
                "sliding_window",
                "missing, but some layers are sliding_attention",
            ))
        }
    };
    let kinds = sliding
        .iter()
        .zip(&no_rope)
        .map(|(&sliding, &nope)| LayerKind {
            sliding,
            rope: match (architecture, sliding, nope) {
                (_, _, true) => LayerRope::None,
                (Gemma3, true, _) => LayerRope::Local,
                _ => LayerRope::Global,
            },
        })
        .collect();
    Ok((kinds, window))
}

/// The family's switches besides layers, activation and RoPE.
pub(super) struct Traits {
    pub tied_by_default: bool,
    pub norm_weight_offset: f32,
    pub embedding_scale: Option<f32>,
    pub qk_norm: bool,
    pub query_pre_attn_scalar: Option<f64>,
    pub attn_logit_softcapping: Option<f64>,
    pub final_logit_softcapping: Option<f64>,
    pub sandwich_norms: bool,
}

/// The family's switches; `multimodal` for Gemma 3's `Gemma3ForConditionalGeneration`.
pub(super) fn traits(
    f: &Fields,
    architecture: Architecture,
    multimodal: bool,
    hidden_size: usize,
    dtype: Option<&str>,
) -> Result<Traits> {
    use Architecture::*;
    let gemma = architecture.is_gemma();
    // A soft cap: an explicit null turns it off, a missing key takes the default.
    let softcap = |key: &str, default: Option<f64>| -> Result<Option<f64>> {
        match f.map.get(key) {
            None => Ok(default),
            Some(Value::Null) => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
                _ => Err(ModelError::field(
                    f.path,
                    key,
                    format!("{v} must be a positive number or null"),
                )),
            },
        }
    };
    let (attn_cap, final_cap) = match architecture {
        Gemma2 => (
            softcap("attn_logit_softcapping", Some(50.0))?,
            softcap("final_logit_softcapping", Some(30.0))?,
        ),
        // transformers' Gemma 3 attention never soft-caps, whatever the config says, and
        // the multimodal class never caps its logits.
        Gemma3 if multimodal => (None, None),
        Gemma3 => (None, softcap("final_logit_softcapping", None)?),
        _ => {
            for key in ["attn_logit_softcapping", "final_logit_softcapping"] {
                if f.get(key).is_some() {
                    return Err(ModelError::field(
                        f.path,
                        key,
                        format!("soft-capping is not part of {}", architecture.hf_name()),
                    ));
                }
            }
            (None, None)
        }
    };
    let query_pre_attn_scalar = match architecture {
        Gemma2 | Gemma3 => Some(
            f.positive_f64_opt("query_pre_attn_scalar", "query_pre_attn_scalar")?
                .unwrap_or(256.0),
        ),
        _ => None,
    };
    Ok(Traits {
        tied_by_default: gemma || architecture == SmolLM3,
        norm_weight_offset: if gemma { 1.0 } else { 0.0 },
        embedding_scale: gemma.then(|| embedding_scale(architecture, hidden_size, dtype)),
        qk_norm: matches!(architecture, Qwen3 | Gemma3),
        query_pre_attn_scalar,
        attn_logit_softcapping: attn_cap,
        final_logit_softcapping: final_cap,
        sandwich_norms: matches!(architecture, Gemma2 | Gemma3),
    })
}

/// Gemma's embedding normalizer √hidden_size, rounded to the weights' dtype as
/// transformers builds it: the bf16 models run with the rounded value. Gemma 1/2 round
/// the Python float straight to the dtype (`torch.tensor(h**0.5, dtype=…)`); Gemma 3
/// keeps an f32 buffer and converts that (`embed_scale.to(weight.dtype)`).
pub(crate) fn embedding_scale(
    architecture: Architecture,
    hidden_size: usize,
    dtype: Option<&str>,
) -> f32 {
    let exact = (hidden_size as f64).sqrt();
    let source = if architecture == Architecture::Gemma3 {
        exact as f32 as f64
    } else {
        exact
    };
    match dtype {
        Some("bfloat16") => half::bf16::from_f64(source).to_f32(),
        Some("float16") => half::f16::from_f64(source).to_f32(),
        _ => source as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LayerRope, ModelConfig, RopeScaling};
    use crate::error::ModelError;
    use serde_json::{json, Value};
    use std::path::Path;

    fn parse(v: Value) -> crate::Result<ModelConfig> {
        ModelConfig::from_map(Path::new("config.json"), v.as_object().unwrap())
    }

    fn err(v: Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    fn base(arch: &str) -> Value {
        json!({
            "architectures": [arch], "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 100, "max_position_embeddings": 256
        })
    }

    #[test]
    fn gemma3_hub_config_takes_the_text_defaults() {
        // The shape of google/gemma-3-4b-it's config.json: most keys left to defaults.
        let c = parse(json!({
            "architectures": ["Gemma3ForConditionalGeneration"],
            "text_config": {"hidden_size": 2560, "intermediate_size": 10240,
                "model_type": "gemma3_text", "num_hidden_layers": 34,
                "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
            "torch_dtype": "bfloat16", "eos_token_id": [1, 106]
        }))
        .unwrap();
        assert_eq!(
            (c.vocab_size, c.head_dim, c.num_heads, c.num_kv_heads),
            (262_208, 256, 8, 4)
        );
        assert_eq!(c.rope_theta, 1e6);
        assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 8.0 });
        assert_eq!(c.local_rope, Some((10_000.0, RopeScaling::None)));
        assert_eq!(c.sliding_window, Some(1024));
        let sliding: Vec<bool> = c.layers.iter().map(|l| l.sliding).collect();
        assert_eq!(&sliding[..6], &[true, true, true, true, true, false]);
        assert_eq!(c.layers[0].rope, LayerRope::Local);
        assert_eq!(c.layers[5].rope, LayerRope::Global);
        assert!(c.tie_word_embeddings && c.qk_norm && c.sandwich_norms);
        assert_eq!(c.query_pre_attn_scalar, Some(256.0));
        assert_eq!(c.eos_token_ids, vec![1, 106]);
        // √2560 = 50.596… in bf16, through f32 as Gemma 3 does.
        assert_eq!(c.embedding_scale, Some(50.5));
    }

    #[test]
    fn gemma3_caps_only_the_logits_of_its_text_class_as_transformers_does() {
        let mut v = base("Gemma3ForCausalLM");
        v["attn_logit_softcapping"] = json!(50.0);
        v["final_logit_softcapping"] = json!(30.0);
        let c = parse(v.clone()).unwrap();
        assert_eq!(
            (c.attn_logit_softcapping, c.final_logit_softcapping),
            (None, Some(30.0))
        );
        let c =
            parse(json!({"architectures": ["Gemma3ForConditionalGeneration"], "text_config": v}))
                .unwrap();
        assert_eq!(
            (c.attn_logit_softcapping, c.final_logit_softcapping),
            (None, None)
        );
    }

    #[test]
    fn gemma2_softcaps_default_on_and_turn_off_with_null() {
        let c = parse(base("Gemma2ForCausalLM")).unwrap();
        assert_eq!(c.attn_logit_softcapping, Some(50.0));
        assert_eq!(c.final_logit_softcapping, Some(30.0));
        assert_eq!(c.layers.iter().filter(|l| l.sliding).count(), 3);
        assert_eq!(c.sliding_window, Some(4096));
        let mut v = base("Gemma2ForCausalLM");
        v["final_logit_softcapping"] = Value::Null;
        assert_eq!(parse(v).unwrap().final_logit_softcapping, None);
    }

    #[test]
    fn gemma1_reads_legacy_gelu_as_tanh_and_rounds_the_normalizer() {
        let mut v = base("GemmaForCausalLM");
        v["hidden_act"] = json!("gelu");
        v["hidden_size"] = json!(3072);
        v["torch_dtype"] = json!("bfloat16");
        v["head_dim"] = json!(256);
        let c = parse(v).unwrap();
        assert_eq!(c.activation, super::Activation::GeluTanh);
        assert_eq!(c.embedding_scale, Some(55.5));
        assert_eq!(c.norm_weight_offset, 1.0);
    }

    #[test]
    fn what_tandem_cannot_compute_is_an_error_naming_the_field() {
        let mut v = base("Gemma3ForCausalLM");
        v["layer_types"] = json!([
            "sliding_attention",
            "chunked_attention",
            "full_attention",
            "full_attention",
            "full_attention",
            "full_attention"
        ]);
        assert!(err(v).contains("layer_types"));
        let mut v = base("LlamaForCausalLM");
        v["attn_logit_softcapping"] = json!(50.0);
        assert!(err(v).contains("attn_logit_softcapping"));
        let mut v = base("LlamaForCausalLM");
        v["partial_rotary_factor"] = json!(0.5);
        assert!(err(v).contains("partial_rotary_factor"));
        let mut v = base("Phi3ForCausalLM");
        v["rope_scaling"] =
            json!({"type": "longrope", "short_factor": [1.0, 1.0], "long_factor": [2.0, 2.0]});
        assert!(err(v).contains("short_factor"));
        let mut v = base("Qwen3ForCausalLM");
        v["layer_types"] = json!(vec!["sliding_attention"; 6]);
        assert!(err(v).contains("sliding_window"));
        let mut v = base("GemmaForCausalLM");
        v["hidden_act"] = json!("relu");
        assert!(err(v).contains("hidden_act"));
        let mut v = base("Gemma3ForCausalLM");
        v["use_bidirectional_attention"] = json!(true);
        assert!(err(v).contains("use_bidirectional_attention"));
        let mut v = base("SmolLM3ForCausalLM");
        v["no_rope_layers"] = json!([1, 1, 2, 0, 1, 1]);
        assert!(err(v).contains("no_rope_layers"));
    }

    #[test]
    fn hybrid_families_are_refused_with_the_reason() {
        for (arch, words) in [
            ("Qwen3_5ForCausalLM", "recurrent"),
            ("Qwen3NextForCausalLM", "recurrent"),
            ("Gemma4ForCausalLM", "shares KV"),
        ] {
            let e = parse(base(arch)).unwrap_err();
            assert!(matches!(e, ModelError::UnsupportedFamily { .. }), "{arch}");
            assert!(
                e.to_string().contains(words) && e.to_string().contains(arch),
                "{e}"
            );
        }
        let e = parse(base("MambaForCausalLM")).unwrap_err().to_string();
        assert!(e.contains("Gemma3ForConditionalGeneration"), "{e}");
    }

    #[test]
    fn smollm3_nope_layers_and_phi3_longrope() {
        let c = parse(base("SmolLM3ForCausalLM")).unwrap();
        let nope: Vec<bool> = c.layers.iter().map(|l| l.rope == LayerRope::None).collect();
        assert_eq!(nope, [false, false, false, true, false, false]);
        assert!(c.tie_word_embeddings);
        let mut v = base("Phi3ForCausalLM");
        v["max_position_embeddings"] = json!(131_072);
        v["original_max_position_embeddings"] = json!(4096);
        v["partial_rotary_factor"] = json!(0.75);
        v["rope_scaling"] =
            json!({"type": "longrope", "short_factor": vec![1.0; 6], "long_factor": vec![4.0; 6]});
        let c = parse(v).unwrap();
        assert_eq!(c.rotary_dim, 12);
        let RopeScaling::LongRope {
            original_max_position_embeddings,
            attention_factor,
            ..
        } = c.rope_scaling
        else {
            panic!("{:?}", c.rope_scaling)
        };
        assert_eq!(original_max_position_embeddings, 4096);
        let want = (1.0 + (32.0f64).ln() / (4096.0f64).ln()).sqrt();
        assert!((attention_factor - want).abs() < 1e-12);
        assert!(c.fused_checkpoint_linears);
    }
}
