//! The run log format, pinned: a speculative run on the fixtures is written as JSONL and
//! compared field by field with a committed golden file, after normalising what changes
//! from run to run or machine to machine (timings, version, ids, dates, paths, device)
//! and rounding probabilities to 4 decimals (CPU kernels may differ in the last bits).
//!
//! After a deliberate format change, regenerate the golden file with
//! `TANDEM_BLESS=1 cargo test -p tandem-engine --test log_golden`, review the diff, and
//! bump `LOG_SCHEMA_VERSION` if a reader could be surprised.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem_engine::export::jsonl::{read_log, write_log};
use tandem_engine::record::{run_recorded, RunContext};
use tandem_engine::{GammaPolicy, GenerateRequest, LoadedModel, LoadedPair, ModelSpec, RunMode};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/speculative-run.jsonl")
}

/// Keys whose values vary between runs or machines.
const VOLATILE: [&str; 10] = [
    "tandem_version",
    "run_id",
    "created_at",
    "device",
    "draft_ms",
    "verify_ms",
    "wall_ms",
    "model_ms",
    "tokens_per_second",
    "time_to_first_token_ms",
];

fn normalise(value: &mut Value, key: Option<&str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if VOLATILE.contains(&k.as_str()) && !v.is_null() {
                    *v = Value::String(format!("<{k}>"));
                } else {
                    normalise(v, Some(k));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| normalise(v, key)),
        Value::String(s) if key == Some("path") => {
            // Absolute fixture paths differ per checkout: keep the part from `tests/`.
            if let Some(i) = s.find("tests/fixtures") {
                *s = s[i..].to_string();
            }
        }
        Value::Number(n) if n.is_f64() => {
            let rounded = (n.as_f64().unwrap() * 1e4).round() / 1e4;
            *value = serde_json::json!(rounded);
        }
        _ => {}
    }
}

fn normalised_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            normalise(&mut value, None);
            value
        })
        .collect()
}

#[test]
fn speculative_run_log_matches_the_golden_file() {
    // A one-layer self-draft (its drafts happen to be accepted; the random fixtures
    // never agree with each other, so a mixed run is not on offer here).
    let target = LoadedModel::load(&ModelSpec::new(fixture("qwen2-bias"))).unwrap();
    let mut draft_spec = ModelSpec::new(fixture("qwen2-bias"));
    draft_spec.options.layer_limit = Some(1);
    let draft = LoadedModel::load(&draft_spec).unwrap();
    let mut pair = LoadedPair::new(target, Some(draft)).unwrap();
    let mut request = GenerateRequest::new(
        "The model reads 42 tokens, then writes! The model reads",
        RunMode::Speculative,
    );
    request.max_new_tokens = 8;
    request.ignore_eos = true;
    request.gamma = GammaPolicy::Fixed(2);
    let record = run_recorded(
        &mut pair,
        &request,
        RunContext::new(&request.mode),
        &mut |_, _| {},
        None,
    )
    .unwrap();

    let mut bytes = Vec::new();
    write_log(&record, &mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    // The schema round trip: what is written reads back to the same record.
    assert_eq!(read_log(text.as_bytes(), "memory").unwrap(), record);

    let actual = normalised_lines(&text);
    if std::env::var("TANDEM_BLESS").is_ok_and(|v| v == "1") {
        let lines: Vec<String> = actual
            .iter()
            .map(|v| serde_json::to_string(v).unwrap())
            .collect();
        std::fs::create_dir_all(golden_path().parent().unwrap()).unwrap();
        std::fs::write(golden_path(), lines.join("\n") + "\n").unwrap();
        return;
    }
    let golden =
        std::fs::read_to_string(golden_path()).expect("golden file (bless it with TANDEM_BLESS=1)");
    let expected = normalised_lines(&golden);
    assert_eq!(actual.len(), expected.len(), "line count");
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(a, e, "line {} differs from the golden file", i + 1);
    }

    // The fields readers rely on, spelled out.
    let header = &actual[0];
    assert_eq!(header["type"], "header");
    assert_eq!(header["schema_version"], 1);
    for key in [
        "target",
        "draft",
        "backend",
        "device",
        "sampling",
        "gamma_policy",
        "gamma_cost_ratio",
        "prompt",
        "prompt_tokens",
    ] {
        assert!(header.get(key).is_some(), "header lacks {key}");
    }
    // γ is fixed here, so no cost ratio was measured or assumed.
    assert_eq!(header["gamma_cost_ratio"], Value::Null);
    for key in [
        "config_sha256",
        "tokenizer_sha256",
        "weights",
        "precision",
        "repo_id",
        "revision",
    ] {
        assert!(header["target"].get(key).is_some(), "target lacks {key}");
    }
    let step = &actual[1];
    assert_eq!(step["type"], "step");
    for key in [
        "step",
        "gamma",
        "drafts",
        "verified",
        "judged",
        "accepted",
        "emitted",
        "draft_ms",
        "verify_ms",
    ] {
        assert!(step["trace"].get(key).is_some(), "step lacks {key}");
    }
    assert_eq!(actual.last().unwrap()["type"], "summary");
}
