//! One generation: prompt preparation, the strategy, the draft check, and the result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tandem_decode::{
    check_vocab_compatible, generate, GammaPolicy, GenerationConfig, GenerationEvent,
    GenerationResult, Hooks, Mode, SamplingConfig,
};
use tandem_model::tokenizer::ChatOptions;
use tandem_model::{ChatMessage, ChatTemplate};

use crate::error::{EngineError, Result};
use crate::model::LoadedModel;
use crate::predict::measure_cost_ratio;
use crate::text::{TextPiece, TextStream};

/// The decoding strategy of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RunMode {
    /// One target forward per token: the baseline.
    Plain,
    /// A draft model proposes, the target verifies.
    Speculative,
    /// An n-gram store built from the prompt and output proposes; no draft model.
    Nasd {
        ngram_n: usize,
        filler_top_k: Option<usize>,
    },
}

impl RunMode {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Speculative => "speculative",
            Self::Nasd { .. } => "nasd",
        }
    }
}

/// Everything that defines a run besides the models.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub prompt: String,
    /// Wrap the prompt as a user message in the model's chat template.
    pub chat: bool,
    /// The chat template's `enable_thinking` (Qwen3, SmolLM3: reason in a `<think>`
    /// block first, or answer straight away). `None` leaves it undefined: the template's
    /// own default. Templates without the switch ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_thinking: Option<bool>,
    pub mode: RunMode,
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    pub gamma: GammaPolicy,
    pub stop_strings: Vec<String>,
    /// Keep generating past end-of-sequence tokens (fixed-length benchmark runs).
    #[serde(default)]
    pub ignore_eos: bool,
    /// The draft/target cost ratio γ auto assumes for the whole run. `None`: measured
    /// once before a speculative run (see [`crate::predict::measure_cost_ratio`]).
    /// A log header's `gamma_cost_ratio` set here reruns a sampled γ-auto run token
    /// for token with the same seed.
    #[serde(default)]
    pub gamma_cost_ratio: Option<f64>,
}

impl GenerateRequest {
    pub fn new(prompt: impl Into<String>, mode: RunMode) -> Self {
        Self {
            prompt: prompt.into(),
            chat: false,
            enable_thinking: None,
            mode,
            sampling: SamplingConfig::greedy(),
            max_new_tokens: 128,
            gamma: GammaPolicy::Fixed(4),
            stop_strings: Vec::new(),
            ignore_eos: false,
            gamma_cost_ratio: None,
        }
    }

    /// The template variables the request sets.
    pub fn chat_options(&self) -> ChatOptions {
        ChatOptions::thinking(self.enable_thinking)
    }

    /// What a chat rendering of the request depends on besides the template.
    pub(crate) fn chat_key(&self) -> ChatKey {
        (self.prompt.clone(), self.enable_thinking)
    }
}

/// A user prompt and the `enable_thinking` it was rendered with.
pub(crate) type ChatKey = (String, Option<bool>);

/// The result of a run, with the prompt as the model saw it.
#[derive(Clone, Debug)]
pub struct RunOutput {
    pub prompt_text: String,
    pub prompt_tokens: Vec<u32>,
    pub text: String,
    pub result: GenerationResult,
    /// The cost ratio γ auto assumed, when it did (see [`GenerateRequest::gamma_cost_ratio`]).
    pub gamma_cost_ratio: Option<f64>,
}

/// Chat prompts a [`Session`](crate::Session) rendered before its job took the models,
/// by user prompt and thinking switch (see `Session::with_pair_for`).
pub(crate) struct ChatPrompts {
    /// The template they were rendered with; they stand for the target's own rendering
    /// only while the target has this template.
    pub template: ChatTemplate,
    pub rendered: BTreeMap<ChatKey, String>,
}

/// The prompt text the model is fed: the raw prompt, or the chat template's rendering
/// (rendered already when the session did it before the run).
pub fn prompt_text(model: &LoadedModel, request: &GenerateRequest) -> Result<String> {
    if request.chat {
        if let Some(text) = model
            .chat_prompts
            .as_ref()
            .and_then(|prompts| prompts.rendered.get(&request.chat_key()))
        {
            return Ok(text.clone());
        }
        Ok(model.tokenizer.apply_chat_template_with(
            &[ChatMessage::new("user", request.prompt.clone())],
            true,
            &request.chat_options(),
        )?)
    } else {
        Ok(request.prompt.clone())
    }
}

