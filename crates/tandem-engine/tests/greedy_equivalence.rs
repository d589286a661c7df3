//! Greedy speculative and greedy NASD decoding on real burn models equal plain greedy
//! decoding token for token, for γ = 1..8: the tiny transformers fixtures (which share
//! one tokenizer, so any of them can draft for another).

use std::path::{Path, PathBuf};

use tandem_engine::{
    run_generation, GammaPolicy, GenerateRequest, LoadedModel, ModelSpec, RunMode, TokenOrigin,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn load(name: &str) -> LoadedModel {
    LoadedModel::load(&ModelSpec::new(fixture(name))).unwrap()
}

/// An int8 copy of a fixture in its own folder (the int8 cache is written beside it).
fn load_int8(name: &str) -> LoadedModel {
    let dir =
        std::env::temp_dir().join(format!("tandem-greedy-int8-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let mut spec = ModelSpec::new(&dir);
    spec.options.precision = tandem_model::Precision::Int8;
    LoadedModel::load(&spec).unwrap()
}

fn run(
    target: &mut LoadedModel,
    draft: Option<&mut LoadedModel>,
    mode: RunMode,
    gamma: usize,
) -> (Vec<u32>, Vec<TokenOrigin>) {
    let mut request = GenerateRequest::new(
        "The model reads 42 tokens, then writes! The model reads",
        mode,
    );
    request.max_new_tokens = 40;
    request.ignore_eos = true;
    request.gamma = GammaPolicy::Fixed(gamma);
    let out = run_generation(target, draft, &request, &mut |_, _| {}, None).unwrap();
    (out.result.tokens, out.result.origins)
}

#[test]
fn speculative_and_nasd_equal_plain_greedy_on_fixtures() {
    let (mut target, mut other, mut own) =
        (load("qwen2-bias"), load("llama-gqa"), load("qwen2-bias"));
    assert_greedy_equivalence(&mut target, &mut other, &mut own);
}

/// On the CPU engine's int8 kernels (activations quantized too) the exactness rests on
/// each row of a verify pass being the row computed alone.
#[test]
fn speculative_and_nasd_equal_plain_greedy_on_int8_fixtures() {
    let (mut target, mut other, mut own) = (
        load_int8("qwen2-bias"),
        load_int8("llama-gqa"),
        load_int8("qwen2-bias"),
    );
    assert_greedy_equivalence(&mut target, &mut other, &mut own);
}

fn assert_greedy_equivalence(
    target: &mut LoadedModel,
    other_draft: &mut LoadedModel,
    self_draft: &mut LoadedModel,
) {
    let (plain, _) = run(target, None, RunMode::Plain, 1);
    assert_eq!(plain.len(), 40);
    let mut accepted_somewhere = false;
    for gamma in 1..=8 {
        let (spec, origins) = run(target, Some(other_draft), RunMode::Speculative, gamma);
        assert_eq!(spec, plain, "unrelated draft, γ = {gamma}");
        let (own, own_origins) = run(target, Some(self_draft), RunMode::Speculative, gamma);
        assert_eq!(own, plain, "self draft, γ = {gamma}");
        assert!(
            !own_origins.contains(&TokenOrigin::Corrected),
            "a model drafting for itself is never corrected in greedy mode (γ = {gamma})"
        );
        let nasd = RunMode::Nasd {
            ngram_n: 4,
            filler_top_k: None,
        };
        let (ngram, ngram_origins) = run(target, None, nasd, gamma);
        assert_eq!(ngram, plain, "NASD, γ = {gamma}");
        accepted_somewhere |= origins.contains(&TokenOrigin::AcceptedDraft)
            || ngram_origins.contains(&TokenOrigin::NgramHit);
    }
    assert!(
        accepted_somewhere,
        "the drafts were never accepted: the test would prove little"
    );
}

/// A fixture limited to its first decoder layer: a cheaper model of the same family.
fn load_first_layer(name: &str, precision: tandem_model::Precision) -> LoadedModel {
    let mut spec = ModelSpec::new(fixture(name));
    spec.options.layer_limit = Some(1);
    spec.options.precision = precision;
    LoadedModel::load(&spec).unwrap()
}

/// Every newer family (q/k norms, Gemma's sandwich norms and soft-capping, sliding
/// layers crossing their window and the ring of the CPU engine's cache, partial
/// LongRoPE past its switch, NoPE layers): a model of the same family drafts (Gemma 3's
/// text model for its multimodal twin, else the fixture's first layer alone), the
/// model drafts for itself, and NASD, all equal to plain greedy for γ = 1..8.
#[test]
fn every_family_keeps_greedy_exact_with_a_draft_of_its_family() {
    let families = [
        ("qwen3-qknorm", None),
        ("gemma-mqa", None),
        ("gemma2-softcap", None),
        ("gemma3-vlm", Some("gemma3-text")),
        ("phi3-longrope", None),
        ("smollm3-nope", None),
    ];
    for (name, twin) in families {
        println!("{name}");
        let mut target = load(name);
        let mut family_draft = match twin {
            Some(twin) => load(twin),
            None => load_first_layer(name, tandem_model::Precision::F32),
        };
        let mut own = load(name);
        assert_greedy_equivalence(&mut target, &mut family_draft, &mut own);
    }
}

#[test]
fn every_family_keeps_greedy_exact_on_int8() {
    for name in [
        "qwen3-qknorm",
        "gemma2-softcap",
        "gemma3-text",
        "phi3-longrope",
        "smollm3-nope",
    ] {
        println!("{name}");
        let (mut target, mut own) = (load_int8(name), load_int8(name));
        let mut family_draft = load_first_layer(name, tandem_model::Precision::F32);
        assert_greedy_equivalence(&mut target, &mut family_draft, &mut own);
    }
}

#[test]
fn every_fixture_can_draft_for_every_other() {
    let names = ["llama-gqa", "llama3-tied", "qwen2-bias", "mistral-linear"];
    for target_name in names {
        let mut target = load(target_name);
        let (plain, _) = run(&mut target, None, RunMode::Plain, 1);
        for draft_name in names.iter().filter(|&&n| n != target_name) {
            let mut draft = load(draft_name);
            tandem_engine::check_draft(&target, &draft).unwrap();
            let (spec, _) = run(&mut target, Some(&mut draft), RunMode::Speculative, 3);
            assert_eq!(spec, plain, "{draft_name} drafting for {target_name}");
        }
    }
}

/// A self-draft whose logits cover only part of the vocabulary proposes only those ids:
/// where the target's token lies outside them the draft is corrected, and the output
/// still equals plain decoding; with the confidence rule, proposals also vary in length.
#[test]
fn a_draft_with_a_limited_vocabulary_keeps_greedy_exact() {
    let mut target = load("qwen2-bias");
    let (plain, _) = run(&mut target, None, RunMode::Plain, 1);
    let mut spec = ModelSpec::new(fixture("qwen2-bias"));
    spec.options.vocab_limit = Some(192);
    let mut draft = LoadedModel::load(&spec).unwrap();
    assert!(
        plain.iter().any(|&t| t >= 192) && plain.iter().any(|&t| t < 192),
        "the output should mix kept and dropped ids: {plain:?}"
    );
    for gamma in [
        GammaPolicy::Fixed(4),
        GammaPolicy::Confident {
            max: 6,
            min_prob: 0.5,
        },
    ] {
        let mut request = GenerateRequest::new(
            "The model reads 42 tokens, then writes! The model reads",
            RunMode::Speculative,
        );
        request.max_new_tokens = 40;
        request.ignore_eos = true;
        request.gamma = gamma.clone();
        let out = run_generation(
            &mut target,
            Some(&mut draft),
            &request,
            &mut |_, _| {},
            None,
        )
        .unwrap();
        assert_eq!(out.result.tokens, plain, "{gamma:?}");
        let origins = &out.result.origins;
        assert!(origins.contains(&TokenOrigin::AcceptedDraft), "{gamma:?}");
        assert!(origins.contains(&TokenOrigin::Corrected), "{gamma:?}");
    }
}
