//! The one entry point: [`generate`], for plain, speculative and NASD decoding.
//!
//! # Cache invariant
//! Let `sequence` be the prompt followed by every token emitted so far. After
//! every step (and so whenever an observer sees a `Step` event):
//! - the target's cache holds exactly `sequence[..len − 1]`: everything but
//!   the last token, which is *pending* (sampled from the last logits, not fed);
//! - a draft model's cache holds `sequence[..m]` with `m ≤ len − 1`, and
//!   `m ≥ len − 2` after any step that drafted (`len − 2` only after a fully
//!   accepted step, when the last draft and the bonus token are both pending).
//!
//! So each target forward is fed exactly the tokens it lacks (the pending
//! token, plus the whole prompt on the first step) followed by the drafts, and
//! no position is computed twice unless a rejection made it stale.

mod engine;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::drafter::{Drafter, ModelDrafter, NgramDrafter};
use crate::error::DecodeError;
use crate::gamma::GammaPolicy;
use crate::model::CausalLm;
use crate::sampling::SamplingConfig;
use crate::trace::{GenerationEvent, GenerationSummary, ModeKind, StepTrace, TokenOrigin};
use crate::verify::RejectionVariant;

use engine::Engine;

/// The decoding strategy.
pub enum Mode<'a> {
    /// One target forward per token: the baseline.
    Plain,
    /// Draft with a smaller model sharing the target's vocabulary (check it
    /// first with [`crate::check_vocab_compatible`]).
    Speculative { draft: &'a mut dyn CausalLm },
    /// Draft from n-grams of the prompt and output: contexts of
    /// `1..=ngram_n − 1` tokens. See [`NgramDrafter::new`] for `filler_top_k`.
    Nasd {
        ngram_n: usize,
        filler_top_k: Option<usize>,
    },
}

impl Mode<'_> {
    pub fn kind(&self) -> ModeKind {
        match *self {
            Mode::Plain => ModeKind::Plain,
            Mode::Speculative { .. } => ModeKind::Speculative,
            Mode::Nasd {
                ngram_n,
                filler_top_k,
            } => ModeKind::Nasd {
                ngram_n,
                filler_top_k,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    /// Emitting any of these ends the run; the EOS token is kept in the output.
    pub eos_token_ids: BTreeSet<u32>,
    /// Checked on the decoded output (needs [`Hooks::with_detokenizer`]) after
    /// every token, also within a multi-token step, as plain decoding would; the
    /// output is cut before the first one found.
    pub stop_strings: Vec<String>,
    /// γ per step; ignored by [`Mode::Plain`].
    pub gamma: GammaPolicy,
    /// The draft/target cost ratio [`GammaPolicy::Goodput`] assumes for the whole run,
    /// measured before it (the clock must not steer γ: a seed would then no longer
    /// fix the tokens); `None`: the drafter's prior (0.1 for a draft model, 0 for
    /// n-gram drafts).
    #[serde(default)]
    pub draft_cost_ratio: Option<f64>,
    /// Test-only: deliberately biased rejection handling (see `verify`).
    #[doc(hidden)]
    #[serde(default)]
    pub rejection_variant: RejectionVariant,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            sampling: SamplingConfig::greedy(),
            max_new_tokens: 256,
            eos_token_ids: BTreeSet::new(),
            stop_strings: Vec::new(),
            gamma: GammaPolicy::Heuristic {
                start: 5,
                min: 1,
                max: 16,
            },
            draft_cost_ratio: None,
            rejection_variant: RejectionVariant::Exact,
        }
    }
}

/// Turns output tokens into text.
pub type Detokenizer<'a> = dyn Fn(&[u32]) -> String + 'a;

/// Receives generation events as they happen.
pub type Observer<'a> = dyn FnMut(&GenerationEvent) + 'a;

