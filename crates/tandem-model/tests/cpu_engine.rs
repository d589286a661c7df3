//! The CPU engine against transformers (f32 logits within 1e-4 on every fixture), against
//! the burn model it follows, and the property greedy speculation rests on: each row of
//! a multi-token forward is bit-identical to the same row computed alone, for 1..17
//! rows, in f32 and int8, on every instruction set the CPU has.

use std::path::Path;

use tandem_decode::sampling::argmax;
use tandem_decode::CausalLm;
use tandem_model::cpu::isa::Isa;
use tandem_model::cpu::CpuModel;
use tandem_model::formats::safetensors::WeightFiles;
use tandem_model::test_models::{self, fixture_reference, logit_rows, max_abs_diff};
use tandem_model::{Flex, Llama, LoadOptions, ModelConfig, Precision};

use tandem_model::test_models::FIXTURES;

fn load(dir: &Path, precision: Precision) -> CpuModel {
    let options = LoadOptions {
        precision,
        ..Default::default()
    };
    // `from_weights` for int8: the fixtures' folders stay free of int8 caches.
    let config = ModelConfig::from_dir(dir).unwrap();
    let weights = WeightFiles::open(dir).unwrap();
    CpuModel::from_weights(config, &weights, &options).unwrap()
}

fn rows(model: &mut CpuModel, tokens: &[u32]) -> Vec<Vec<f32>> {
    let logits = model.forward(tokens).unwrap();
    (0..logits.rows).map(|r| logits.row(r).to_vec()).collect()
}

#[test]
fn f32_logits_match_transformers() {
    for name in FIXTURES {
        let reference = fixture_reference(name);
        let mut model = load(&test_models::fixture_dir(name), Precision::F32);
        let diff = max_abs_diff(&rows(&mut model, &reference.tokens), &reference.logits);
        println!("{name}: max |logit difference| = {diff:e}");
        assert!(diff <= 1e-4, "{name}: {diff}");
    }
}

#[test]
fn f32_greedy_continuation_matches_transformers_generate() {
    for name in FIXTURES {
        let reference = fixture_reference(name);
        let mut model = load(&test_models::fixture_dir(name), Precision::F32);
        let prompt = &reference.tokens[..reference.greedy_prompt_len];
        let mut last = rows(&mut model, prompt).pop().unwrap();
        let mut generated = Vec::new();
        for _ in 0..reference.greedy.len() {
            let next = argmax(&last);
            generated.push(next);
            last = rows(&mut model, &[next]).pop().unwrap();
        }
        assert_eq!(generated, reference.greedy, "{name}");
    }
}

/// Each row of a forward of `n` tokens after a prefix equals that row computed alone
/// (the tokens fed one at a time), bit for bit, for n = 1..=17.
fn assert_batch_invariant(model: &mut CpuModel, tokens: &[u32], label: &str) {
    let prefix = 5;
    model.reset();
    model.forward(&tokens[..prefix]).unwrap();
    let mut alone = Vec::new();
    for &t in &tokens[prefix..] {
        alone.push(model.forward(&[t]).unwrap().row(0).to_vec());
    }
    for n in 1..=17.min(tokens.len() - prefix) {
        model.truncate(prefix);
        let batch = rows(model, &tokens[prefix..prefix + n]);
        for (r, row) in batch.iter().enumerate() {
            assert!(
                row == &alone[r],
                "{label}: row {r} of a {n}-row pass differs from the row alone"
            );
        }
    }
}

#[test]
fn rows_are_bit_identical_to_the_row_alone_for_1_to_17_rows() {
    for name in FIXTURES {
        // 5 prefix tokens and 17 more: the fixture's 24 tokens.
        let tokens = fixture_reference(name).tokens;
        for precision in [Precision::F32, Precision::Int8] {
            let mut model = load(&test_models::fixture_dir(name), precision);
            for isa in Isa::available() {
                model.set_isa(isa);
                assert_batch_invariant(&mut model, &tokens, &format!("{name} {precision} {isa}"));
            }
        }
    }
}

#[test]
fn every_isa_gives_the_portable_logits() {
    for name in FIXTURES {
        let tokens = fixture_reference(name).tokens;
        for precision in [Precision::F32, Precision::Int8] {
            let mut model = load(&test_models::fixture_dir(name), precision);
            model.set_isa(Isa::Portable);
            let want = rows(&mut model, &tokens);
            for isa in Isa::available() {
                model.set_isa(isa);
                model.reset();
                assert!(
                    rows(&mut model, &tokens) == want,
                    "{name} {precision} {isa}"
                );
            }
        }
    }
}

