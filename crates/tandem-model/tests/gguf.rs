//! GGUF files against the test models converted from them: the original GGUF of each
//! (`fetch.sh gguf:NAME`) read by Tandem's own reader must describe the same model as
//! the Hugging Face folder `fetch.sh` made from it with llama.cpp's Python package —
//! the same configuration, and every tensor the same values (the folder holds them in
//! bf16, so ours are compared after the same rounding), Q and K back in Hugging Face's
//! row order.

use std::path::Path;

use tandem_model::formats::gguf::GgufFile;
use tandem_model::formats::gguf_model::{hf_tensor_name, model_config, GgufWeights};
use tandem_model::formats::safetensors::SafetensorsFile;
use tandem_model::{test_models, ModelConfig};

fn bf16(x: f32) -> f32 {
    half::bf16::from_f32(x).to_f32()
}

fn same_model(gguf_path: &Path, hf_dir: &Path) {
    let file = GgufFile::open(gguf_path).unwrap();
    let ours = model_config(&file).unwrap();
    let theirs = ModelConfig::from_dir(hf_dir).unwrap();
    assert_eq!(ours.architecture, theirs.architecture);
    assert_eq!(
        (ours.hidden_size, ours.intermediate_size, ours.num_layers),
        (
            theirs.hidden_size,
            theirs.intermediate_size,
            theirs.num_layers
        )
    );
    assert_eq!(
        (ours.num_heads, ours.num_kv_heads, ours.head_dim),
        (theirs.num_heads, theirs.num_kv_heads, theirs.head_dim)
    );
    assert_eq!(
        (ours.vocab_size, ours.tie_word_embeddings),
        (theirs.vocab_size, theirs.tie_word_embeddings)
    );
    assert_eq!(
        (ours.rope_theta, ours.rms_norm_eps),
        (theirs.rope_theta, theirs.rms_norm_eps)
    );
    assert_eq!(ours.max_position_embeddings, theirs.max_position_embeddings);

    let weights = SafetensorsFile::open(&hf_dir.join("model.safetensors")).unwrap();
    let gguf = GgufWeights::new(file, &ours);
    let mut checked = 0;
    for tensor in gguf.file().tensors() {
        let name = hf_tensor_name(&tensor.name)
            .unwrap_or_else(|| panic!("GGUF tensor `{}` has no checkpoint name", tensor.name));
        let (shape, expected) = weights.read_f32(&name).unwrap();
        let values = gguf.read(&name, &shape).unwrap();
        let worst = values
            .iter()
            .zip(&expected)
            .map(|(a, b)| (bf16(*a) - b).abs())
            .fold(0.0f32, f32::max);
        assert_eq!(
            worst, 0.0,
            "{} ({:?}) differs from {name}",
            tensor.name, tensor.ggml_type
        );
        checked += 1;
    }
    // A wrong shape names both names.
    let e = gguf
        .read("model.norm.weight", &[1, 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("output_norm.weight"), "{e}");
    assert_eq!(checked, gguf.file().tensors().len());
    println!(
        "{}: {checked} tensors identical to {}",
        gguf_path.display(),
        hf_dir.display()
    );
}

#[test]
fn smollm2_gguf_is_the_model_of_its_converted_folder() {
    let (Some(gguf), Some(dir)) = (test_models::smollm2_gguf(), test_models::smollm2()) else {
        return;
    };
    same_model(&gguf, &dir);
}

/// Qwen2.5-Coder-0.5B (Q4_K, Q5_0, Q6_K, Q8_0 tensors): run on request
/// (`cargo test --release -p tandem-model --test gguf -- --ignored`).
#[test]
#[ignore = "needs Qwen2.5-Coder-0.5B and its GGUF (fetch.sh qwen2.5-coder-0.5b gguf:qwen2.5-coder-0.5b)"]
fn qwen_0_5b_gguf_is_the_model_of_its_converted_folder() {
    let (Some(gguf), Some(dir)) = (
        test_models::qwen_coder_0_5b_gguf(),
        test_models::qwen_coder_0_5b(),
    ) else {
        return;
    };
    same_model(&gguf, &dir);
}

/// Code, prose, unicode, whitespace runs, digits and special tokens.
const TEXTS: [&str; 6] = [
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n-1)+fibonacci(n-2)  # héllo 世界 12345",
    "<|im_start|>user\nWhat's 2+2? It's 4, isn't it?<|im_end|>\n<|im_start|>assistant\n",
    "   leading spaces,\ttabs\t\tand\r\nCRLF lines\n\n\n  trailing   ",
    "Ünïcödé: naïve café, Ελληνικά, русский, 日本語のテキスト, emoji 🙂🚀 and ZWJ 👩‍💻",
    "numbers 3.14159 1,000,000 0x1F 1e-9 and 123456789012345",
    "<tool_call>{\"name\": \"f\"}</tool_call> <|endoftext|> <|fim_prefix|>a<|fim_suffix|>",
];

