//! Models already on this computer: GGUF files LM Studio and Ollama keep, and the
//! Hugging Face cache (GGUF files and safetensors repos), each with what it is and
//! whether Tandem can load it, so people race the models they have instead of
//! downloading them again.
//!
//! Where each tool keeps models:
//! - LM Studio: `~/.lmstudio/models/PUBLISHER/REPO/FILE.gguf` (older versions
//!   `~/.cache/lm-studio/models/…`).
//! - Ollama: `$OLLAMA_MODELS` or `~/.ollama/models`; `manifests/REGISTRY/NAMESPACE/MODEL/TAG`
//!   is a JSON manifest whose layer of media type `application/vnd.ollama.image.model` names
//!   the GGUF blob `blobs/sha256-HEX`. Ollama calls the model `MODEL:TAG` (library models),
//!   `NAMESPACE/MODEL:TAG` or `REGISTRY/NAMESPACE/MODEL:TAG`.
//! - Hugging Face: `HF_HUB_CACHE` (`~/.cache/huggingface/hub`), `models--ORG--NAME/snapshots/COMMIT/`.
//!
//! Folders are walked without following links, to a bounded depth and entry count: a
//! listing never wanders the disk or loops.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tandem_model::formats::gguf::GgufFile;
use tandem_model::formats::gguf_model::summarize;

/// Which tool's folder a model was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    LmStudio,
    Ollama,
    HuggingFace,
}

impl ModelSource {
    pub fn label(self) -> &'static str {
        match self {
            Self::LmStudio => "LM Studio",
            Self::Ollama => "Ollama",
            Self::HuggingFace => "Hugging Face",
        }
    }
}

/// One model found on this computer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalModel {
    pub source: ModelSource,
    /// The name the tool shows (`qwen2.5-coder:1.5b`, `lmstudio-community/…/x.gguf`,
    /// `Qwen/Qwen2.5-0.5B-Instruct`).
    pub name: String,
    /// What to pass to `--model`: the GGUF file, or the snapshot folder.
    pub path: PathBuf,
    pub size_bytes: u64,
    /// `gguf` or `safetensors`.
    pub format: &'static str,
    pub architecture: Option<String>,
    /// `Q4_K_M`, `bfloat16`, …
    pub precision: Option<String>,
    /// Why Tandem cannot load it (`None`: it can).
    pub problem: Option<String>,
}

/// The folders to look in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelFolders {
    pub lm_studio: Vec<PathBuf>,
    pub ollama: Option<PathBuf>,
    pub hf_cache: Option<PathBuf>,
}

impl ModelFolders {
    /// The tools' default folders under `home`; `ollama_models` is `$OLLAMA_MODELS`.
    pub fn under_home(
        home: &Path,
        ollama_models: Option<PathBuf>,
        hf_cache: Option<PathBuf>,
    ) -> Self {
        Self {
            lm_studio: vec![
                home.join(".lmstudio").join("models"),
                home.join(".cache").join("lm-studio").join("models"),
            ],
            ollama: Some(ollama_models.unwrap_or_else(|| home.join(".ollama").join("models"))),
            hf_cache,
        }
    }

    /// This process's: `$HOME`, `$OLLAMA_MODELS` and the Hugging Face variables.
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let ollama = std::env::var_os("OLLAMA_MODELS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self::under_home(
            &home,
            ollama,
            Some(tandem_hub::HubEnv::from_process().hub_cache),
        )
    }
}