/// Refuses a draft whose vocabulary differs from the target's (a padded target is fine).
pub fn check_draft(target: &LoadedModel, draft: &LoadedModel) -> Result<()> {
    check_vocab_compatible(&target.token_strings(), &draft.token_strings())
        .map_err(|e| EngineError::IncompatibleDraft(e.to_string()))
}

/// Receives each generation event with the text it released (coloured by origin).
pub type EventSink<'a> = dyn FnMut(&GenerationEvent, &[TextPiece]) + 'a;

/// Runs one generation, streaming events and text to `on_event`. A cancelled run
/// returns what it produced, with `summary.cancelled` set.
pub fn run_generation(
    target: &mut LoadedModel,
    draft: Option<&mut LoadedModel>,
    request: &GenerateRequest,
    on_event: &mut EventSink<'_>,
    cancel: Option<Arc<AtomicBool>>,
) -> Result<RunOutput> {
    crate::limits::check_generate(request)?;
    let prompt_text = prompt_text(target, request)?;
    let prompt_tokens = target.tokenizer.encode(&prompt_text)?;
    if prompt_tokens.is_empty() {
        return Err(EngineError::InvalidRequest("the prompt is empty".into()));
    }
    let mut draft = draft;
    let gamma_cost_ratio = match (&request.mode, &request.gamma, draft.as_deref_mut()) {
        (RunMode::Speculative, GammaPolicy::Goodput { .. }, Some(draft)) => {
            match request.gamma_cost_ratio {
                Some(pinned) => Some(pinned),
                // Once, before the run's clock starts: read step by step from the
                // clock, γ and with it the random draws would change from run to run.
                None => Some(measure_cost_ratio(target.lm(), draft.lm(), &prompt_tokens)?),
            }
        }
        // n-gram drafts cost nothing; only a ratio given is used (and recorded).
        (RunMode::Nasd { .. }, GammaPolicy::Goodput { .. }, _) => request.gamma_cost_ratio,
        _ => None,
    };
    let config = GenerationConfig {
        sampling: request.sampling.clone(),
        max_new_tokens: request.max_new_tokens,
        eos_token_ids: if request.ignore_eos {
            BTreeSet::new()
        } else {
            target.eos_token_ids().into_iter().collect()
        },
        stop_strings: request.stop_strings.clone(),
        gamma: request.gamma.clone(),
        draft_cost_ratio: gamma_cost_ratio,
        ..GenerationConfig::default()
    };

    let tokenizer = &target.tokenizer;
    let detokenize = |ids: &[u32]| tokenizer.decode(ids).unwrap_or_default();
    let holdback = request
        .stop_strings
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(1)
        - 1;
    let mut stream = TextStream::new(detokenize, holdback);
    let stop_strings = &request.stop_strings;
    let mut observer = |event: &GenerationEvent| {
        let mut pieces = Vec::new();
        match event {
            GenerationEvent::Step(step) => {
                stream.retract(step.retracted);
                pieces.extend(
                    step.emitted
                        .iter()
                        .filter_map(|t| stream.push(t.token, t.origin)),
                );
            }
            GenerationEvent::Finished(_) => pieces.extend(stream.finish_at_stop(stop_strings)),
            GenerationEvent::Started { .. } => {}
        }
        on_event(event, &pieces)
    };
    let mut hooks = Hooks::new()
        .with_detokenizer(&detokenize)
        .with_observer(&mut observer);
    hooks.cancel = cancel;

    // The detokenizer borrows the target's tokenizer while its model runs: disjoint fields.
    let target_lm = &mut *target.lm;
    let result = match (&request.mode, draft) {
        (RunMode::Plain, _) => generate(target_lm, Mode::Plain, &prompt_tokens, &config, hooks)?,
        (
            RunMode::Nasd {
                ngram_n,
                filler_top_k,
            },
            _,
        ) => generate(
            target_lm,
            Mode::Nasd {
                ngram_n: *ngram_n,
                filler_top_k: *filler_top_k,
            },
            &prompt_tokens,
            &config,
            hooks,
        )?,
        (RunMode::Speculative, Some(draft)) => generate(
            target_lm,
            Mode::Speculative { draft: draft.lm() },
            &prompt_tokens,
            &config,
            hooks,
        )?,
        (RunMode::Speculative, None) => {
            return Err(EngineError::InvalidRequest(
                "speculative decoding needs a draft model".into(),
            ))
        }
    };
    let text = result.text.clone().unwrap_or_default();
    Ok(RunOutput {
        prompt_text,
        prompt_tokens,
        text,
        result,
        gamma_cost_ratio,
    })
}
