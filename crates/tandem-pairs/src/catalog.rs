//! The catalog of known-good draft/target pairs, kept in `catalog.json` so a
//! pair can be added without touching code.
//!
//! The file lists each model once (sizes, licence, gated) and the pairs refer
//! to models by repo id, so a draft shared by several pairs cannot end up
//! with two different sizes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::PairsError;

const BUILTIN_CATALOG: &str = include_str!("../catalog.json");

/// One model of the catalog. Sizes are approximate (bf16, as published).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogModel {
    /// Hub repo id, e.g. `Qwen/Qwen2.5-0.5B-Instruct`.
    pub repo: String,
    /// Parameter count.
    pub params: u64,
    /// Bytes of the bf16 safetensors weights.
    pub download_bytes: u64,
    /// The hub's licence tag, e.g. `apache-2.0` or `llama3.2`.
    pub licence: String,
    /// The hub asks users to accept the licence before downloading.
    pub gated: bool,
}

/// A draft model and the larger target it speeds up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair {
    /// Short name used on the command line, e.g. `qwen2.5-0.5b-1.5b`.
    pub id: String,
    pub draft: CatalogModel,
    pub target: CatalogModel,
    /// One line about the pair for people choosing one.
    pub note: String,
}

impl Pair {
    /// Both models' download size.
    pub fn download_bytes(&self) -> u64 {
        self.draft.download_bytes + self.target.download_bytes
    }

    /// Whether either model is gated.
    pub fn gated(&self) -> bool {
        self.draft.gated || self.target.gated
    }

    /// The licences that apply, without repeats: "apache-2.0" or
    /// "apache-2.0 + qwen-research".
    pub fn licences(&self) -> String {
        if self.draft.licence == self.target.licence {
            self.draft.licence.clone()
        } else {
            format!("{} + {}", self.draft.licence, self.target.licence)
        }
    }

    /// Draft and target, in that order.
    pub fn models(&self) -> [&CatalogModel; 2] {
        [&self.draft, &self.target]
    }
}

/// The known-good pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    /// What the numbers mean (they are approximate).
    pub about: String,
    pairs: Vec<Pair>,
}

/// `catalog.json` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    about: String,
    models: Vec<CatalogModel>,
    pairs: Vec<PairEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairEntry {
    id: String,
    draft: String,
    target: String,
    note: String,
}

impl Catalog {
    /// The catalog shipped with Tandem.
    pub fn builtin() -> Catalog {
        // Checked by this crate's tests, so a broken file never ships.
        Catalog::from_json(BUILTIN_CATALOG).expect("the built-in catalog.json is valid")
    }

    /// Parses a catalog in `catalog.json`'s format, checking that pair ids
    /// are unique and every pair names listed models.
    pub fn from_json(text: &str) -> Result<Catalog, PairsError> {
        let bad = |reason: String| PairsError::BadCatalog { reason };
        let file: CatalogFile =
            serde_json::from_str(text).map_err(|err| bad(format!("invalid JSON: {err}")))?;
        let mut models = BTreeMap::new();
        for model in file.models {
            if models.contains_key(&model.repo) {
                return Err(bad(format!("model {} is listed twice", model.repo)));
            }
            models.insert(model.repo.clone(), model);
        }
        let model = |repo: &str, pair: &str| {
            models.get(repo).cloned().ok_or_else(|| {
                bad(format!(
                    "pair {pair} names {repo}, which is not in `models`"
                ))
            })
        };
        let mut ids = BTreeSet::new();
        let mut pairs = Vec::with_capacity(file.pairs.len());
        for entry in file.pairs {
            if !ids.insert(entry.id.clone()) {
                return Err(bad(format!("pair id {} is used twice", entry.id)));
            }
            pairs.push(Pair {
                draft: model(&entry.draft, &entry.id)?,
                target: model(&entry.target, &entry.id)?,
                id: entry.id,
                note: entry.note,
            });
        }
        Ok(Catalog {
            about: file.about,
            pairs,
        })
    }

    /// The pairs in catalog order.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// The pair called `id` (ASCII case ignored, since people type these).
    pub fn find(&self, id: &str) -> Option<&Pair> {
        self.pairs
            .iter()
            .find(|pair| pair.id.eq_ignore_ascii_case(id.trim()))
    }

    /// What the catalog knows about a model repo, from any pair.
    pub fn model(&self, repo: &str) -> Option<&CatalogModel> {
        self.pairs
            .iter()
            .flat_map(Pair::models)
            .find(|model| model.repo.eq_ignore_ascii_case(repo))
    }

    /// Every distinct model repo of the catalog, in first-seen order.
    pub fn model_repos(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.pairs
            .iter()
            .flat_map(Pair::models)
            .map(|model| model.repo.as_str())
            .filter(|repo| seen.insert(*repo))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_with_unique_ids() {
        let catalog = Catalog::builtin();
        assert!(catalog.pairs().len() >= 8);
        let ids: BTreeSet<&str> = catalog.pairs().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids.len(), catalog.pairs().len());
        assert!(catalog.about.contains("APPROXIMATE"));
    }

