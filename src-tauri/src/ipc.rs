//! The payloads of the IPC contract, mirrored field for field by `ui/src/ipc.ts`
//! (docs/ipc.md). Engine, hub and pairs types (step traces, summaries, requests,
//! download events, verdicts, catalog pairs) cross as they are; these are the app's own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tandem_engine::{
    BackendKind, GenerateRequest, GenerationSummary, StepTrace, TextPiece, TokenOrigin,
};
use tandem_pairs::{Pair, Verdict};

#[derive(Clone, Debug, Serialize)]
pub struct Gpu {
    pub name: String,
    pub memory_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Hardware {
    pub total_memory_bytes: u64,
    pub available_memory_bytes: u64,
    pub cpu_cores: usize,
    pub gpus: Vec<Gpu>,
    pub os: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppInfo {
    pub version: String,
    pub backends: Vec<BackendKind>,
    pub hardware: Hardware,
    pub hub_endpoint: String,
    pub cache_dir: String,
    pub has_token: bool,
    pub history_dir: String,
    /// Problems found while starting, each a sentence for the user (e.g. a damaged
    /// custom pairs file, moved aside).
    pub notices: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LocalModel {
    pub repo_id: String,
    pub dir: String,
    pub size_on_disk: u64,
    pub partial_bytes: u64,
    pub complete: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LocalModels {
    pub models: Vec<LocalModel>,
    pub cache_dir: String,
    pub used_bytes: u64,
    pub free_bytes: Option<u64>,
}

/// A model file another tool keeps (LM Studio's, Ollama's GGUF files), usable by its path.
#[derive(Clone, Debug, Serialize)]
pub struct LocalFile {
    /// `lm_studio`, `ollama` or `hugging_face`.
    pub source: tandem_pairs::ModelSource,
    /// The name the tool shows (`qwen2.5-coder:1.5b`).
    pub name: String,
    /// What a pair or a run uses: the file's path.
    pub path: String,
    pub size_bytes: u64,
    pub architecture: Option<String>,
    /// `Q4_K_M`, …
    pub precision: Option<String>,
    /// Why Tandem cannot load it (`None`: it can).
    pub problem: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CustomPair {
    pub id: String,
    pub draft: String,
    pub target: String,
    pub verdict: Option<Verdict>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CatalogInfo {
    pub about: String,
    pub pairs: Vec<Pair>,
    pub custom: Vec<CustomPair>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DownloadDone {
    pub repo: String,
    pub snapshot_dir: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct LoadRequest {
    pub target: String,
    pub draft: Option<String>,
    /// "f32" or "int8".
    pub precision: String,
    #[serde(default)]
    pub backend: BackendKind,
}

/// What a model's chat template offers besides the conversation (the Run and Compare
/// views' Thinking switch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatTemplateInfo {
    /// The model has a chat template.
    pub has_template: bool,
    /// The template has a thinking switch (reads `enable_thinking`, as Qwen3's and
    /// SmolLM3's do): its default, what a request leaving `enable_thinking` out gets.
    /// `None`: no switch.
    pub thinking_default: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadedModelInfo {
    pub name: String,
    pub dir: String,
    pub architecture: String,
    pub vocab_size: usize,
    pub load_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadedPair {
    pub target: LoadedModelInfo,
    pub draft: Option<LoadedModelInfo>,
    pub precision: String,
    pub backend: BackendKind,
}

/// One lane of a run or a race: the mode's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Plain,
    Speculative,
    Nasd,
}

/// An emitted token with the text it released.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenText {
    pub id: u32,
    pub text: String,
    pub origin: TokenOrigin,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepRecord {
    pub trace: StepTrace,
    /// Aligned with `trace.emitted`.
    pub tokens: Vec<TokenText>,
    /// From the start of the lane to the end of this step.
    pub elapsed_ms: f64,
}

/// Streamed on the `onEvent` channel of `start_run` and `start_compare`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    Started {
        run_id: String,
        lane: Lane,
        prompt_text: String,
        prompt_len: usize,
        max_new_tokens: usize,
    },
    Step {
        lane: Lane,
        step: StepRecord,
        vocab: BTreeMap<String, String>,
    },
    Finished {
        lane: Lane,
        summary: GenerationSummary,
        text: String,
        tail: Option<TextPiece>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub created_at: String,
    pub lane: Lane,
    pub request: GenerateRequest,
    pub target: String,
    pub draft: Option<String>,
    pub precision: String,
    pub backend: String,
    pub prompt_text: String,
    pub text: String,
    pub steps: Vec<StepRecord>,
    pub summary: GenerationSummary,
    pub vocab: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CompareRequest {
    pub request: GenerateRequest,
    pub lanes: Vec<Lane>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ComparisonRecord {
    pub id: String,
    pub created_at: String,
    pub runs: Vec<RunRecord>,
    pub speedups: BTreeMap<Lane, f64>,
    /// The greedy exactness check; `None` when sampling or without a plain lane.
    pub greedy: Option<GreedyVerdict>,
}

/// The greedy check as the UI shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GreedyVerdict {
    /// Every lane ran to its end and wrote plain's tokens.
    Identical,
    /// A lane's tokens differ from plain's.
    Different,
    /// No difference found, but not every output was compared in full (a lane was
    /// cancelled, or plain ran alone): identical is not proven.
    Incomplete,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryLane {
    pub lane: Lane,
    pub new_tokens: usize,
    pub tokens_per_second: f64,
    pub alpha: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub id: String,
    /// "run" or "comparison".
    pub kind: &'static str,
    pub created_at: String,
    pub title: String,
    pub target: String,
    pub draft: Option<String>,
    pub lanes: Vec<HistoryLane>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HistoryItem {
    Run { run: Box<RunRecord> },
    Comparison { comparison: ComparisonRecord },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Jsonl,
    Csv,
    Html,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
            Self::Html => "html",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_names_match_the_ui_contract() {
        let json = serde_json::to_value(HistoryItem::Comparison {
            comparison: ComparisonRecord {
                id: "cmp-1".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                runs: vec![],
                speedups: BTreeMap::from([(Lane::Speculative, 2.0)]),
                greedy: Some(GreedyVerdict::Incomplete),
            },
        })
        .unwrap();
        assert_eq!(json["kind"], "comparison");
        assert_eq!(json["comparison"]["greedy"], "incomplete");
        assert_eq!(json["comparison"]["speedups"]["speculative"], 2.0);
        assert_eq!(
            serde_json::from_str::<Lane>("\"nasd\"").unwrap(),
            Lane::Nasd
        );
        assert_eq!(
            serde_json::from_str::<ExportFormat>("\"jsonl\"").unwrap(),
            ExportFormat::Jsonl
        );
    }
}