/// How deep a folder walk goes (LM Studio's files sit 2 below its root, a snapshot's
/// 1–3 below the commit).
const MAX_DEPTH: usize = 6;
/// Entries a walk looks at before it stops.
const MAX_ENTRIES: usize = 20_000;
/// Largest Ollama manifest read (real ones are under 2 KB).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Every model in `folders`, LM Studio's first, then Ollama's, then the Hugging Face
/// cache's; each source sorted by name. Folders that do not exist are skipped.
pub fn find_local_models(folders: &ModelFolders) -> Vec<LocalModel> {
    let mut found = Vec::new();
    for root in &folders.lm_studio {
        let mut models: Vec<LocalModel> = gguf_files(root)
            .into_iter()
            .map(|path| {
                let name = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                describe_gguf(ModelSource::LmStudio, name, path)
            })
            .collect();
        models.sort_by(|a, b| a.name.cmp(&b.name));
        found.extend(models);
    }
    if let Some(root) = &folders.ollama {
        let mut models = ollama_models(root);
        models.sort_by(|a, b| a.name.cmp(&b.name));
        found.extend(models);
    }
    if let Some(root) = &folders.hf_cache {
        let mut models = hf_cache_models(root);
        models.sort_by(|a, b| a.name.cmp(&b.name));
        found.extend(models);
    }
    found
}

/// Calls `visit(path, depth)` for every file under `root` down to `max_depth` folders
/// deep (links are not followed), stopping after [`MAX_ENTRIES`] entries.
fn walk_files(root: &Path, max_depth: usize, mut visit: impl FnMut(PathBuf, usize)) {
    let mut seen = 0usize;
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < max_depth {
                stack.push((entry.path(), depth + 1));
            } else if kind.is_file() || kind.is_symlink() {
                // A link is visited, not followed (a snapshot's files link to blobs).
                visit(entry.path(), depth);
            }
        }
    }
}

/// `*.gguf` files under `root`.
fn gguf_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk_files(root, MAX_DEPTH, |path, _| {
        if is_gguf_name(&path) {
            out.push(path);
        }
    });
    out
}

fn is_gguf_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// What a GGUF file is, or why it cannot even be read.
fn describe_gguf(source: ModelSource, name: String, path: PathBuf) -> LocalModel {
    let size_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut model = LocalModel {
        source,
        name,
        path,
        size_bytes,
        format: "gguf",
        architecture: None,
        precision: None,
        problem: None,
    };
    let file_name = model
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if is_split_part(&file_name) {
        model.problem = Some(
            "one part of a split GGUF (…-00001-of-0000N.gguf): split files are not supported"
                .into(),
        );
        return model;
    }
    match GgufFile::open(&model.path) {
        Ok(file) => {
            let summary = summarize(&file);
            model.architecture = summary.architecture;
            model.precision = Some(summary.precision);
            model.problem = summary.problem;
        }
        Err(e) => model.problem = Some(format!("not readable: {e}")),
    }
    model
}

/// `name-00001-of-00003.gguf`: llama.cpp's split files.
fn is_split_part(file_name: &str) -> bool {
    let five_digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    let stem = file_name.trim_end_matches(".gguf");
    stem.rsplit_once("-of-").is_some_and(|(head, total)| {
        five_digits(total)
            && head
                .rsplit_once('-')
                .is_some_and(|(_, part)| five_digits(part))
    })
}

/// Ollama's models: each manifest's model layer, named as Ollama names it.
fn ollama_models(root: &Path) -> Vec<LocalModel> {
    let manifests = root.join("manifests");
    let mut out = Vec::new();
    // manifests/REGISTRY/NAMESPACE/MODEL/TAG: files exactly three folders down.
    walk_files(&manifests, 3, |path, depth| {
        let Ok(rel) = path.strip_prefix(&manifests) else {
            return;
        };
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if let (3, [registry, namespace, model, tag]) = (depth, parts.as_slice()) {
            let name = ollama_name(registry, namespace, model, tag);
            out.push(ollama_model(root, &path, name));
        }
    });
    out
}

/// Ollama's name for `REGISTRY/NAMESPACE/MODEL:TAG`, shortened as `ollama list` shows it.
fn ollama_name(registry: &str, namespace: &str, model: &str, tag: &str) -> String {
    match (registry, namespace) {
        ("registry.ollama.ai", "library") => format!("{model}:{tag}"),
        ("registry.ollama.ai", _) => format!("{namespace}/{model}:{tag}"),
        _ => format!("{registry}/{namespace}/{model}:{tag}"),
    }
}

