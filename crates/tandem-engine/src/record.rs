//! The complete record of one run: what was asked, of which models, on what machine,
//! every step with the text it released, and the outcome. It is what a run log holds
//! (see `export::jsonl` and docs/log-format.md), so a log read back can be replayed or
//! reported on without the models.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tandem_decode::{
    GammaPolicy, GenerationEvent, GenerationSummary, SamplingConfig, StepTrace, TokenOrigin,
};

use crate::error::Result;
use crate::ids;
use crate::pair::LoadedPair;
use crate::provenance::ModelProvenance;
use crate::run::{run_generation, GenerateRequest, RunMode};
use crate::text::TextPiece;

/// Version of the run log schema; bumped on any change a reader must know about.
pub const LOG_SCHEMA_VERSION: u32 = 1;

/// Everything that defines a run: the log's first line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    pub schema_version: u32,
    pub tandem_version: String,
    pub run_id: String,
    /// Shared by the runs of one comparison.
    pub comparison_id: Option<String>,
    /// Set for runs of a benchmark suite.
    #[serde(default)]
    pub suite_item: Option<SuiteItemRef>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub mode: RunMode,
    pub target: ModelProvenance,
    /// Present only when the mode used the draft model.
    pub draft: Option<ModelProvenance>,
    pub backend: String,
    pub device: String,
    /// Temperature, top-k, top-p and the seed (`sampling.seed`).
    pub sampling: SamplingConfig,
    /// `None` for plain decoding, which drafts nothing.
    pub gamma_policy: Option<GammaPolicy>,
    /// The draft/target cost ratio γ auto assumed for the whole run (measured before
    /// it, or given); `None` for other policies, for n-gram drafts (free), and in logs
    /// written before it was recorded. With the seed it fixes a sampled run's tokens.
    #[serde(default)]
    pub gamma_cost_ratio: Option<f64>,
    pub max_new_tokens: usize,
    pub ignore_eos: bool,
    pub chat: bool,
    /// The chat template's `enable_thinking` as set for the run; absent when left to
    /// the template's default (and in logs written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_thinking: Option<bool>,
    pub stop_strings: Vec<String>,
    /// The prompt as given.
    pub prompt: String,
    /// The prompt as the model was fed it (after the chat template).
    pub prompt_text: String,
    pub prompt_tokens: Vec<u32>,
}

/// Which suite prompt a run answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteItemRef {
    pub id: String,
    pub category: String,
}

/// One step and the text it released for display.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedStep {
    pub trace: StepTrace,
    pub pieces: Vec<TextPiece>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub summary: GenerationSummary,
    /// The output text, cut before any stop string.
    pub text: String,
    pub tokens: Vec<u32>,
    pub origins: Vec<TokenOrigin>,
    /// Text held back during the run (a stop string might have been forming) and
    /// released when it finished.
    pub final_pieces: Vec<TextPiece>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub header: RunHeader,
    pub steps: Vec<LoggedStep>,
    pub outcome: RunOutcome,
}

impl RunRecord {
    pub fn run_id(&self) -> &str {
        &self.header.run_id
    }

    /// `plain`, `speculative` or `nasd`.
    pub fn label(&self) -> &'static str {
        self.header.mode.label()
    }

    pub fn summary(&self) -> &GenerationSummary {
        &self.outcome.summary
    }

    /// The output as it was shown, piece by piece, each with its token's origin.
    pub fn pieces(&self) -> impl Iterator<Item = &TextPiece> {
        self.steps
            .iter()
            .flat_map(|s| &s.pieces)
            .chain(&self.outcome.final_pieces)
    }

    /// Drafts proposed over the whole run (judged or not).
    pub fn drafts_proposed(&self) -> usize {
        self.steps.iter().map(|s| s.trace.drafts.len()).sum()
    }
}

/// Ids that place a run: its own, and the comparison or suite item it belongs to.
#[derive(Clone, Debug, Default)]
pub struct RunContext {
    pub run_id: String,
    pub comparison_id: Option<String>,
    pub suite_item: Option<SuiteItemRef>,
}

impl RunContext {
    /// A fresh run id for `mode`.
    pub fn new(mode: &RunMode) -> Self {
        Self {
            run_id: ids::new_id("run", Some(mode.label())),
            ..Self::default()
        }
    }
}

/// Runs one generation on a loaded pair and records it. `on_event` sees each decode
/// event with the text it released, as `run_generation` reports them.
pub fn run_recorded(
    pair: &mut LoadedPair,
    request: &GenerateRequest,
    context: RunContext,
    on_event: &mut dyn FnMut(&GenerationEvent, &[TextPiece]),
    cancel: Option<Arc<AtomicBool>>,
) -> Result<RunRecord> {
    let created_at = ids::now_rfc3339();
    let mut step_pieces: Vec<Vec<TextPiece>> = Vec::new();
    let mut final_pieces = Vec::new();
    let mut observe = |event: &GenerationEvent, pieces: &[TextPiece]| {
        match event {
            GenerationEvent::Step(_) => step_pieces.push(pieces.to_vec()),
            GenerationEvent::Finished(_) => final_pieces.extend_from_slice(pieces),
            GenerationEvent::Started { .. } => {}
        }
        on_event(event, pieces);
    };
    let uses_draft = matches!(request.mode, RunMode::Speculative);
    let draft = if uses_draft {
        pair.draft.as_mut()
    } else {
        None
    };
    let output = run_generation(&mut pair.target, draft, request, &mut observe, cancel)?;

    let header = RunHeader {
        schema_version: LOG_SCHEMA_VERSION,
        tandem_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: context.run_id,
        comparison_id: context.comparison_id,
        suite_item: context.suite_item,
        created_at,
        mode: request.mode.clone(),
        target: pair.target_provenance.clone(),
        draft: if uses_draft {
            pair.draft_provenance.clone()
        } else {
            None
        },
        backend: pair.target.backend.name().to_string(),
        device: pair.device.clone(),
        sampling: request.sampling.clone(),
        gamma_policy: (!matches!(request.mode, RunMode::Plain)).then(|| request.gamma.clone()),
        gamma_cost_ratio: output.gamma_cost_ratio,
        max_new_tokens: request.max_new_tokens,
        ignore_eos: request.ignore_eos,
        chat: request.chat,
        enable_thinking: request.enable_thinking,
        stop_strings: request.stop_strings.clone(),
        prompt: request.prompt.clone(),
        prompt_text: output.prompt_text,
        prompt_tokens: output.prompt_tokens,
    };
    let result = output.result;
    let steps = result
        .steps
        .into_iter()
        .zip(step_pieces.into_iter().chain(std::iter::repeat(Vec::new())))
        .map(|(trace, pieces)| LoggedStep { trace, pieces })
        .collect();
    Ok(RunRecord {
        header,
        steps,
        outcome: RunOutcome {
            summary: result.summary,
            text: output.text,
            tokens: result.tokens,
            origins: result.origins,
            final_pieces,
        },
    })
}