fn same_tokenizer(gguf_path: &Path, hf_dir: &Path) {
    let file = GgufFile::open(gguf_path).unwrap();
    let ours = tandem_model::formats::gguf_tokenizer::tokenizer(&file).unwrap();
    let theirs = tokenizers::Tokenizer::from_file(hf_dir.join("tokenizer.json")).unwrap();
    assert_eq!(ours.get_vocab_size(true), theirs.get_vocab_size(true));
    for text in TEXTS {
        let a = ours.encode(text, true).unwrap();
        let b = theirs.encode(text, true).unwrap();
        assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
        assert_eq!(
            ours.decode(a.get_ids(), false).unwrap(),
            theirs.decode(b.get_ids(), false).unwrap()
        );
    }
}

#[test]
fn smollm2_gguf_tokenizer_gives_the_folders_ids() {
    let (Some(gguf), Some(dir)) = (test_models::smollm2_gguf(), test_models::smollm2()) else {
        return;
    };
    same_tokenizer(&gguf, &dir);
}

#[test]
#[ignore = "needs Qwen2.5-Coder-0.5B and its GGUF (fetch.sh qwen2.5-coder-0.5b gguf:qwen2.5-coder-0.5b)"]
fn qwen_0_5b_gguf_tokenizer_gives_the_folders_ids() {
    let (Some(gguf), Some(dir)) = (
        test_models::qwen_coder_0_5b_gguf(),
        test_models::qwen_coder_0_5b(),
    ) else {
        return;
    };
    same_tokenizer(&gguf, &dir);
}

/// The logits of every position of `tokens`, one forward.
fn all_logits(model: &mut tandem_model::cpu::CpuModel, tokens: &[u32]) -> Vec<Vec<f32>> {
    model.reset();
    let vocab = model.config().vocab_size;
    let values = model.forward_tail(tokens, tokens.len()).unwrap();
    values.chunks(vocab).map(<[f32]>::to_vec).collect()
}

#[test]
fn a_gguf_file_loads_as_its_f32_folder_does() {
    // The folder holds the GGUF's weights dequantized to f32 by llama.cpp's package, so
    // the two loads must compute the same model: logits within 1e-4 everywhere, the same
    // tokens, the same greedy text.
    let (Some(gguf), Some(dir)) = (test_models::smollm2_gguf(), test_models::smollm2_f32()) else {
        return;
    };
    let options = tandem_model::LoadOptions {
        context_len: Some(160),
        precision: tandem_model::Precision::F32,
        ..Default::default()
    };
    let mut from_gguf = tandem_model::cpu::CpuModel::load(&gguf, &options).unwrap();
    let mut from_folder = tandem_model::cpu::CpuModel::load(&dir, &options).unwrap();
    let tok_gguf = tandem_model::Tokenizer::from_dir(&gguf).unwrap();
    let tok_folder = tandem_model::Tokenizer::from_dir(&dir).unwrap();
    let mut worst = 0.0f32;
    for text in TEXTS {
        let ids = tok_gguf.encode(text).unwrap();
        assert_eq!(ids, tok_folder.encode(text).unwrap(), "{text:?}");
        let (a, b) = (
            all_logits(&mut from_gguf, &ids),
            all_logits(&mut from_folder, &ids),
        );
        for (row_a, row_b) in a.iter().zip(&b) {
            for (x, y) in row_a.iter().zip(row_b) {
                worst = worst.max((x - y).abs());
            }
        }
    }
    assert!(worst <= 1e-4, "max |logit difference| {worst}");
    // Greedy text: 24 tokens after a chat prompt, one position at a time.
    let chat = [tandem_model::ChatMessage::new(
        "user",
        "Write a haiku about the sea.",
    )];
    let prompt = tok_gguf.apply_chat_template(&chat, true).unwrap();
    assert_eq!(prompt, tok_folder.apply_chat_template(&chat, true).unwrap());
    let greedy = |model: &mut tandem_model::cpu::CpuModel| {
        let mut ids = tok_gguf.encode(&prompt).unwrap();
        for _ in 0..24 {
            let last = all_logits(model, &ids).pop().unwrap();
            let next = (0..last.len())
                .max_by(|&i, &j| last[i].total_cmp(&last[j]))
                .unwrap();
            ids.push(next as u32);
        }
        tok_gguf.decode(&ids).unwrap()
    };
    assert_eq!(greedy(&mut from_gguf), greedy(&mut from_folder));
    println!("GGUF vs f32 folder: max |logit difference| {worst:e}");
}

