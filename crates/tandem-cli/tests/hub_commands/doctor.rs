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

/// A newer family from the hub to a race: Gemma 3's multimodal checkpoint (weights under
/// `language_model.`, config under `text_config`) with its text model drafting passes
/// the doctor, pulls, and races with every greedy output equal to plain decoding.
#[test]
fn a_gemma3_pair_passes_the_doctor_pulls_and_races_exactly() {
    let (draft, target) = ("tiny/gemma3-text", "tiny/gemma3-vlm");
    let env = Env::new([
        fixture_repo(draft, "gemma3-text"),
        fixture_repo(target, "gemma3-vlm"),
    ]);
    let doctor = env.run(&["doctor", draft, target]).ok();
    assert!(
        doctor
            .stdout
            .contains("OK: these two models can work as a pair."),
        "{}",
        doctor.stdout
    );
    let folder = |repo: &str| -> String {
        let run = env.run(&["pull", repo]).ok();
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains("is ready in"))
            .unwrap_or_else(|| panic!("{}", run.stdout))
            .to_string();
        line.split("is ready in").nth(1).unwrap().trim().to_string()
    };
    let (draft_dir, target_dir) = (folder(draft), folder(target));
    // The race log goes to the test's own data folder, not the developer's.
    let mut command = env.command(&[
        "compare",
        "--target",
        &target_dir,
        "--draft",
        &draft_dir,
        "--prompt",
        "The model reads 42 tokens, then writes!",
        "--max-new-tokens",
        "24",
        "--ignore-eos",
    ]);
    command.env("TANDEM_DATA_DIR", env.home.path().join("data"));
    let race = crate::support::Run::from(command.output().unwrap()).ok();
    let all = format!("{}{}", race.stdout, race.stderr);
    assert!(all.contains("every output is identical to plain"), "{all}");
}