#[test]
fn a_long_prefill_in_chunks_equals_single_steps_and_truncation_rolls_back() {
    // 70 tokens: three chunks of the engine (32 + 32 + 6); past the ring (window 8 + 32
    // positions) of the sliding layers of the Gemma fixtures.
    for name in ["qwen2-bias", "gemma2-softcap", "gemma3-text"] {
        long_prefill_in_chunks(name);
    }
}

fn long_prefill_in_chunks(name: &str) {
    let dir = test_models::fixture_dir(name);
    let tokens: Vec<u32> = (0..70).map(|i| (i * 37 + 11) % 384).collect();
    // The burn model keeps every position and masks: the ring must give its numbers.
    let mut burn = Llama::<Flex>::load(&dir, &LoadOptions::default(), &Default::default()).unwrap();
    let reference = logit_rows(&mut burn, &tokens);
    for precision in [Precision::F32, Precision::Int8] {
        let mut model = load(&dir, precision);
        let full = rows(&mut model, &tokens);
        assert_eq!(model.cached_len(), 70);
        if precision == Precision::F32 {
            let diff = max_abs_diff(&full, &reference);
            assert!(
                diff <= 1e-4,
                "{name}: CPU engine vs burn over 70 tokens: {diff}"
            );
        }
        model.reset();
        let mut stepwise = Vec::new();
        for &t in &tokens {
            stepwise.extend(rows(&mut model, &[t]));
        }
        assert!(
            full == stepwise,
            "{name} {precision}: chunked prefill differs from single steps"
        );
        // Feed wrong drafts, roll back, feed the truth: as a fresh run.
        model.truncate(40);
        rows(&mut model, &[1, 2, 3, 4]);
        model.truncate(40);
        let again = rows(&mut model, &tokens[40..]);
        assert!(
            again[..] == full[40..],
            "{name} {precision}: truncate + re-forward differs"
        );
        // forward_last asks for the tail rows only.
        model.reset();
        let tail = model.forward_last(&tokens, 3).unwrap();
        assert_eq!(tail.rows, 3);
        for r in 0..3 {
            assert!(tail.row(r) == &full[67 + r][..]);
        }
    }
}

#[test]
fn matches_the_burn_model_with_a_sliding_window_and_a_layer_limit() {
    let dir = test_models::fixture_dir("mistral-linear");
    let mut config = ModelConfig::from_dir(&dir).unwrap();
    config.sliding_window = Some(5);
    config
        .layers
        .iter_mut()
        .for_each(|layer| layer.sliding = true);
    let weights = WeightFiles::open(&dir).unwrap();
    let tokens = fixture_reference("mistral-linear").tokens;
    for layer_limit in [None, Some(1)] {
        let options = LoadOptions {
            layer_limit,
            ..Default::default()
        };
        let mut cpu = CpuModel::from_weights(config.clone(), &weights, &options).unwrap();
        let mut burn =
            Llama::<Flex>::from_weights(config.clone(), &weights, &options, &Default::default())
                .unwrap();
        let diff = max_abs_diff(&rows(&mut cpu, &tokens), &logit_rows(&mut burn, &tokens));
        assert!(diff <= 1e-4, "window 5, layers {layer_limit:?}: {diff}");
    }
}