/// A GGUF file written from a fixture folder as llama.cpp's converter writes one: the
/// `llama.*` keys, the tokenizer as `tokenizer.ggml.*`, GGUF tensor names and dims, and
/// Q and K rows in ggml's order.
fn fixture_as_gguf(name: &str) -> std::path::PathBuf {
    use tandem_model::formats::gguf::writer::{gguf_bytes, TensorToWrite};
    use tandem_model::formats::gguf::{GgmlType, GgufValue};
    let dir = test_models::fixture_dir(name);
    let config = ModelConfig::from_dir(&dir).unwrap();
    let tokenizer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap())
            .unwrap();
    let vocab = tokenizer["model"]["vocab"].as_object().unwrap();
    let mut tokens = vec![String::new(); vocab.len()];
    for (token, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = token.clone();
    }
    let mut types = vec![1u32; tokens.len()];
    for added in tokenizer["added_tokens"].as_array().unwrap() {
        types[added["id"].as_u64().unwrap() as usize] = 3;
    }
    let merges: Vec<GgufValue> = tokenizer["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::Array(pair) => GgufValue::String(format!(
                "{} {}",
                pair[0].as_str().unwrap(),
                pair[1].as_str().unwrap()
            )),
            other => GgufValue::String(other.as_str().unwrap().to_string()),
        })
        .collect();
    let u32v = |v: usize| GgufValue::U32(v as u32);
    let metadata = vec![
        ("general.architecture", GgufValue::String("llama".into())),
        ("llama.embedding_length", u32v(config.hidden_size)),
        ("llama.feed_forward_length", u32v(config.intermediate_size)),
        ("llama.block_count", u32v(config.num_layers)),
        ("llama.attention.head_count", u32v(config.num_heads)),
        ("llama.attention.head_count_kv", u32v(config.num_kv_heads)),
        ("llama.attention.key_length", u32v(config.head_dim)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            GgufValue::F32(config.rms_norm_eps as f32),
        ),
        (
            "llama.rope.freq_base",
            GgufValue::F32(config.rope_theta as f32),
        ),
        ("llama.context_length", u32v(config.max_position_embeddings)),
        ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
        (
            "tokenizer.ggml.tokens",
            GgufValue::Array(
                tokens
                    .iter()
                    .map(|t| GgufValue::String(t.clone()))
                    .collect(),
            ),
        ),
        (
            "tokenizer.ggml.token_type",
            GgufValue::Array(types.iter().map(|&t| GgufValue::I32(t as i32)).collect()),
        ),
        ("tokenizer.ggml.merges", GgufValue::Array(merges)),
        (
            "tokenizer.chat_template",
            GgufValue::String(
                "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}".into(),
            ),
        ),
    ];
    let weights = SafetensorsFile::open(&dir.join("model.safetensors")).unwrap();
    let mut tensors: Vec<(String, Vec<u64>, Vec<u8>)> = Vec::new();
    for hf in weights.names() {
        let gguf_name = hf
            .replace("model.embed_tokens", "token_embd")
            .replace("model.norm", "output_norm")
            .replace("lm_head", "output")
            .replace("model.layers.", "blk.")
            .replace("self_attn.q_proj", "attn_q")
            .replace("self_attn.k_proj", "attn_k")
            .replace("self_attn.v_proj", "attn_v")
            .replace("self_attn.o_proj", "attn_output")
            .replace("mlp.gate_proj", "ffn_gate")
            .replace("mlp.up_proj", "ffn_up")
            .replace("mlp.down_proj", "ffn_down")
            .replace("post_attention_layernorm", "ffn_norm")
            .replace("input_layernorm", "attn_norm");
        let (shape, mut values) = weights.read_f32(hf).unwrap();
        // llama.cpp's converter: within each head, HF row j·d/2 + i becomes row 2i + j.
        let heads = if hf.contains("q_proj") {
            Some(config.num_heads)
        } else if hf.contains("k_proj") {
            Some(config.num_kv_heads)
        } else {
            None
        };
        if let Some(heads) = heads {
            let cols = shape.get(1).copied().unwrap_or(1);
            let (d, half) = (config.head_dim, config.head_dim / 2);
            let hf_rows = values.clone();
            for h in 0..heads {
                for j in 0..2 {
                    for i in 0..half {
                        let (from, to) = (h * d + j * half + i, h * d + 2 * i + j);
                        values[to * cols..(to + 1) * cols]
                            .copy_from_slice(&hf_rows[from * cols..(from + 1) * cols]);
                    }
                }
            }
        }
        let dims = shape.iter().rev().map(|&d| d as u64).collect();
        tensors.push((
            gguf_name,
            dims,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
    }
    // Llama 3.1-style scaling travels as a tensor of per-frequency divisors, as llama.cpp's
    // converter writes it (unscaled / scaled frequency).
    if let tandem_model::RopeScaling::Llama3 { .. } = config.rope_scaling {
        use tandem_model::families::rope::inverse_frequencies;
        let plain = inverse_frequencies(
            config.head_dim,
            config.rope_theta,
            &tandem_model::RopeScaling::None,
        );
        let scaled = inverse_frequencies(config.head_dim, config.rope_theta, &config.rope_scaling);
        let factors: Vec<u8> = plain
            .iter()
            .zip(&scaled)
            .flat_map(|(p, s)| ((p / s) as f32).to_le_bytes())
            .collect();
        tensors.push((
            "rope_freqs.weight".into(),
            vec![(config.head_dim / 2) as u64],
            factors,
        ));
    }
    let to_write: Vec<TensorToWrite> = tensors
        .iter()
        .map(|(name, dims, bytes)| TensorToWrite {
            name,
            dims: dims.clone(),
            ggml_type: GgmlType::F32,
            bytes,
        })
        .collect();
    let path =
        std::env::temp_dir().join(format!("tandem-fixture-{name}-{}.gguf", std::process::id()));
    std::fs::write(&path, gguf_bytes(&metadata, &to_write)).unwrap();
    path
}

#[test]
fn a_fixture_written_as_gguf_matches_transformers() {
    // A grouped-query model, and a tied one with Llama 3.1's RoPE scaling (rope_freqs).
    for name in ["llama-gqa", "llama3-tied"] {
        fixture_as_gguf_matches_transformers(name);
    }
}

fn fixture_as_gguf_matches_transformers(name: &str) {
    // Written by the test (GGUF names, dims, ggml's Q/K row order, the tokenizer as
    // tokenizer.ggml.*, a chat template), loaded by Tandem from the file alone: the ids
    // and every logit of transformers' reference, as from the fixture folder.
    let path = fixture_as_gguf(name);
    let dir = test_models::fixture_dir(name);
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let tokens: Vec<u32> = serde_json::from_value(reference["tokens"].clone()).unwrap();
    let expected: Vec<Vec<f32>> = serde_json::from_value(reference["logits"].clone()).unwrap();
    let tokenizer = tandem_model::Tokenizer::from_dir(&path).unwrap();
    let text = reference["text"].as_str().unwrap();
    assert_eq!(
        tokenizer.encode(text).unwrap(),
        tandem_model::Tokenizer::from_dir(&dir)
            .unwrap()
            .encode(text)
            .unwrap()
    );
    let chat = tokenizer
        .apply_chat_template(&[tandem_model::ChatMessage::new("user", "hi")], false)
        .unwrap();
    assert_eq!(chat, "<user>hi");
    let options = tandem_model::LoadOptions {
        context_len: Some(64),
        precision: tandem_model::Precision::F32,
        ..Default::default()
    };
    let mut model = tandem_model::cpu::CpuModel::load(&path, &options).unwrap();
    let logits = all_logits(&mut model, &tokens);
    let mut worst = 0.0f32;
    for (row, want) in logits.iter().zip(&expected) {
        for (x, y) in row.iter().zip(want) {
            worst = worst.max((x - y).abs());
        }
    }
    std::fs::remove_file(&path).unwrap();
    assert!(worst <= 1e-4, "{name}: max |logit - transformers| {worst}");
}

#[test]
fn a_sentencepiece_gguf_tokenizes_as_transformers_builds_it() {
    // tests/fixtures/gguf/spm-tokenizer.gguf: a Llama-2-style vocabulary (control tokens,
    // byte tokens, scored pieces, no merges) and the ids the tokenizer transformers
    // builds from it gives (scripts/gguf_spm_reference.py): spacing with ▁, byte
    // fallback, merges recovered from the scores, special tokens in the text.
    let dir = test_models::fixture_dir("gguf");
    let file = GgufFile::open(&dir.join("spm-tokenizer.gguf")).unwrap();
    let ours = tandem_model::formats::gguf_tokenizer::tokenizer(&file).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("spm-reference.json")).unwrap())
            .unwrap();
    let theirs_merges = reference["transformers_tokenizer"]["model"]["merges"].clone();
    let our_json = tandem_model::formats::gguf_tokenizer::tokenizer_json(&file).unwrap();
    assert_eq!(
        our_json["model"]["merges"], theirs_merges,
        "the recovered merges, in order"
    );
    for case in reference["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let encoding = ours.encode(text, true).unwrap();
        assert_eq!(encoding.get_ids(), expected.as_slice(), "{text:?}");
        assert_eq!(
            ours.decode(&expected, false).unwrap(),
            case["decoded"].as_str().unwrap(),
            "{text:?}"
        );
    }
}
