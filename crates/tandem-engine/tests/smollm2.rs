//! SmolLM2-135M-Instruct, a real model (fetched by `shared/models/fetch.sh`): its greedy
//! output and chat template equal what Hugging Face transformers gives for the same
//! folder, and speculative and NASD decoding reproduce plain greedy decoding exactly.
//!
//! Expected values were produced with transformers 5.23 / torch 2.15 (float32, eager
//! attention) on the converted folder: `generate(do_sample=False)` and
//! `apply_chat_template(tokenize=False, add_generation_prompt=True)`.

use tandem_engine::{
    run_generation, GammaPolicy, GenerateRequest, LoadOptions, LoadedModel, ModelSpec, RunMode,
    StopReason, TokenOrigin,
};
use tandem_model::test_models;
use tandem_model::ChatMessage;

fn load(layer_limit: Option<usize>) -> Option<LoadedModel> {
    let dir = test_models::smollm2()?;
    let spec = ModelSpec {
        dir,
        options: LoadOptions {
            context_len: Some(512),
            layer_limit,
            ..Default::default()
        },
        ..Default::default()
    };
    Some(LoadedModel::load(&spec).unwrap())
}

const RAW_PROMPT: &str = "The three primary colors are";
/// transformers' 24 greedy tokens after RAW_PROMPT (EOS ignored).
const RAW_CONTINUATION: [u32; 24] = [
    260, 3003, 4683, 282, 260, 35526, 2380, 1743, 42, 2382, 28, 4461, 28, 284, 2654, 30, 1216,
    4683, 359, 4959, 288, 260, 35526, 2380,
];
const RAW_TEXT: &str =
    " the primary colors of the RGB color model: red, blue, and green. These colors are fundamental to the RGB color";

fn raw_request(mode: RunMode, gamma: usize) -> GenerateRequest {
    let mut request = GenerateRequest::new(RAW_PROMPT, mode);
    request.max_new_tokens = RAW_CONTINUATION.len();
    request.ignore_eos = true;
    request.gamma = GammaPolicy::Fixed(gamma);
    request
}

#[test]
fn chat_template_renders_exactly_as_transformers() {
    let Some(model) = load(Some(1)) else { return };
    let rendered = model
        .tokenizer
        .apply_chat_template(
            &[ChatMessage::new("user", "What is the capital of France?")],
            true,
        )
        .unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn greedy_answers_match_transformers() {
    let Some(mut model) = load(None) else { return };
    let mut request = GenerateRequest::new("What is the capital of France?", RunMode::Plain);
    request.chat = true;
    request.max_new_tokens = 24;
    let out = run_generation(&mut model, None, &request, &mut |_, _| {}, None).unwrap();
    assert_eq!(out.result.tokens, [504, 3575, 282, 4649, 314, 7042, 30, 2]);
    assert_eq!(out.text, "The capital of France is Paris.<|im_end|>");
    assert_eq!(out.result.summary.stop_reason, StopReason::Eos { token: 2 });

    let out = run_generation(
        &mut model,
        None,
        &raw_request(RunMode::Plain, 1),
        &mut |_, _| {},
        None,
    )
    .unwrap();
    assert_eq!(out.result.tokens, RAW_CONTINUATION);
    assert_eq!(out.text, RAW_TEXT);
}

#[test]
fn speculative_and_nasd_reproduce_plain_greedy() {
    let (Some(mut target), Some(mut same), Some(mut weaker)) =
        (load(None), load(None), load(Some(10)))
    else {
        return;
    };
    let mut weaker_corrected = false;
    for gamma in 1..=8 {
        let run = |target: &mut LoadedModel, draft: Option<&mut LoadedModel>, mode: RunMode| {
            run_generation(
                target,
                draft,
                &raw_request(mode, gamma),
                &mut |_, _| {},
                None,
            )
            .unwrap()
            .result
        };
        let own = run(&mut target, Some(&mut same), RunMode::Speculative);
        assert_eq!(own.tokens, RAW_CONTINUATION, "self draft, γ = {gamma}");
        assert_eq!(
            own.summary.alpha,
            Some(1.0),
            "a model drafting for itself is always accepted"
        );

        let weak = run(&mut target, Some(&mut weaker), RunMode::Speculative);
        assert_eq!(weak.tokens, RAW_CONTINUATION, "10-layer draft, γ = {gamma}");
        weaker_corrected |= weak.origins.contains(&TokenOrigin::Corrected);

        let nasd = run(
            &mut target,
            None,
            RunMode::Nasd {
                ngram_n: 4,
                filler_top_k: None,
            },
        );
        assert_eq!(nasd.tokens, RAW_CONTINUATION, "NASD, γ = {gamma}");
    }
    assert!(
        weaker_corrected,
        "the 10-layer draft was never corrected: it is not a weaker draft"
    );
}
