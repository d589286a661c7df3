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
