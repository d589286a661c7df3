//! Fixture model folders and edited copies of them.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

/// The config and tokenizer files the doctor reads (no weights).
const CONFIG_FILES: [&str; 4] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
];

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A temp copy of a fixture's config files, to edit.
pub struct ModelCopy {
    _root: TempDir,
    pub dir: PathBuf,
}

impl ModelCopy {
    pub fn of(name: &str) -> ModelCopy {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for file in CONFIG_FILES {
            std::fs::copy(fixture(name).join(file), dir.join(file)).unwrap();
        }
        ModelCopy { _root: root, dir }
    }

    /// Rewrites one JSON file of the copy.
    pub fn edit(&self, file: &str, change: impl FnOnce(&mut Value)) -> &Self {
        let path = self.dir.join(file);
        let mut json: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        change(&mut json);
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        self
    }

    /// Swaps the ids of two tokens of the BPE vocabulary.
    pub fn swap_tokens(&self, a: &str, b: &str) -> &Self {
        self.edit("tokenizer.json", |json| {
            let vocab = json["model"]["vocab"].as_object_mut().unwrap();
            let id_a = vocab[a].clone();
            let id_b = vocab[b].clone();
            vocab.insert(a.to_string(), id_b);
            vocab.insert(b.to_string(), id_a);
        })
    }
}
