//! Real models for the tests that need one.
//!
//! Models live in `$TANDEM_TEST_MODELS/<name>` (default `~/.cache/tandem-test-models`),
//! one Hugging Face style folder each, marked finished by a `.complete` file. They are
//! made by `shared/models/fetch.sh` beside the workspace, which a test runs when its
//! model is missing. A test that gets `None` skips, after printing `skipped: …`; with
//! `TANDEM_REQUIRE_MODELS=1` a missing model panics instead, so a CI run that must
//! exercise real models cannot pass by skipping them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const SMOLLM2_135M: &str = "smollm2-135m";
pub const QWEN_CODER_0_5B: &str = "qwen2.5-coder-0.5b";

/// `len` reproducible pseudo-random values in [-1, 1) for kernel and quantizer tests
/// (a multiplicative hash of the index, mixed with `seed`).
pub fn pseudo_random_values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// The transformers fixtures of `tests/fixtures` (see its README): one tiny random
/// model per family and feature.
pub const FIXTURES: [&str; 11] = [
    "llama-gqa",
    "llama3-tied",
    "qwen2-bias",
    "mistral-linear",
    "qwen3-qknorm",
    "gemma-mqa",
    "gemma2-softcap",
    "gemma3-text",
    "gemma3-vlm",
    "phi3-longrope",
    "smollm3-nope",
];

/// One of the tiny random-weight models committed under `tests/fixtures` (made by
/// `tests/fixtures/make_fixtures.py`, with transformers' logits beside them).
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// What `tests/fixtures/make_fixtures.py` recorded from transformers for a fixture
/// (`reference.json`): a text, its tokens, the logits of one forward over them, and a
/// greedy continuation of the first `greedy_prompt_len` tokens.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct FixtureReference {
    pub text: String,
    pub tokens: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
    pub greedy_prompt_len: usize,
    pub greedy: Vec<u32>,
}

/// The transformers reference of fixture `name`.
pub fn fixture_reference(name: &str) -> FixtureReference {
    let path = fixture_dir(name).join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The largest |a − b| over two sets of logit rows of the same shape.
pub fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "row counts");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "row widths");
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

/// Logits of one forward over `tokens` on top of what `model` has cached, one row
/// per position, on the host.
pub fn logit_rows<B: crate::TandemBackend>(
    model: &mut crate::Llama<B>,
    tokens: &[u32],
) -> Vec<Vec<f32>> {
    let vocab = model.config().vocab_size;
    let values = model
        .forward(tokens)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    values.chunks(vocab).map(<[f32]>::to_vec).collect()
}

/// Folder holding the test models.
pub fn models_root() -> PathBuf {
    if let Some(root) = std::env::var_os("TANDEM_TEST_MODELS").filter(|v| !v.is_empty()) {
        return root.into();
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("tandem-test-models")
}

/// The folder a model has (or will have).
pub fn model_dir(name: &str) -> PathBuf {
    models_root().join(name)
}

/// The fetch script: `shared/models/fetch.sh` next to the workspace root.
pub fn fetch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/fetch.sh")
}

fn is_complete(dir: &Path) -> bool {
    dir.join(".complete").is_file()
}

fn models_required() -> bool {
    std::env::var("TANDEM_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

/// `None` after printing why, or a panic when models are required.
fn skip(reason: String) -> Option<PathBuf> {
    if models_required() {
        panic!("TANDEM_REQUIRE_MODELS=1 but {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// SmolLM2-135M-Instruct (93 MB download), fetched if missing.
pub fn smollm2() -> Option<PathBuf> {
    locate_or_fetch(SMOLLM2_135M)
}

/// Qwen2.5-Coder-0.5B, only if already fetched: a 478 MB download is not something a
/// test should start on its own.
pub fn qwen_coder_0_5b() -> Option<PathBuf> {
    locate(QWEN_CODER_0_5B)
}

/// The original GGUF file of SmolLM2-135M-Instruct (Q4_1, 93 MB), fetched if missing:
/// the file the converted test folder was made from.
pub fn smollm2_gguf() -> Option<PathBuf> {
    gguf_file(SMOLLM2_135M, true)
}

/// SmolLM2-135M-Instruct converted with f32 weights (`DTYPE=f32 fetch.sh`, into the
/// `f32/` folder of the root), fetched if missing: exactly the values of its GGUF file.
pub fn smollm2_f32() -> Option<PathBuf> {
    let root = models_root().join("f32");
    let dir = root.join(SMOLLM2_135M);
    fetch_once(SMOLLM2_135M, &root, Some("f32"), &dir, || is_complete(&dir))
}

/// The original GGUF file of Qwen2.5-Coder-0.5B (Q4_K_M), only if already fetched.
pub fn qwen_coder_0_5b_gguf() -> Option<PathBuf> {
    gguf_file(QWEN_CODER_0_5B, false)
}

/// `fetch.sh gguf:NAME`'s file (`gguf/NAME.gguf` in the root), fetching it if allowed.
fn gguf_file(name: &str, fetch: bool) -> Option<PathBuf> {
    let path = models_root().join("gguf").join(format!("{name}.gguf"));
    if !fetch && !path.is_file() {
        return skip(format!(
            "{} is not there (fetch it with `{} gguf:{name}`)",
            path.display(),
            fetch_script().display()
        ));
    }
    fetch_once(&format!("gguf:{name}"), &models_root(), None, &path, || {
        path.is_file()
    })
}

/// `target` once `done()` says it is there, running `fetch.sh ARG` (into `root`, with
/// `DTYPE` when given) first if it is not. Tests run in parallel threads: one fetch at a
/// time, and the others then find its result.
fn fetch_once(
    arg: &str,
    root: &Path,
    dtype: Option<&str>,
    target: &Path,
    done: impl Fn() -> bool,
) -> Option<PathBuf> {
    static FETCHING: Mutex<()> = Mutex::new(());
    let _guard = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
    if done() {
        return Some(target.to_path_buf());
    }
    let script = fetch_script();
    if !script.is_file() {
        return skip(format!(
            "{} is missing and there is no fetch script at {}",
            target.display(),
            script.display()
        ));
    }
    eprintln!("fetching {arg} with {} …", script.display());
    let mut command = std::process::Command::new("bash");
    command
        .arg(&script)
        .arg(arg)
        .env("TANDEM_TEST_MODELS", root)
        .stdout(std::process::Stdio::null());
    if let Some(dtype) = dtype {
        command.env("DTYPE", dtype);
    }
    match command.status() {
        Ok(s) if s.success() && done() => Some(target.to_path_buf()),
        Ok(s) => skip(format!("{} failed ({s}) for {arg}", script.display())),
        Err(e) => skip(format!("could not run {}: {e}", script.display())),
    }
}

/// A model's folder if it is complete.
pub fn locate(name: &str) -> Option<PathBuf> {
    let dir = model_dir(name);
    if is_complete(&dir) {
        return Some(dir);
    }
    skip(format!(
        "{} is not there (fetch it with `{} {name}`)",
        dir.display(),
        fetch_script().display()
    ))
}

/// A model's folder, running the fetch script first if the model is missing.
pub fn locate_or_fetch(name: &str) -> Option<PathBuf> {
    let dir = model_dir(name);
    fetch_once(name, &models_root(), None, &dir, || is_complete(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_script_is_beside_the_workspace() {
        let script = fetch_script();
        assert!(
            script.ends_with("shared/models/fetch.sh"),
            "{}",
            script.display()
        );
    }

    #[test]
    fn model_dirs_are_under_the_root() {
        assert_eq!(model_dir(SMOLLM2_135M), models_root().join("smollm2-135m"));
    }
}
