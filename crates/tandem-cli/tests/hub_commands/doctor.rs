//! `tandem doctor` on repo ids served by the mock hub and on local folders.

use tandem_hub::mock::MockRepo;

use crate::support::{fixture, fixture_repo, Env};

const DRAFT: &str = "tiny/llama-gqa";
const TARGET: &str = "tiny/qwen2-bias";

#[test]
fn doctor_on_two_repo_ids_prints_the_verdict() {
    let env = Env::new([
        fixture_repo(DRAFT, "llama-gqa"),
        fixture_repo(TARGET, "qwen2-bias"),
    ]);
    let run = env.run(&["doctor", DRAFT, TARGET]).ok();
    assert!(
        run.stdout
            .contains("OK: these two models can work as a pair."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("same vocabulary (384 tokens)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("of memory (f32 weights, 4096-token context)"),
        "{}",
        run.stdout
    );
    // Only configs and tokenizers travel; the weights stay on the hub.
    assert!(env.hub.file_transfers("model.safetensors").is_empty());

    let json = env
        .run(&[
            "doctor",
            DRAFT,
            TARGET,
            "--json",
            "--int8",
            "--context",
            "128",
        ])
        .ok();
    let verdict: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(verdict["ok"], true);
    assert_eq!(verdict["memory"]["precision"], "int8");
    assert_eq!(verdict["memory"]["context_len"], 128);
    // llama-gqa at int8: see tandem-pairs memory::tests for the hand count.
    assert_eq!(verdict["memory"]["draft"]["weight_bytes"], 215_808);
}

#[test]
fn doctor_fails_on_different_vocabularies() {
    // The target's tokenizer with two tokens swapped.
    let mut tokenizer: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("qwen2-bias").join("tokenizer.json")).unwrap(),
    )
    .unwrap();
    let vocab = tokenizer["model"]["vocab"].as_object_mut().unwrap();
    let (a, b) = (vocab["#"].clone(), vocab["$"].clone());
    vocab.insert("#".into(), b);
    vocab.insert("$".into(), a);
    let swapped = fixture_repo("tiny/swapped", "qwen2-bias")
        .file("tokenizer.json", tokenizer.to_string().into_bytes());
    let env = Env::new([fixture_repo(DRAFT, "llama-gqa"), swapped]);

    let run = env.run(&["doctor", DRAFT, "tiny/swapped"]).failed();
    assert!(run.stdout.contains("NOT OK"), "{}", run.stdout);
    assert!(
        run.stdout.contains("different vocabularies"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("can't work as a pair"),
        "{}",
        run.stderr
    );
}

#[test]
fn doctor_takes_local_folders_and_reports_hub_errors() {
    let env = Env::new(Vec::<MockRepo>::new());
    let draft = fixture("llama-gqa");
    let target = fixture("qwen2-bias");
    let run = env
        .run(&["doctor", draft.to_str().unwrap(), target.to_str().unwrap()])
        .ok();
    assert!(run.stdout.contains("OK:"), "{}", run.stdout);

    let missing = env
        .run(&["doctor", draft.to_str().unwrap(), "org/nope"])
        .failed();
    assert!(
        missing.stderr.contains("no such model: org/nope"),
        "{}",
        missing.stderr
    );
}

/// A weights file where a model folder belongs: say what it is and what is wanted,
/// rather than "folder does not exist" or a path with `config.json` joined onto a file.
#[test]
fn a_file_given_as_a_model_is_named_as_a_file() {
    let env = Env::new(Vec::<MockRepo>::new());
    let file = fixture("llama-gqa").join("model.safetensors");
    let file = file.to_str().unwrap();
    let folder = fixture("qwen2-bias");
    let expect_file_message = |stderr: &str| {
        assert!(
            stderr.contains(file)
                && stderr.contains("is a file, not a model folder")
                && stderr.contains("config.json")
                && !stderr.contains("model.safetensors/"),
            "{stderr}"
        );
    };
    let run = env
        .run(&["generate", "--model", file, "--prompt", "hi"])
        .failed();
    expect_file_message(&run.stderr);
    let run = env
        .run(&[
            "generate",
            "--model",
            folder.to_str().unwrap(),
            "--draft",
            file,
            "--mode",
            "speculative",
            "--prompt",
            "hi",
        ])
        .failed();
    expect_file_message(&run.stderr);
    let run = env
        .run(&["doctor", file, folder.to_str().unwrap()])
        .failed();
    expect_file_message(&run.stderr);
}
