//! The pair doctor: judges a draft/target pair from its configs and
//! tokenizers alone (what `fetch_config_files` fetches), before gigabytes of
//! weights are downloaded.
//!
//! Every finding is a sentence for someone who is not a programmer. Problems
//! make the pair unusable; warnings make it work worse than it could; notes
//! are plain facts (sizes, memory, the expected gain).

mod model_files;
mod sizes;
mod special_tokens;
mod vocabulary;

use std::path::Path;

use serde::{Deserialize, Serialize};

use tandem_model::Precision;

use crate::memory::{precision_name, MemoryEstimate};
use crate::units::human_bytes;
use model_files::{ModelFiles, Role};

pub use sizes::SpeedupHint;

/// The context length assumed when none is given: the loader's default.
pub const DEFAULT_CONTEXT_LEN: usize = tandem_model::families::llama::DEFAULT_CONTEXT;

/// What to assume about how the pair will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorOptions {
    #[serde(with = "precision_name")]
    pub precision: Precision,
    /// Tokens of context the KV caches are sized for.
    pub context_len: usize,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            precision: Precision::F32,
            context_len: DEFAULT_CONTEXT_LEN,
        }
    }
}

/// The doctor's judgement of a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// No problems: the pair can run (warnings may still apply).
    pub ok: bool,
    /// Reasons the pair cannot work.
    pub problems: Vec<String>,
    /// Reasons it would work worse than it could.
    pub warnings: Vec<String>,
    /// Facts worth knowing.
    pub notes: Vec<String>,
    pub memory: MemoryEstimate,
    /// A rough expected speedup; `None` when the sizes are unknown or the
    /// draft is not smaller than the target.
    pub speedup: Option<SpeedupHint>,
}

/// Sentences collected by the checks.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

impl Findings {
    pub fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }

    pub fn warning(&mut self, text: impl Into<String>) {
        self.warnings.push(text.into());
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }
}

/// Checks the pair in `draft_dir` and `target_dir`: each folder needs at
/// least `config.json`, `tokenizer.json` and `tokenizer_config.json`.
/// Unreadable or unsupported files become problems of the verdict, never an
/// error, so the verdict always says everything that is wrong.
pub fn doctor(draft_dir: &Path, target_dir: &Path, options: &DoctorOptions) -> Verdict {
    let draft = ModelFiles::load(draft_dir, Role::Draft);
    let target = ModelFiles::load(target_dir, Role::Target);
    let mut findings = Findings::default();

    for model in [&draft, &target] {
        if let Err(err) = &model.config {
            findings.problem(format!("The {} model can't be used: {err}", model.role));
        }
        if let Err(err) = &model.tokenizer {
            findings.problem(format!(
                "The {} model's tokenizer can't be read: {err}",
                model.role
            ));
        }
    }
    vocabulary::check(&draft, &target, &mut findings);
    special_tokens::check(&draft, &target, &mut findings);
    let speedup = sizes::check(&draft, &target, &mut findings);

    let memory = MemoryEstimate::new(
        draft.config(),
        target.config(),
        options.precision,
        options.context_len,
    );
    describe_memory(&memory, &mut findings);
    for model in [&draft, &target] {
        if let Some(config) = model.config() {
            describe_sliding(config, model.role, options.context_len, &mut findings);
        }
    }

    Verdict {
        ok: findings.problems.is_empty(),
        problems: findings.problems,
        warnings: findings.warnings,
        notes: findings.notes,
        memory,
        speedup,
    }
}

fn describe_memory(memory: &MemoryEstimate, findings: &mut Findings) {
    let (Some(draft), Some(target)) = (memory.draft, memory.target) else {
        return;
    };
    findings.note(format!(
        "Running the pair needs about {} of memory ({} weights, {}-token context): \
         {} for the draft's weights, {} for the target's, and {} to remember the \
         conversation (KV caches).",
        human_bytes(memory.total_bytes),
        memory.precision,
        memory.context_len,
        human_bytes(draft.weight_bytes),
        human_bytes(target.weight_bytes),
        human_bytes(draft.kv_cache_bytes + target.kv_cache_bytes),
    ));
    let usable = draft.context_len.min(target.context_len);
    if usable < memory.context_len {
        findings.note(format!(
            "These models handle at most {usable} tokens of context, so the conversation \
             memory is counted for {usable} tokens rather than {}.",
            memory.context_len
        ));
    }
}

/// Sliding-window layers keep a small cache (see `memory::kv_cache_bytes`): say so,
/// since it is why such a model needs less memory than its size suggests.
fn describe_sliding(
    config: &tandem_model::ModelConfig,
    role: Role,
    context_len: usize,
    findings: &mut Findings,
) {
    let context_len = context_len.min(config.max_position_embeddings);
    let sliding = crate::memory::sliding_layers(config, context_len);
    if let (true, Some(window)) = (sliding > 0, config.sliding_window) {
        findings.note(format!(
            "{sliding} of the {role}'s {} layers look back only {window} tokens (a sliding \
             window), so their share of the conversation memory stays small.",
            config.num_layers
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folders_are_problems_not_errors() {
        let verdict = doctor(
            Path::new("/nonexistent/draft"),
            Path::new("/nonexistent/target"),
            &DoctorOptions::default(),
        );
        assert!(!verdict.ok);
        assert!(verdict.problems.len() >= 2, "{:?}", verdict.problems);
        assert!(verdict.problems[0].contains("/nonexistent/draft"));
        assert_eq!(verdict.memory.total_bytes, 0);
        assert_eq!(verdict.speedup, None);
    }

    #[test]
    fn verdict_serializes_for_the_app() {
        let verdict = doctor(
            Path::new("/nonexistent/a"),
            Path::new("/nonexistent/b"),
            &DoctorOptions {
                precision: Precision::Int8,
                context_len: 512,
            },
        );
        let json = serde_json::to_value(&verdict).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["memory"]["precision"], "int8");
        assert_eq!(json["memory"]["context_len"], 512);
        let back: Verdict = serde_json::from_value(json).unwrap();
        assert_eq!(back, verdict);
    }
}
