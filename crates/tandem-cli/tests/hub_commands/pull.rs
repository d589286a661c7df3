//! `tandem pull`: one repo, a catalog pair, a second pull, errors, Ctrl-C.

use crate::support::{fixture_repo, Env};

const REPO: &str = "tiny/llama-gqa";

#[test]
fn pull_downloads_once_and_a_second_pull_fetches_nothing() {
    let env = Env::new([fixture_repo(REPO, "llama-gqa")]);
    let run = env.run(&["pull", REPO]).ok();
    assert!(
        run.stdout.contains("tiny/llama-gqa is ready in"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("Downloading tiny/llama-gqa"),
        "{}",
        run.stderr
    );
    let snapshots = env.hub_cache().join("models--tiny--llama-gqa/snapshots");
    let snapshot = std::fs::read_dir(&snapshots)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(snapshot.join("model.safetensors").is_file());
    assert!(
        run.stdout.contains(&snapshot.display().to_string()),
        "{}",
        run.stdout
    );
    assert_eq!(env.hub.file_transfers("model.safetensors").len(), 1);

    let served = env.bytes_served();
    let again = env.run(&["pull", REPO]).ok();
    assert!(
        again.stderr.contains("already downloaded"),
        "{}",
        again.stderr
    );
    assert!(again.stdout.contains("tiny/llama-gqa is ready in"));
    assert_eq!(
        env.bytes_served(),
        served,
        "the second pull downloaded something"
    );
}

#[test]
fn pull_of_a_pair_id_fetches_both_models() {
    let env = Env::new([
        fixture_repo("HuggingFaceTB/SmolLM2-135M-Instruct", "llama-gqa"),
        fixture_repo("HuggingFaceTB/SmolLM2-360M-Instruct", "qwen2-bias"),
    ]);
    let run = env.run(&["pull", "smollm2-135m-360m"]).ok();
    assert!(
        run.stderr.contains("Pair smollm2-135m-360m"),
        "{}",
        run.stderr
    );
    for repo in ["SmolLM2-135M-Instruct", "SmolLM2-360M-Instruct"] {
        assert!(
            run.stdout
                .contains(&format!("HuggingFaceTB/{repo} is ready in")),
            "{}",
            run.stdout
        );
    }
    assert_eq!(env.hub.file_transfers("model.safetensors").len(), 2);
}

#[test]
fn unknown_and_gated_repos_say_what_to_do() {
    let env = Env::new([fixture_repo("org/gated", "llama-gqa").gated(Some("hf_secret"))]);
    let missing = env.run(&["pull", "org/nope"]).failed();
    assert!(
        missing.stderr.contains("no such model: org/nope"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("tandem pairs"),
        "{}",
        missing.stderr
    );

    let gated = env.run(&["pull", "org/gated"]).failed();
    assert!(gated.stderr.contains("gated"), "{}", gated.stderr);
    assert!(gated.stderr.contains("HF_TOKEN"), "{}", gated.stderr);

    // With the token that was granted access, the same pull works.
    let run = env
        .command(&["pull", "org/gated"])
        .env("HF_TOKEN", "hf_secret")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_keeps_the_partial_and_the_next_pull_resumes() {
    use std::time::{Duration, Instant};

    let env = Env::new([fixture_repo(REPO, "llama-gqa")]);
    // About 490 KB of weights at 100 KB/s: several seconds to interrupt in.
    env.hub.set_throttle(Some(100_000));
    let child = env
        .command(&["pull", REPO])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Interrupt a second after the weights started flowing.
    while env.hub.file_transfers("model.safetensors").is_empty()
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1000));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let cancelled = crate::support::Run::from(child.wait_with_output().unwrap()).failed();
    assert!(
        cancelled.stderr.contains("download cancelled"),
        "{}",
        cancelled.stderr
    );
    assert!(
        cancelled.stderr.contains("again to resume"),
        "{}",
        cancelled.stderr
    );

    env.hub.set_throttle(None);
    let resumed = env.run(&["pull", REPO]).ok();
    assert!(
        resumed.stderr.contains("resumed from"),
        "{}",
        resumed.stderr
    );
    assert!(resumed.stdout.contains("is ready in"));
}
