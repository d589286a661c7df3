//! The doctor on the fixture pair and on copies edited to break one thing.

use serde_json::json;
use tandem_pairs::{doctor, DoctorOptions, Precision, Verdict};

use crate::support::{fixture, ModelCopy};

fn check(draft: &std::path::Path, target: &std::path::Path) -> Verdict {
    doctor(draft, target, &DoctorOptions::default())
}

fn mentions(items: &[String], text: &str) -> bool {
    items.iter().any(|item| item.contains(text))
}

#[test]
fn fixture_pair_is_compatible() {
    let verdict = check(&fixture("llama-gqa"), &fixture("qwen2-bias"));
    assert!(verdict.ok, "{:?}", verdict.problems);
    assert!(verdict.problems.is_empty());
    assert!(
        mentions(&verdict.notes, "same vocabulary (384 tokens)"),
        "{:?}",
        verdict.notes
    );
    assert!(mentions(&verdict.notes, "format chats the same way"));
    assert!(mentions(&verdict.notes, "LlamaForCausalLM"));
    assert!(mentions(&verdict.notes, "Qwen2ForCausalLM"));
    // The two fixtures are the same size (the Qwen one has a few biases
    // more), so the doctor warns that little speedup is to be expected.
    assert_eq!(verdict.warnings.len(), 1, "{:?}", verdict.warnings);
    assert!(verdict.warnings[0].contains("100% of the target's size"));
    let speedup = verdict.speedup.unwrap();
    assert!(speedup.draft_share > 0.99 && speedup.draft_share < 1.0);
    assert!(speedup.high < 1.1, "{speedup:?}");
    assert!(mentions(&verdict.notes, "no faster than the target alone"));
}

#[test]
fn memory_estimate_matches_a_hand_count() {
    let options = DoctorOptions {
        precision: Precision::Int8,
        context_len: 100,
    };
    let verdict = doctor(&fixture("llama-gqa"), &fixture("qwen2-bias"), &options);
    let memory = &verdict.memory;
    assert_eq!(
        (memory.precision, memory.context_len),
        (Precision::Int8, 100)
    );
    // llama-gqa int8: linear weights 98 304 bytes + 6 144 block scales (one per
    // output column and block of 16 input rows) · 2 + 1 408 column scales · 4 + the
    // other 24 896 parameters (embeddings, norms) · 4 = 215 808.
    let draft = memory.draft.unwrap();
    assert_eq!((draft.parameters, draft.weight_bytes), (123_200, 215_808));
    // qwen2-bias adds 2 · 128 f32 biases.
    let target = memory.target.unwrap();
    assert_eq!((target.parameters, target.weight_bytes), (123_456, 216_832));
    // KV: 2 layers · (K, V) · 2 KV heads · 16 · 4 bytes · 100 positions each.
    assert_eq!(draft.kv_cache_bytes, 2 * 2 * 2 * 16 * 4 * 100);
    assert_eq!(target.kv_cache_bytes, 51_200);
    assert_eq!(memory.total_bytes, 215_808 + 216_832 + 2 * 51_200);
    assert!(mentions(&verdict.notes, "int8 weights, 100-token context"));

    // f32 at the default context: 4 bytes a parameter, caches capped at the
    // fixtures' 256 positions.
    let verdict = check(&fixture("llama-gqa"), &fixture("qwen2-bias"));
    let draft = verdict.memory.draft.unwrap();
    assert_eq!(draft.weight_bytes, 4 * 123_200);
    assert_eq!((draft.context_len, draft.kv_cache_bytes), (256, 512 * 256));
    assert!(
        mentions(&verdict.notes, "at most 256 tokens"),
        "{:?}",
        verdict.notes
    );
}

