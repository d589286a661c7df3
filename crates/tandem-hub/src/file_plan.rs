//! Which files of a model repo Tandem needs: configs, tokenizer and the
//! safetensors weights, never pickle (`.bin`) weights or anything else.

use std::collections::BTreeSet;

use crate::HubError;

pub const CONFIG: &str = "config.json";
pub const GENERATION_CONFIG: &str = "generation_config.json";
pub const TOKENIZER: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub const CHAT_TEMPLATE: &str = "chat_template.jinja";
pub const SINGLE_SAFETENSORS: &str = "model.safetensors";
pub const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";

/// Files a model cannot be used without.
pub(crate) const REQUIRED_CONFIG_FILES: [&str; 3] = [CONFIG, TOKENIZER, TOKENIZER_CONFIG];
/// Files that are fetched when the repo has them.
pub(crate) const OPTIONAL_CONFIG_FILES: [&str; 2] = [GENERATION_CONFIG, CHAT_TEMPLATE];

/// Extensions of weights stored as Python pickles, which can run code on load.
const PICKLE_EXTENSIONS: [&str; 5] = [".bin", ".pt", ".pth", ".ckpt", ".pkl"];

/// How much of a model to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileSet {
    /// Configs, tokenizer and weights.
    Model,
    /// Configs and tokenizer only (the "pair doctor" looks at these first).
    ConfigOnly,
}

/// The files chosen from a repo listing. With sharded weights the shard
/// names are only known once the index has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilePlan {
    pub files: Vec<String>,
    pub sharded_index: Option<String>,
}

/// Picks the needed files from what the repo has (`has(name)`).
pub(crate) fn plan_files(
    repo: &str,
    set: FileSet,
    listing: &BTreeSet<String>,
) -> Result<FilePlan, HubError> {
    let has = |name: &str| listing.contains(name);
    let mut files = Vec::new();
    let mut sharded_index = None;

    if set == FileSet::Model {
        // A single file is simpler to fetch and verify than shards, so it wins
        // when a repo has both.
        if has(SINGLE_SAFETENSORS) {
            files.push(SINGLE_SAFETENSORS.to_string());
        } else if has(SAFETENSORS_INDEX) {
            files.push(SAFETENSORS_INDEX.to_string());
            sharded_index = Some(SAFETENSORS_INDEX.to_string());
        } else {
            let pickle_files = listing
                .iter()
                .filter(|name| PICKLE_EXTENSIONS.iter().any(|ext| name.ends_with(ext)))
                .cloned()
                .collect();
            return Err(HubError::NoSafetensors {
                repo: repo.to_string(),
                pickle_files,
            });
        }
    }

    let missing: Vec<String> = REQUIRED_CONFIG_FILES
        .iter()
        .filter(|name| !has(name))
        .map(|name| name.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(HubError::MissingFiles {
            repo: repo.to_string(),
            files: missing,
        });
    }
    let configs = REQUIRED_CONFIG_FILES
        .iter()
        .chain(OPTIONAL_CONFIG_FILES.iter().filter(|name| has(name)));
    // Configs first: they are small, and a caller watching progress sees
    // them land before the long weight transfer.
    let mut ordered: Vec<String> = configs.map(|name| name.to_string()).collect();
    ordered.append(&mut files);
    Ok(FilePlan {
        files: ordered,
        sharded_index,
    })
}

