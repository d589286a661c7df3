//! What a chat model's files ask of a run: the chat template's thinking switch
//! (`enable_thinking`, Qwen3 and SmolLM3) and every end token generation_config.json
//! lists (Llama 3 and Gemma 3 list several).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tandem_engine::{
    run_generation, CompareRequest, GammaPolicy, GenerateRequest, LoadedModel, ModelSpec, PairSpec,
    RunMode, Session, StopReason,
};
use tandem_model::test_models::fixture_dir;

const PROMPT: &str = "The model reads 42 tokens, then writes! The model reads";

/// A copy of a fixture model folder, to edit.
fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture_dir(name)).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    (root, dir)
}

fn edit_json(path: &Path, change: impl FnOnce(&mut Value)) {
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    change(&mut json);
    std::fs::write(path, json.to_string()).unwrap();
}

fn greedy(mode: RunMode, tokens: usize) -> GenerateRequest {
    let mut request = GenerateRequest::new(PROMPT, mode);
    request.max_new_tokens = tokens;
    request.gamma = GammaPolicy::Fixed(3);
    request
}

fn generate(
    target: &Path,
    draft: Option<&Path>,
    request: &GenerateRequest,
) -> (Vec<u32>, StopReason) {
    let load = |dir: &Path| LoadedModel::load(&ModelSpec::new(dir.to_path_buf())).unwrap();
    let mut target = load(target);
    let mut draft = draft.map(load);
    let output =
        run_generation(&mut target, draft.as_mut(), request, &mut |_, _| {}, None).unwrap();
    (output.result.tokens, output.result.summary.stop_reason)
}

#[test]
fn every_end_token_of_generation_config_stops_a_run() {
    // The free-running output, then a model whose generation_config.json lists a token
    // of it as a second end token (config.json names only the first, as Llama 3.1's
    // base config names one of the three its generation_config lists).
    let fixture = fixture_dir("qwen2-bias");
    let mut free = greedy(RunMode::Plain, 24);
    free.ignore_eos = true;
    let (free_tokens, _) = generate(&fixture, None, &free);
    let loaded = LoadedModel::load(&ModelSpec::new(fixture.clone())).unwrap();
    let usual = loaded.eos_token_ids();
    let (at, stop) = free_tokens
        .iter()
        .enumerate()
        .skip(2)
        .find(|(i, t)| !usual.contains(t) && !free_tokens[..*i].contains(t))
        .map(|(i, &t)| (i, t))
        .expect("a token to stop at");

    let (_root, dir) = copy_of("qwen2-bias");
    edit_json(&dir.join("generation_config.json"), |config| {
        config["eos_token_id"] = json!([usual[0], stop])
    });
    let model = LoadedModel::load(&ModelSpec::new(dir.clone())).unwrap();
    assert!(model.eos_token_ids().contains(&stop));
    assert!(model.eos_token_ids().contains(&usual[0]));
    let draft = fixture_dir("llama-gqa");
    for (mode, draft) in [
        (RunMode::Plain, None),
        (RunMode::Speculative, Some(draft.as_path())),
        (
            RunMode::Nasd {
                ngram_n: 4,
                filler_top_k: None,
            },
            None,
        ),
    ] {
        let label = mode.label();
        let (tokens, reason) = generate(&dir, draft, &greedy(mode, 24));
        assert_eq!(reason, StopReason::Eos { token: stop }, "{label}");
        // Kept as the last token, nothing after it.
        assert_eq!(tokens, free_tokens[..=at], "{label}");
    }
}

/// The end of Qwen3's chat template: thinking on unless `enable_thinking` is false.
const QWEN3_TEMPLATE: &str = "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";

#[test]
fn the_thinking_switch_reaches_the_chat_template_and_the_log() {
    let (_root, dir) = copy_of("qwen2-bias");
    edit_json(&dir.join("tokenizer_config.json"), |config| {
        config["chat_template"] = json!(QWEN3_TEMPLATE)
    });
    let session = Session::new(None);
    session
        .load(&PairSpec::new(&dir).with_draft(fixture_dir("llama-gqa")))
        .unwrap();
    let request = |enable_thinking: Option<bool>| {
        let mut request = greedy(RunMode::Plain, 4);
        request.chat = true;
        request.enable_thinking = enable_thinking;
        request
    };
    let turn = format!("<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n");
    let no_think = format!("{turn}<think>\n\n</think>\n\n");
    for (thinking, expected) in [(None, &turn), (Some(true), &turn), (Some(false), &no_think)] {
        let record = session.generate(&request(thinking), &mut |_| {}).unwrap();
        assert_eq!(&record.header.prompt_text, expected, "{thinking:?}");
        assert_eq!(record.header.enable_thinking, thinking);
        // Left to the template, the log does not mention it (older readers see no change).
        let header = serde_json::to_value(&record.header).unwrap();
        assert_eq!(header.get("enable_thinking").is_some(), thinking.is_some());
    }

    // A race renders its prompt once, before the models are taken, with the switch.
    let race = CompareRequest::new(
        request(Some(false)),
        vec![RunMode::Plain, RunMode::Speculative],
    );
    let comparison = session.compare(&race, &mut |_| {}).unwrap();
    for run in &comparison.runs {
        assert_eq!(run.header.prompt_text, no_think, "{}", run.label());
        assert_eq!(run.header.enable_thinking, Some(false));
    }
    // The report says so next to the chat template.
    let html = tandem_engine::export::html::render_html(&tandem_engine::export::html::Report {
        title: "race".into(),
        comparisons: std::slice::from_ref(&comparison),
        summary: None,
        collapse_races: false,
    });
    assert!(html.contains("chat template, thinking off"));

    // A request without the field (an older client) leaves the template's default.
    let json = serde_json::to_value(request(None)).unwrap();
    assert!(json.get("enable_thinking").is_none());
    let back: GenerateRequest = serde_json::from_value(json).unwrap();
    assert_eq!(back.enable_thinking, None);
}

/// Gemma 1's instruct models list only `<eos>` as their end token, yet end each answer
/// with `<end_of_turn>`, the marker their template closes turns with: a marker the chat
/// template uses ends a generation too, whatever the configs list.
#[test]
fn the_chat_templates_end_of_turn_marker_ends_a_generation() {
    let (_root, dir) = copy_of("qwen2-bias");
    // Only <|endoftext|> (0) is named an end token anywhere; the ChatML template still
    // closes every turn with <|im_end|> (2).
    for file in ["config.json", "generation_config.json"] {
        edit_json(&dir.join(file), |config| config["eos_token_id"] = json!(0));
    }
    edit_json(&dir.join("tokenizer_config.json"), |config| {
        config["eos_token"] = json!("<|endoftext|>")
    });
    let model = LoadedModel::load(&ModelSpec::new(dir.clone())).unwrap();
    let ids = model.eos_token_ids();
    assert!(ids.contains(&0) && ids.contains(&2), "{ids:?}");
    // A template that never writes the marker does not make it an end token.
    edit_json(&dir.join("tokenizer_config.json"), |config| {
        config["chat_template"] = json!("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    });
    let model = LoadedModel::load(&ModelSpec::new(dir)).unwrap();
    assert_eq!(model.eos_token_ids(), vec![0]);
}