#[test]
fn int8_is_close_to_f32_on_the_fixtures() {
    for name in FIXTURES {
        let tokens = fixture_reference(name).tokens;
        let dir = test_models::fixture_dir(name);
        let f32_rows = rows(&mut load(&dir, Precision::F32), &tokens);
        let int8_rows = rows(&mut load(&dir, Precision::Int8), &tokens);
        let diff = max_abs_diff(&f32_rows, &int8_rows);
        let agree = f32_rows
            .iter()
            .zip(&int8_rows)
            .filter(|(a, b)| argmax(a) == argmax(b))
            .count();
        println!(
            "{name}: int8 top-1 {agree}/{} max |logit error| {diff}",
            tokens.len()
        );
        assert!(diff < 0.5, "{name}: {diff}");
        assert!(
            agree * 10 >= tokens.len() * 9,
            "{name}: {agree}/{}",
            tokens.len()
        );
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = test_models::fixture_dir("llama-gqa");
    let options = LoadOptions {
        context_len: Some(8),
        ..Default::default()
    };
    let config = ModelConfig::from_dir(&dir).unwrap();
    let weights = WeightFiles::open(&dir).unwrap();
    let mut model = CpuModel::from_weights(config, &weights, &options).unwrap();
    assert!(model.forward(&[]).is_err());
    assert!(model.forward(&[384]).is_err(), "token past the vocabulary");
    assert!(model.forward(&[1; 9]).is_err(), "past the context");
    assert_eq!(model.cached_len(), 0, "a refused forward changes nothing");
    assert!(model.forward(&[1; 8]).is_ok());
}

#[test]
fn limited_logits_equal_the_full_heads_on_the_kept_ids() {
    for name in FIXTURES {
        let tokens = fixture_reference(name).tokens;
        let dir = test_models::fixture_dir(name);
        for precision in [Precision::F32, Precision::Int8] {
            let full = rows(&mut load(&dir, precision), &tokens);
            let vocab = full[0].len();
            // A prefix, a lone id, the last id, a repeat and one past the vocabulary.
            let keep = [
                (0..40).collect(),
                vec![77, vocab as u32 - 1, 5, vocab as u32],
            ]
            .concat();
            let mut limited = load(&dir, precision);
            limited.limit_logits(&keep);
            assert_eq!(limited.logit_ids().unwrap().len(), 42);
            let limited_rows = rows(&mut limited, &tokens);
            for (r, (full, limited)) in full.iter().zip(&limited_rows).enumerate() {
                for (id, (&f, &l)) in full.iter().zip(limited).enumerate() {
                    if id < 40 || id == 77 || id == vocab - 1 {
                        assert_eq!(
                            f.to_bits(),
                            l.to_bits(),
                            "{name} {precision}: row {r} id {id}"
                        );
                    } else {
                        assert_eq!(l, f32::NEG_INFINITY, "{name} {precision}: row {r} id {id}");
                    }
                }
            }
            // A second limit narrows the first.
            limited.reset();
            limited.limit_logits(&[3, 77, 100]);
            assert_eq!(limited.logit_ids().unwrap(), [3, 77]);
            let narrowed = rows(&mut limited, &tokens);
            assert_eq!(narrowed[0][77].to_bits(), full[0][77].to_bits());
            assert_eq!(narrowed[0][5], f32::NEG_INFINITY);
        }
    }
}

#[test]
fn a_vocabulary_limit_keeps_the_tokenizers_special_tokens() {
    let dir = test_models::fixture_dir("qwen2-bias");
    let special = tandem_model::Tokenizer::from_dir(&dir)
        .unwrap()
        .added_token_ids();
    // The fixture's added tokens are ids 0, 1 and 2: a limit of 1 must keep 1 and 2.
    assert!(special.iter().any(|&id| id >= 1), "{special:?}");
    let options = LoadOptions {
        vocab_limit: Some(1),
        ..Default::default()
    };
    let model = CpuModel::load(&dir, &options).unwrap();
    let vocab = model.config().vocab_size as u32;
    let mut expected: Vec<u32> = (0..1)
        .chain(special.into_iter().filter(|&id| id < vocab))
        .collect();
    expected.sort_unstable();
    expected.dedup();
    assert_eq!(model.logit_ids().unwrap(), expected);

    let zero = LoadOptions {
        vocab_limit: Some(0),
        ..Default::default()
    };
    let error = CpuModel::load(&dir, &zero).err().unwrap().to_string();
    assert!(error.contains("vocabulary limit"), "{error}");
    let burn = Llama::<Flex>::load(&dir, &options, &Default::default());
    let error = burn.err().unwrap().to_string();
    assert!(error.contains("CPU engine"), "{error}");
}

/// A sliding layer keeps its window plus one chunk: a rollback deeper than that cannot
/// be continued, and says so instead of attending to overwritten positions.
#[test]
fn a_rollback_past_the_sliding_ring_is_refused_until_reset() {
    let mut model = load(&test_models::fixture_dir("gemma2-softcap"), Precision::F32);
    let tokens: Vec<u32> = (0..70).map(|i| (i * 37 + 11) % 384).collect();
    let full = rows(&mut model, &tokens);
    model.truncate(10);
    let err = model
        .forward_tail(&tokens[10..12], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rollback") && err.contains("reset"), "{err}");
    model.reset();
    assert!(rows(&mut model, &tokens) == full);
}

/// f16 weights are a burn backend's (the GPU's half precision): the CPU engine refuses
/// them by name instead of loading f32 under an f16 label.
#[test]
fn f16_is_refused_with_a_clear_error() {
    let dir = test_models::fixture_dir("llama-gqa");
    let options = LoadOptions {
        precision: Precision::F16,
        ..Default::default()
    };
    let error = CpuModel::load(&dir, &options).err().expect("f16 refused");
    let text = error.to_string();
    assert!(
        text.contains("f16") && text.contains("flex or cuda"),
        "{text}"
    );
}