/// The model of one manifest: its GGUF blob, described; or why there is none.
fn ollama_model(root: &Path, manifest: &Path, name: String) -> LocalModel {
    let unreadable = |problem: String| LocalModel {
        source: ModelSource::Ollama,
        name: name.clone(),
        path: manifest.to_path_buf(),
        size_bytes: 0,
        format: "gguf",
        architecture: None,
        precision: None,
        problem: Some(problem),
    };
    let text = match std::fs::metadata(manifest) {
        Ok(m) if m.len() > MAX_MANIFEST_BYTES => {
            return unreadable(format!(
                "manifest {} is {} bytes: not an Ollama manifest",
                manifest.display(),
                m.len()
            ))
        }
        Ok(_) => match std::fs::read_to_string(manifest) {
            Ok(text) => text,
            Err(e) => return unreadable(format!("manifest {}: {e}", manifest.display())),
        },
        Err(e) => return unreadable(format!("manifest {}: {e}", manifest.display())),
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(json) => json,
        Err(e) => return unreadable(format!("manifest {} is not JSON: {e}", manifest.display())),
    };
    let digest = json["layers"].as_array().and_then(|layers| {
        layers
            .iter()
            .find(|l| l["mediaType"] == "application/vnd.ollama.image.model")
            .and_then(|l| l["digest"].as_str())
    });
    let Some(digest) = digest else {
        return unreadable(format!(
            "manifest {} names no model layer",
            manifest.display()
        ));
    };
    // A digest becomes a file name: only `sha256:` and 64 hex digits, nothing that
    // could walk out of blobs/.
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(hex) = hex else {
        return unreadable(format!(
            "manifest {}: the model layer's digest {digest:?} is not sha256:HEX",
            manifest.display()
        ));
    };
    let blob = root.join("blobs").join(format!("sha256-{hex}"));
    if !blob.is_file() {
        return unreadable(format!(
            "the model's blob {} is missing (still downloading?)",
            blob.display()
        ));
    }
    describe_gguf(ModelSource::Ollama, name, blob)
}

/// The Hugging Face cache's models: GGUF files in snapshots, and safetensors snapshots.
fn hf_cache_models(root: &Path) -> Vec<LocalModel> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for entry in entries.flatten().take(MAX_ENTRIES) {
        let folder = entry.file_name().to_string_lossy().into_owned();
        let Some(repo) = folder
            .strip_prefix("models--")
            .map(|r| r.replacen("--", "/", 1))
        else {
            continue;
        };
        let Some(snapshot) = newest_snapshot(&entry.path()) else {
            continue;
        };
        let ggufs = gguf_files(&snapshot);
        for path in &ggufs {
            let rel = path
                .strip_prefix(&snapshot)
                .unwrap_or(path)
                .display()
                .to_string();
            out.push(describe_gguf(
                ModelSource::HuggingFace,
                format!("{repo}/{rel}"),
                path.clone(),
            ));
        }
        if snapshot.join("config.json").is_file() {
            out.push(describe_safetensors(repo, snapshot));
        }
    }
    out
}