    #[test]
    fn builtin_pairs_have_a_much_smaller_draft() {
        for pair in Catalog::builtin().pairs() {
            // The doctor warns from 50% on; no catalog pair should trigger it.
            assert!(
                pair.draft.params * 2 < pair.target.params,
                "{}: draft is not small enough",
                pair.id
            );
            assert!(pair.draft.download_bytes < pair.target.download_bytes);
            for model in pair.models() {
                let (org, name) = model.repo.split_once('/').expect("org/name");
                assert!(!org.is_empty() && !name.is_empty() && !name.contains('/'));
                // bf16: about two bytes per parameter; more where a checkpoint stores
                // its tied output head as well (Qwen3 0.6B and 1.7B). The pairs tests
                // check each model against its config (tests/pairs/catalog.rs).
                let ratio = model.download_bytes as f64 / model.params as f64;
                assert!((1.9..2.6).contains(&ratio), "{}: {ratio}", model.repo);
                assert!(!model.licence.is_empty());
            }
            assert!(!pair.note.is_empty() && !pair.note.contains('\n'));
        }
    }

    #[test]
    fn builtin_catalog_has_the_expected_pairs() {
        let catalog = Catalog::builtin();
        let qwen = catalog.find("qwen2.5-0.5b-1.5b").unwrap();
        assert_eq!(qwen.draft.repo, "Qwen/Qwen2.5-0.5B-Instruct");
        assert_eq!(qwen.target.repo, "Qwen/Qwen2.5-1.5B-Instruct");
        assert_eq!(qwen.licences(), "apache-2.0");
        assert!(!qwen.gated());

        let research = catalog.find("QWEN2.5-0.5B-3B").unwrap();
        assert_eq!(research.licences(), "apache-2.0 + qwen-research");

        let llama = catalog.find("llama3.2-1b-llama3.1-8b").unwrap();
        assert!(llama.gated());
        assert_eq!(llama.licences(), "llama3.2 + llama3.1");

        // The current families.
        let qwen3 = catalog.find("qwen3-0.6b-1.7b").unwrap();
        assert_eq!(qwen3.draft.repo, "Qwen/Qwen3-0.6B");
        assert!(!qwen3.gated());
        for id in ["qwen3-0.6b-4b", "qwen3-0.6b-8b", "qwen3-0.6b-14b"] {
            assert_eq!(catalog.find(id).unwrap().draft, qwen3.draft, "{id}");
        }
        let gemma = catalog.find("gemma3-270m-1b").unwrap();
        assert_eq!(
            (gemma.draft.repo.as_str(), gemma.target.repo.as_str()),
            ("google/gemma-3-270m-it", "google/gemma-3-1b-it")
        );
        for id in [
            "gemma3-1b-4b",
            "gemma3-1b-12b",
            "gemma3-1b-27b",
            "gemma-2b-7b",
        ] {
            let pair = catalog.find(id).unwrap();
            assert!(pair.draft.gated && pair.target.gated, "{id}");
            assert_eq!(pair.licences(), "gemma");
            assert!(pair.note.starts_with("Gated"), "{id}");
        }
        assert!(catalog.find("llama3.2-1b-3b").unwrap().gated());
        for id in ["qwen2.5-0.5b-7b", "smollm2-135m-1.7b"] {
            assert!(catalog.find(id).is_some(), "{id}");
        }
        assert!(catalog.find("smollm2-135m-360m").is_some());
        assert!(catalog.find("qwen2.5-coder-0.5b-1.5b").is_some());
        assert!(catalog.find("nope").is_none());
        assert!(catalog.model("qwen/qwen2.5-7b-instruct").is_some());
        // The Qwen 0.5B draft serves three pairs but is one model.
        let repos = catalog.model_repos();
        let drafts = repos
            .iter()
            .filter(|r| **r == "Qwen/Qwen2.5-0.5B-Instruct")
            .count();
        assert_eq!(drafts, 1);
    }

    #[test]
    fn duplicate_ids_and_unknown_models_are_refused() {
        let model = r#"{"repo": "a/d", "params": 1, "download_bytes": 2, "licence": "mit", "gated": false},
                       {"repo": "a/t", "params": 9, "download_bytes": 18, "licence": "mit", "gated": false}"#;
        let pair = r#"{"id": "p", "draft": "a/d", "target": "a/t", "note": "n"}"#;
        let twice = format!(r#"{{"about": "", "models": [{model}], "pairs": [{pair}, {pair}]}}"#);
        let err = Catalog::from_json(&twice).unwrap_err().to_string();
        assert!(err.contains("used twice"), "{err}");

        let unknown = r#"{"about": "", "models": [], "pairs": [{"id": "p", "draft": "a/d", "target": "a/t", "note": ""}]}"#;
        let err = Catalog::from_json(unknown).unwrap_err().to_string();
        assert!(err.contains("a/d"), "{err}");

        let ok = format!(r#"{{"about": "", "models": [{model}], "pairs": [{pair}]}}"#);
        assert_eq!(Catalog::from_json(&ok).unwrap().pairs()[0].target.params, 9);
    }
}
