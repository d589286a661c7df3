//! Running `generate` with every step's cache state checked.

use crate::gamma::GammaPolicy;
use crate::generate::{generate, Detokenizer, GenerationConfig, GenerationResult, Hooks, Mode};
use crate::model::CausalLm;
use crate::sampling::SamplingConfig;
use crate::testing::{CheckedLm, LmCounters, TableLm};
use crate::trace::GenerationEvent;
use crate::verify::RejectionVariant;

/// A strategy with the draft model it owns, so tests can build runs as values.
pub(super) enum Strategy {
    Plain,
    Speculative(Box<dyn CausalLm>),
    Nasd { n: usize, filler: Option<usize> },
}

pub(super) struct CheckedRun {
    pub result: GenerationResult,
    pub target: LmCounters,
    pub draft: Option<LmCounters>,
}

/// Runs `generate` with both models wrapped in [`CheckedLm`] and asserts the
/// cache invariant documented in `generate` after every step:
/// target cache == sequence[..len − 1]; draft cache == sequence[..m] with
/// m ≤ len − 1, and m ≥ len − 2 after a step that drafted. Also checks the
/// event order, the forward counts, and (for exact rules) that no position
/// was recomputed after a rollback without need.
pub(super) fn run_checked(
    target: impl CausalLm,
    strategy: Strategy,
    prompt: &[u32],
    config: &GenerationConfig,
    detokenize: Option<&Detokenizer<'_>>,
) -> CheckedRun {
    let mut target = CheckedLm::new(target);
    let target_probe = target.probe();
    let nasd = match strategy {
        Strategy::Nasd { n, filler } => Some((n, filler)),
        _ => None,
    };
    let mut draft = match strategy {
        Strategy::Speculative(model) => Some(CheckedLm::new(model)),
        _ => None,
    };
    let draft_probe = draft.as_ref().map(|d| d.probe());
    let mode = match (draft.as_mut(), nasd) {
        (Some(model), _) => Mode::Speculative { draft: model },
        (None, Some((ngram_n, filler_top_k))) => Mode::Nasd {
            ngram_n,
            filler_top_k,
        },
        (None, None) => Mode::Plain,
    };

    let mut sequence = prompt.to_vec();
    let mut events = Vec::new();
    let mut observe = |event: &GenerationEvent| {
        if let GenerationEvent::Step(step) = event {
            let len = sequence.len() - step.retracted;
            sequence.truncate(len);
            sequence.extend(step.emitted.iter().map(|e| e.token));
            let len = sequence.len();
            assert_eq!(
                target_probe.cache(),
                sequence[..len - 1],
                "target cache after step {}",
                step.step
            );
            if let Some(probe) = &draft_probe {
                let cache = probe.cache();
                let m = cache.len();
                assert!(m < len, "draft cache too long after step {}", step.step);
                assert_eq!(cache, sequence[..m], "draft cache after step {}", step.step);
                if !step.drafts.is_empty() {
                    assert!(
                        m + 2 >= len,
                        "draft cache too short after step {}",
                        step.step
                    );
                }
            }
        }
        events.push(event.clone());
    };
    let mut hooks = Hooks::new().with_observer(&mut observe);
    if let Some(detokenize) = detokenize {
        hooks = hooks.with_detokenizer(detokenize);
    }
    let result = generate(&mut target, mode, prompt, config, hooks).expect("generate");

    assert!(matches!(
        events.first(),
        Some(GenerationEvent::Started { .. })
    ));
    assert_eq!(
        events.last(),
        Some(&GenerationEvent::Finished(result.summary.clone()))
    );
    assert_eq!(events.len(), result.steps.len() + 2);
    let mut expected_sequence = prompt.to_vec();
    expected_sequence.extend(&result.tokens);
    assert_eq!(sequence, expected_sequence);
    assert_eq!(result.origins.len(), result.tokens.len());

    let target_counters = target_probe.counters();
    let draft_counters = draft_probe.map(|p| p.counters());
    assert_eq!(result.summary.target_forwards, target_counters.forwards);
    assert_eq!(
        result.summary.draft_forwards,
        draft_counters.as_ref().map_or(0, |c| c.forwards)
    );
    if config.rejection_variant == RejectionVariant::Exact {
        assert_eq!(target_counters.recomputed_positions, 0);
        if let Some(counters) = &draft_counters {
            assert_eq!(counters.recomputed_positions, 0);
        }
    }
    CheckedRun {
        result,
        target: target_counters,
        draft: draft_counters,
    }
}

pub(super) fn greedy(max_new_tokens: usize, gamma: GammaPolicy) -> GenerationConfig {
    GenerationConfig {
        sampling: SamplingConfig::greedy(),
        max_new_tokens,
        gamma,
        ..GenerationConfig::default()
    }
}

/// A sharp model over 4 tokens: the next token is always `last + 1` (mod 4).
pub(super) fn counting_lm() -> TableLm {
    counting_lm_except(|_, _| None)
}

/// Like [`counting_lm`], but `override(position, last)` may name another
/// token to predict at some positions (a draft that is sometimes wrong).
pub(super) fn counting_lm_except(
    override_at: impl Fn(usize, u32) -> Option<u32> + Send + Sync + 'static,
) -> TableLm {
    TableLm::new(4, move |position, previous| {
        let last = *previous.last().expect("a prompt");
        let next = override_at(position, last).unwrap_or((last + 1) % 4);
        (0..4u32)
            .map(|t| if t == next { 8.0 } else { 0.0 })
            .collect()
    })
}

/// Token i decodes to the i-th letter.
pub(super) fn letters(tokens: &[u32]) -> String {
    tokens.iter().map(|&t| char::from(b'a' + t as u8)).collect()
}