/// The snapshot `refs/main` names, else the most recently changed one.
fn newest_snapshot(model_dir: &Path) -> Option<PathBuf> {
    let snapshots = model_dir.join("snapshots");
    if let Ok(commit) = std::fs::read_to_string(model_dir.join("refs").join("main")) {
        let commit = commit.trim();
        if !commit.is_empty()
            && commit.bytes().all(|b| b.is_ascii_alphanumeric())
            && snapshots.join(commit).is_dir()
        {
            return Some(snapshots.join(commit));
        }
    }
    std::fs::read_dir(&snapshots)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

fn describe_safetensors(repo: String, dir: PathBuf) -> LocalModel {
    let size_bytes = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
                .filter_map(|e| std::fs::metadata(e.path()).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let (architecture, precision, problem) = match tandem_model::ModelConfig::from_dir(&dir) {
        Ok(config) => (
            Some(config.architecture.hf_name().to_string()),
            config.torch_dtype.clone(),
            (size_bytes == 0).then(|| "no *.safetensors weights (not downloaded yet?)".to_string()),
        ),
        Err(e) => (None, None, Some(e.to_string())),
    };
    LocalModel {
        source: ModelSource::HuggingFace,
        name: repo,
        path: dir,
        size_bytes,
        format: "safetensors",
        architecture,
        precision,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_model::formats::gguf::writer::{gguf_bytes, TensorToWrite};
    use tandem_model::formats::gguf::{GgmlType, GgufValue};

    /// A tiny loadable-looking llama GGUF.
    fn tiny_gguf(file_type: u32) -> Vec<u8> {
        let s = |v: &str| GgufValue::String(v.into());
        let metadata = vec![
            ("general.architecture", s("llama")),
            ("general.file_type", GgufValue::U32(file_type)),
            ("llama.embedding_length", GgufValue::U32(64)),
            ("llama.feed_forward_length", GgufValue::U32(128)),
            ("llama.block_count", GgufValue::U32(1)),
            ("llama.attention.head_count", GgufValue::U32(4)),
            ("tokenizer.ggml.model", s("gpt2")),
            (
                "tokenizer.ggml.tokens",
                GgufValue::Array(vec![s("a"), s("b"), s("ab")]),
            ),
            ("tokenizer.ggml.merges", GgufValue::Array(vec![s("a b")])),
        ];
        let f32s = [0u8; 16];
        gguf_bytes(
            &metadata,
            &[TensorToWrite {
                name: "output_norm.weight",
                dims: vec![4],
                ggml_type: GgmlType::F32,
                bytes: &f32s,
            }],
        )
    }

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn manifest(blob_digest: &str) -> String {
        serde_json::json!({
            "schemaVersion": 2,
            "layers": [
                {"mediaType": "application/vnd.ollama.image.template", "digest": format!("sha256:{}", "1".repeat(64))},
                {"mediaType": "application/vnd.ollama.image.model", "digest": blob_digest, "size": 1},
            ]
        })
        .to_string()
    }

    #[test]
    fn lm_studio_ollama_and_hugging_face_folders_are_found_and_named() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        // LM Studio: PUBLISHER/REPO/FILE.gguf, plus a projector and a split part.
        let lms = h.join(".lmstudio/models/lmstudio-community/Qwen2.5-Coder-1.5B-Instruct-GGUF");
        write(
            &lms.join("Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"),
            &tiny_gguf(15),
        );
        write(&lms.join("model-00001-of-00002.gguf"), &tiny_gguf(15));
        write(
            &h.join(".cache/lm-studio/models/old/repo/old.gguf"),
            b"GGUF broken",
        );
        // Ollama: a library model, a user's model, a manifest with a hostile digest.
        let ollama = h.join(".ollama/models");
        let hex = "ab".repeat(32);
        write(&ollama.join(format!("blobs/sha256-{hex}")), &tiny_gguf(7));
        let manifests = ollama.join("manifests/registry.ollama.ai");
        write(
            &manifests.join("library/qwen2.5-coder/1.5b"),
            manifest(&format!("sha256:{hex}")).as_bytes(),
        );
        write(
            &manifests.join("someone/tiny/latest"),
            manifest(&format!("sha256:{hex}")).as_bytes(),
        );
        write(
            &manifests.join("library/evil/latest"),
            manifest("sha256:../../../../etc/passwd").as_bytes(),
        );
        // Hugging Face: a GGUF repo and a safetensors repo.
        let hf = h.join("hf-cache");
        write(&hf.join("models--Org--Tiny-GGUF/refs/main"), b"c1");
        // As the hub client leaves it: the snapshot's file links to a blob.
        write(
            &hf.join("models--Org--Tiny-GGUF/blobs/0123abcd"),
            &tiny_gguf(7),
        );
        let snapshot = hf.join("models--Org--Tiny-GGUF/snapshots/c1");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::os::unix::fs::symlink("../../blobs/0123abcd", snapshot.join("tiny-Q8_0.gguf"))
            .unwrap();
        write(
            &hf.join("models--Org--Small/snapshots/c2/config.json"),
            br#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
                "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 100, "torch_dtype": "bfloat16"}"#,
        );
        write(
            &hf.join("models--Org--Small/snapshots/c2/model.safetensors"),
            b"x",
        );

        let folders = ModelFolders::under_home(h, None, Some(hf));
        let found = find_local_models(&folders);
        let by_name = |name: &str| {
            found.iter().find(|m| m.name == name).unwrap_or_else(|| {
                panic!(
                    "{name} not found in {:#?}",
                    found.iter().map(|m| &m.name).collect::<Vec<_>>()
                )
            })
        };
        let lms_model = by_name("lmstudio-community/Qwen2.5-Coder-1.5B-Instruct-GGUF/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf");
        assert_eq!(lms_model.source, ModelSource::LmStudio);
        assert_eq!(
            (
                lms_model.architecture.as_deref(),
                lms_model.precision.as_deref()
            ),
            (Some("llama"), Some("Q4_K_M"))
        );
        assert_eq!(lms_model.problem, None);
        let split = by_name(
            "lmstudio-community/Qwen2.5-Coder-1.5B-Instruct-GGUF/model-00001-of-00002.gguf",
        );
        assert!(split.problem.as_deref().unwrap().contains("split"));
        assert!(by_name("old/repo/old.gguf")
            .problem
            .as_deref()
            .unwrap()
            .contains("not readable"));

        let library = by_name("qwen2.5-coder:1.5b");
        assert_eq!(library.source, ModelSource::Ollama);
        assert_eq!(library.path, ollama.join(format!("blobs/sha256-{hex}")));
        assert_eq!(library.precision.as_deref(), Some("Q8_0"));
        assert!(by_name("someone/tiny:latest").problem.is_none());
        let evil = by_name("evil:latest");
        assert!(
            evil.problem.as_deref().unwrap().contains("not sha256:HEX"),
            "{evil:?}"
        );

        let hf_gguf = by_name("Org/Tiny-GGUF/tiny-Q8_0.gguf");
        assert_eq!(hf_gguf.source, ModelSource::HuggingFace);
        let small = by_name("Org/Small");
        assert_eq!(
            (small.format, small.precision.as_deref()),
            ("safetensors", Some("bfloat16"))
        );
        assert_eq!(small.architecture.as_deref(), Some("LlamaForCausalLM"));
        // LM Studio's first, then Ollama's, then Hugging Face's.
        let sources: Vec<ModelSource> = found.iter().map(|m| m.source).collect();
        let mut sorted = sources.clone();
        sorted.sort_by_key(|s| *s as u8);
        assert_eq!(sources, sorted);
    }

    #[test]
    fn ollama_names_follow_ollama_list() {
        assert_eq!(
            ollama_name("registry.ollama.ai", "library", "llama3.2", "3b"),
            "llama3.2:3b"
        );
        assert_eq!(
            ollama_name("registry.ollama.ai", "jane", "m", "latest"),
            "jane/m:latest"
        );
        assert_eq!(
            ollama_name("hf.co", "bartowski", "Qwen-GGUF", "Q4_K_M"),
            "hf.co/bartowski/Qwen-GGUF:Q4_K_M"
        );
    }

    #[test]
    fn split_parts_are_recognised() {
        assert!(is_split_part("Qwen3-8B-Q4_K_M-00001-of-00003.gguf"));
        assert!(!is_split_part("Qwen3-8B-Q4_K_M.gguf"));
        assert!(!is_split_part("model-of-dreams.gguf"));
    }

    #[test]
    fn missing_folders_find_nothing() {
        let folders = ModelFolders::under_home(Path::new("/nonexistent/home"), None, None);
        assert!(find_local_models(&folders).is_empty());
    }
}