#[test]
fn different_vocabularies_are_a_problem() {
    let target = ModelCopy::of("qwen2-bias");
    target.swap_tokens("#", "$");
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(!verdict.ok);
    assert_eq!(verdict.problems.len(), 1, "{:?}", verdict.problems);
    let problem = &verdict.problems[0];
    assert!(
        problem.contains(r##"token 5 is "#" in the draft but "$" in the target"##),
        "{problem}"
    );
    assert!(
        problem.contains("can't be checked by the target"),
        "{problem}"
    );
}

#[test]
fn padded_target_vocabulary_is_fine() {
    // As Qwen2.5-7B: the target's output layer is wider than the draft's and
    // its tokenizer has an extra token past the shared ids.
    let target = ModelCopy::of("qwen2-bias");
    target
        .edit("config.json", |config| config["vocab_size"] = json!(400))
        .edit("tokenizer.json", |tokenizer| {
            tokenizer["added_tokens"]
                .as_array_mut()
                .unwrap()
                .push(json!({
                    "id": 384, "content": "<|extra_0|>", "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true
                }))
        });
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(verdict.ok, "{:?}", verdict.problems);
    assert!(
        mentions(&verdict.notes, "the target knows 1 more token (385 in all)"),
        "{:?}",
        verdict.notes
    );
    assert!(
        mentions(&verdict.notes, "padded to 400"),
        "{:?}",
        verdict.notes
    );

    // The other way round, the draft could guess a token the target lacks.
    let verdict = check(&target.dir, &fixture("llama-gqa"));
    assert!(!verdict.ok);
    assert!(
        mentions(&verdict.problems, "more tokens (385) than the target (384)"),
        "{:?}",
        verdict.problems
    );
}

#[test]
fn config_without_room_for_the_tokenizer_is_a_problem() {
    let target = ModelCopy::of("qwen2-bias");
    target.edit("config.json", |config| config["vocab_size"] = json!(300));
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(!verdict.ok);
    assert!(
        mentions(
            &verdict.problems,
            "tokenizer has 384 tokens but the target model only has room for 300"
        ),
        "{:?}",
        verdict.problems
    );
}

#[test]
fn different_end_tokens_are_a_problem() {
    let target = ModelCopy::of("qwen2-bias");
    target
        .edit("config.json", |config| config["eos_token_id"] = json!(1))
        .edit("generation_config.json", |config| {
            config["eos_token_id"] = json!([1])
        });
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(!verdict.ok);
    assert_eq!(verdict.problems.len(), 1, "{:?}", verdict.problems);
    assert!(
        verdict.problems[0]
            .contains(r#"draft: "<|im_end|>" (id 2); target: "<|im_start|>" (id 1)"#),
        "{}",
        verdict.problems[0]
    );

    let target = ModelCopy::of("qwen2-bias");
    target.edit("tokenizer_config.json", |config| {
        config["eos_token"] = json!("<|endoftext|>")
    });
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(!verdict.ok);
    assert!(
        mentions(
            &verdict.problems,
            r#"end-of-answer tokens (draft: "<|im_end|>"; target: "<|endoftext|>")"#
        ),
        "{:?}",
        verdict.problems
    );

    let target = ModelCopy::of("qwen2-bias");
    target
        .edit("config.json", |config| config["bos_token_id"] = json!(1))
        .edit("generation_config.json", |config| {
            config["bos_token_id"] = json!(1)
        });
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(
        mentions(&verdict.problems, "start text with different tokens"),
        "{:?}",
        verdict.problems
    );
}

#[test]
fn a_different_chat_template_is_only_a_warning() {
    let target = ModelCopy::of("qwen2-bias");
    target.edit("tokenizer_config.json", |config| {
        config["chat_template"] = json!("{% for m in messages %}{{ m.content }}{% endfor %}")
    });
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(verdict.ok, "{:?}", verdict.problems);
    assert!(
        mentions(&verdict.warnings, "chat templates differ"),
        "{:?}",
        verdict.warnings
    );

    let draft = ModelCopy::of("llama-gqa");
    draft.edit("tokenizer_config.json", |config| {
        config.as_object_mut().unwrap().remove("chat_template");
    });
    let verdict = check(&draft.dir, &fixture("qwen2-bias"));
    assert!(verdict.ok);
    assert!(mentions(
        &verdict.warnings,
        "Only the target has a chat template"
    ));
}

#[test]
fn unsupported_architecture_fails_with_the_reason() {
    let target = ModelCopy::of("qwen2-bias");
    target.edit("config.json", |config| {
        config["architectures"] = json!(["GPT2LMHeadModel"])
    });
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(!verdict.ok);
    assert!(mentions(
        &verdict.problems,
        "The target model can't be used"
    ));
    assert!(
        mentions(&verdict.problems, "GPT2LMHeadModel"),
        "{:?}",
        verdict.problems
    );
    // The rest is still judged from what could be read.
    assert!(mentions(&verdict.notes, "same vocabulary"));
    assert!(verdict.memory.draft.is_some() && verdict.memory.target.is_none());
}

#[test]
fn a_draft_bigger_than_the_target_is_warned_about() {
    let target = ModelCopy::of("qwen2-bias");
    target.edit("config.json", |config| {
        config["num_hidden_layers"] = json!(1);
        // One entry a layer, or none.
        config.as_object_mut().unwrap().remove("layer_types");
    });
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(verdict.ok, "{:?}", verdict.problems);
    assert!(
        mentions(&verdict.warnings, "not smaller than the target"),
        "{:?}",
        verdict.warnings
    );
    assert_eq!(verdict.speedup, None);

    // A draft a tenth the size is fine and promises a real gain.
    let big = ModelCopy::of("qwen2-bias");
    big.edit("config.json", |config| {
        config["num_hidden_layers"] = json!(40);
        // One entry a layer, or none.
        config.as_object_mut().unwrap().remove("layer_types");
    });
    let verdict = check(&fixture("llama-gqa"), &big.dir);
    assert!(verdict.warnings.is_empty(), "{:?}", verdict.warnings);
    assert!(verdict.speedup.unwrap().low > 1.3);
    assert!(mentions(&verdict.notes, "Rough guess"));
}

#[test]
fn an_absurd_vocab_size_is_a_problem_not_an_abort() {
    // A tiny tokenizer with a config claiming three billion tokens: the doctor
    // once sized its token table by that number.
    let target = ModelCopy::of("qwen2-bias");
    target.edit("config.json", |config| {
        config["vocab_size"] = json!(3_000_000_000u64)
    });
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(!verdict.ok);
    assert!(
        mentions(&verdict.problems, "vocab_size") && mentions(&verdict.problems, "3000000000"),
        "{:?}",
        verdict.problems
    );
}

#[test]
fn an_added_token_with_an_absurd_id_does_not_size_the_token_table() {
    let target = ModelCopy::of("qwen2-bias");
    target.edit("tokenizer.json", |tokenizer| {
        tokenizer["added_tokens"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "id": 4_000_000_000u64, "content": "<|far|>", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true
            }))
    });
    let started = std::time::Instant::now();
    let verdict = check(&fixture("llama-gqa"), &target.dir);
    assert!(started.elapsed().as_secs() < 20);
    // The token past the config's vocab_size is reported, not allocated for.
    assert!(!verdict.ok, "{verdict:?}");
}

#[test]
fn a_gguf_draft_pairs_with_a_folder_of_the_same_tokenizer() {
    // SmolLM2's GGUF file against the folder converted from it: the vocabulary check
    // reads the GGUF's token list, the end tokens its ids.
    let (Some(gguf), Some(folder)) = (
        tandem_model::test_models::smollm2_gguf(),
        tandem_model::test_models::smollm2(),
    ) else {
        return;
    };
    let verdict = check(&gguf, &folder);
    assert!(verdict.ok, "{:?}", verdict.problems);
    assert!(
        mentions(&verdict.notes, "same vocabulary (49152 tokens)"),
        "{:?}",
        verdict.notes
    );
    // Against a different tokenizer it is a problem, as for two folders.
    let verdict = check(&gguf, &fixture("llama-gqa"));
    assert!(!verdict.ok);
}