/// Callbacks into the caller; all optional.
#[derive(Default)]
pub struct Hooks<'h> {
    /// Sees every [`GenerationEvent`] as it happens.
    pub on_event: Option<&'h mut Observer<'h>>,
    /// Turns output tokens into text, for stop strings and
    /// [`GenerationResult::text`].
    pub detokenize: Option<&'h Detokenizer<'h>>,
    /// Checked between steps; when set the run stops and keeps its output.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl<'h> Hooks<'h> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_observer(mut self, on_event: &'h mut Observer<'h>) -> Self {
        self.on_event = Some(on_event);
        self
    }

    pub fn with_detokenizer(mut self, detokenize: &'h Detokenizer<'h>) -> Self {
        self.detokenize = Some(detokenize);
        self
    }

    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationResult {
    /// The new tokens (the prompt is not repeated).
    pub tokens: Vec<u32>,
    /// Where each of `tokens` came from.
    pub origins: Vec<TokenOrigin>,
    /// The decoded output, cut before a stop string; `None` without a detokenizer.
    pub text: Option<String>,
    pub steps: Vec<StepTrace>,
    pub summary: GenerationSummary,
}

/// Generates a continuation of `prompt` (already tokenized) with `target`.
///
/// Both models' caches are reset first. The output follows the target's
/// (warped) distribution exactly in every mode, and equals plain greedy
/// decoding token for token when `config.sampling` is greedy.
pub fn generate(
    target: &mut dyn CausalLm,
    mode: Mode<'_>,
    prompt: &[u32],
    config: &GenerationConfig,
    hooks: Hooks<'_>,
) -> Result<GenerationResult, DecodeError> {
    validate(&mode, prompt, config, &hooks)?;
    let kind = mode.kind();
    target.reset();
    match mode {
        Mode::Plain => Engine::new(target, None, kind, prompt, config, hooks).run(),
        Mode::Speculative { draft } => {
            let mut drafter = ModelDrafter::new(draft)
                .with_min_prob(config.gamma.min_draft_prob())
                .with_target_vocab(target.vocab_size());
            drafter.reset();
            Engine::new(target, Some(&mut drafter), kind, prompt, config, hooks).run()
        }
        Mode::Nasd {
            ngram_n,
            filler_top_k,
        } => {
            let mut drafter = NgramDrafter::new(ngram_n, filler_top_k);
            Engine::new(target, Some(&mut drafter), kind, prompt, config, hooks).run()
        }
    }
}

fn validate(
    mode: &Mode<'_>,
    prompt: &[u32],
    config: &GenerationConfig,
    hooks: &Hooks<'_>,
) -> Result<(), DecodeError> {
    let invalid = |message: String| Err(DecodeError::InvalidConfig(message));
    if prompt.is_empty() {
        return Err(DecodeError::EmptyPrompt);
    }
    config.sampling.validate().or_else(invalid)?;
    if !matches!(mode, Mode::Plain) {
        config.gamma.validate().or_else(invalid)?;
    }
    if let Some(c) = config.draft_cost_ratio {
        if !(c.is_finite() && c >= 0.0) {
            return invalid(format!("draft_cost_ratio must be finite and >= 0, got {c}"));
        }
    }
    if let Mode::Nasd {
        ngram_n,
        filler_top_k,
    } = *mode
    {
        if ngram_n < 2 {
            return invalid(format!("NASD needs ngram_n >= 2, got {ngram_n}"));
        }
        if filler_top_k == Some(0) {
            return invalid(
                "NASD's filler_top_k must be at least 1 (None disables it), got 0".into(),
            );
        }
    }
    if !config.stop_strings.is_empty() && hooks.detokenize.is_none() {
        return invalid("stop strings need a detokenizer (Hooks::with_detokenizer)".into());
    }
    if config.stop_strings.iter().any(String::is_empty) {
        return invalid("stop strings must not be empty".into());
    }
    Ok(())
}

/// Lets `generate` hand either drafter to the engine as one type.
type DynDrafter<'a> = Option<&'a mut dyn Drafter>;