/// The shard files listed in `model.safetensors.index.json` (its `weight_map`
/// values), each once, in name order.
pub(crate) fn shards_from_index(repo: &str, index_json: &[u8]) -> Result<Vec<String>, HubError> {
    let bad = |reason: String| HubError::BadIndex {
        repo: repo.to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(index_json).map_err(|err| bad(format!("not JSON: {err}")))?;
    let weight_map = value
        .get("weight_map")
        .and_then(|map| map.as_object())
        .ok_or_else(|| bad("no \"weight_map\" object".to_string()))?;
    let mut shards = BTreeSet::new();
    for (tensor, file) in weight_map {
        let file = file
            .as_str()
            .ok_or_else(|| bad(format!("tensor {tensor} maps to a non-string")))?;
        if !is_safe_relative_path(file) || !file.ends_with(".safetensors") {
            return Err(bad(format!(
                "tensor {tensor} maps to an unusable file {file:?}"
            )));
        }
        shards.insert(file.to_string());
    }
    if shards.is_empty() {
        return Err(bad("\"weight_map\" is empty".to_string()));
    }
    Ok(shards.into_iter().collect())
}

/// A repo-relative path that stays inside the snapshot folder when joined (the rule
/// local shard indexes are checked by too).
pub(crate) use tandem_paths::is_safe_relative_path;

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    const CONFIGS: [&str; 3] = [CONFIG, TOKENIZER, TOKENIZER_CONFIG];

    #[test]
    fn single_file_model_with_optional_files() {
        let mut names = CONFIGS.to_vec();
        names.extend([
            SINGLE_SAFETENSORS,
            GENERATION_CONFIG,
            CHAT_TEMPLATE,
            "README.md",
            "pytorch_model.bin",
        ]);
        let plan = plan_files("o/m", FileSet::Model, &listing(&names)).unwrap();
        assert_eq!(
            plan.files,
            vec![
                CONFIG,
                TOKENIZER,
                TOKENIZER_CONFIG,
                GENERATION_CONFIG,
                CHAT_TEMPLATE,
                SINGLE_SAFETENSORS
            ]
        );
        assert_eq!(plan.sharded_index, None);
    }

    #[test]
    fn sharded_model_starts_with_the_index() {
        let mut names = CONFIGS.to_vec();
        names.extend([SAFETENSORS_INDEX, "model-00001-of-00002.safetensors"]);
        let plan = plan_files("o/m", FileSet::Model, &listing(&names)).unwrap();
        assert_eq!(plan.files.last().unwrap(), SAFETENSORS_INDEX);
        assert_eq!(plan.sharded_index.as_deref(), Some(SAFETENSORS_INDEX));
    }

    #[test]
    fn config_only_skips_weights() {
        let mut names = CONFIGS.to_vec();
        names.push("pytorch_model.bin");
        let plan = plan_files("o/m", FileSet::ConfigOnly, &listing(&names)).unwrap();
        assert_eq!(plan.files, CONFIGS.to_vec());
    }

    #[test]
    fn pickle_only_repo_is_refused() {
        let mut names = CONFIGS.to_vec();
        names.push("pytorch_model.bin");
        let err = plan_files("o/m", FileSet::Model, &listing(&names)).unwrap_err();
        match &err {
            HubError::NoSafetensors { pickle_files, .. } => {
                assert_eq!(pickle_files, &vec!["pytorch_model.bin".to_string()])
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("never loads pickle"), "{err}");
    }

    #[test]
    fn missing_tokenizer_is_named() {
        let names = [CONFIG, TOKENIZER_CONFIG, SINGLE_SAFETENSORS];
        let err = plan_files("o/m", FileSet::Model, &listing(&names)).unwrap_err();
        assert!(
            matches!(&err, HubError::MissingFiles { files, .. } if files == &vec![TOKENIZER.to_string()])
        );
    }

    #[test]
    fn index_lists_unique_shards() {
        let index = br#"{"metadata":{"total_size":10},"weight_map":{
            "a":"model-00002-of-00002.safetensors",
            "b":"model-00001-of-00002.safetensors",
            "c":"model-00001-of-00002.safetensors"}}"#;
        assert_eq!(
            shards_from_index("o/m", index).unwrap(),
            vec![
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        );
    }

    #[test]
    fn index_with_escaping_or_pickle_paths_is_refused() {
        for index in [
            br#"{"weight_map":{"a":"../evil.safetensors"}}"#.as_slice(),
            br#"{"weight_map":{"a":"pytorch_model.bin"}}"#,
            br#"{"weight_map":{}}"#,
            br#"{"nope":1}"#,
            b"not json",
        ] {
            assert!(
                matches!(
                    shards_from_index("o/m", index),
                    Err(HubError::BadIndex { .. })
                ),
                "{}",
                String::from_utf8_lossy(index)
            );
        }
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_relative_path("a/b.json"));
        for bad in ["", "/etc/passwd", "a/../b", "./a", "a//b", "c:\\x", "a\\b"] {
            assert!(!is_safe_relative_path(bad), "{bad:?}");
        }
    }
}
