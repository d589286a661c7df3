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
    let mut target = load("qwen2-bias");
    let mut other_draft = load("llama-gqa");
    let mut self_draft = load("qwen2-bias");
    let (plain, _) = run(&mut target, None, RunMode::Plain, 1);
    assert_eq!(plain.len(), 40);
    let mut accepted_somewhere = false;
    for gamma in 1..=8 {
        let (spec, origins) = run(
            &mut target,
            Some(&mut other_draft),
            RunMode::Speculative,
            gamma,
        );
        assert_eq!(spec, plain, "unrelated draft, γ = {gamma}");
        let (own, own_origins) = run(
            &mut target,
            Some(&mut self_draft),
            RunMode::Speculative,
            gamma,
        );
        assert_eq!(own, plain, "self draft, γ = {gamma}");
        assert!(
            !own_origins.contains(&TokenOrigin::Corrected),
            "a model drafting for itself is never corrected in greedy mode (γ = {gamma})"
        );
        let nasd = RunMode::Nasd {
            ngram_n: 4,
            filler_top_k: None,
        };
        let (ngram, ngram_origins) = run(&mut target, None, nasd, gamma);
        assert_eq!(ngram, plain, "NASD, γ = {gamma}");
        accepted_somewhere |= origins.contains(&TokenOrigin::AcceptedDraft)
            || ngram_origins.contains(&TokenOrigin::NgramHit);
    }
    assert!(
        accepted_somewhere,
        "the drafts were never accepted: the test would prove little"
    );
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
