//! `tandem pairs` (the catalog and what is downloaded) and `tandem rm`.

use crate::support::{fixture_repo, Env};

const SMOL_DRAFT: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

#[test]
fn pairs_lists_the_catalog_and_marks_downloads() {
    let env = Env::new([
        fixture_repo(SMOL_DRAFT, "llama-gqa"),
        fixture_repo("tiny/other", "qwen2-bias"),
    ]);
    let empty = env.run(&["pairs"]).ok();
    assert!(empty.stdout.starts_with("PAIR"), "{}", empty.stdout);
    for id in [
        "qwen2.5-0.5b-1.5b",
        "qwen2.5-coder-0.5b-1.5b",
        "smollm2-135m-1.7b",
        "llama3.2-1b-3b",
        "qwen3-0.6b-1.7b",
        "qwen3-0.6b-14b",
        "gemma3-270m-1b",
        "gemma3-1b-27b",
        "gemma-2b-7b",
    ] {
        assert!(empty.stdout.contains(id), "{id}\n{}", empty.stdout);
    }
    for licence in ["llama3.2 [gated]", "gemma [gated]"] {
        assert!(
            empty.stdout.contains(licence),
            "{licence}\n{}",
            empty.stdout
        );
    }
    assert!(!empty.stdout.contains("Other downloaded models"));

    env.run(&["pull", SMOL_DRAFT]).ok();
    env.run(&["pull", "tiny/other"]).ok();
    let listed = env.run(&["pairs"]).ok();
    let smol_rows: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|line| line.starts_with("smollm2-135m-"))
        .collect();
    assert_eq!(smol_rows.len(), 2, "{}", listed.stdout);
    for row in smol_rows {
        assert!(
            row.trim_end().ends_with("KiB)") && row.contains("draft ("),
            "{row}"
        );
    }
    assert!(
        listed.stdout.contains("Other downloaded models"),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("tiny/other"), "{}", listed.stdout);
}

#[test]
fn rm_removes_a_model_and_says_what_was_freed() {
    let env = Env::new([fixture_repo("tiny/llama-gqa", "llama-gqa")]);
    env.run(&["pull", "tiny/llama-gqa"]).ok();
    let folder = env.hub_cache().join("models--tiny--llama-gqa");
    assert!(folder.is_dir());

    let run = env.run(&["rm", "tiny/llama-gqa"]).ok();
    assert!(
        run.stdout.contains("Removed tiny/llama-gqa and freed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("KiB"), "{}", run.stdout);
    assert!(!folder.exists());

    let again = env.run(&["rm", "tiny/llama-gqa"]).ok();
    assert!(
        again.stdout.contains("is not downloaded"),
        "{}",
        again.stdout
    );
}
