//! Hand-made run records for unit tests: every field is known, so arithmetic on them
//! can be checked by hand, and no model has to run.

use std::path::PathBuf;

use tandem_decode::metrics::{RunEnd, RunMetrics};
use tandem_decode::{
    DraftTrace, EmittedToken, GammaChoice, GammaPolicy, GammaRule, ModeKind, SamplingConfig,
    StepTrace, StopReason, TokenOrigin, TokenProb, VerifyTrace,
};

use crate::provenance::{ModelProvenance, WeightsFingerprint};
use crate::record::{LoggedStep, RunHeader, RunOutcome, RunRecord, LOG_SCHEMA_VERSION};
use crate::run::RunMode;
use crate::text::TextPiece;

pub fn provenance(name: &str) -> ModelProvenance {
    ModelProvenance {
        name: name.to_string(),
        path: PathBuf::from(format!("/models/{name}")),
        repo_id: Some(format!("org/{name}")),
        revision: Some("0123456789abcdef".into()),
        config_sha256: Some("c0".repeat(32)),
        tokenizer_sha256: Some("70".repeat(32)),
        weights: vec![WeightsFingerprint {
            file: "model.safetensors".into(),
            size_bytes: 1234,
            header_sha256: "ee".repeat(32),
        }],
        precision: "f32".into(),
        layer_limit: None,
        vocab_limit: None,
        num_layers: 2,
        vocab_size: 384,
        gguf: None,
    }
}

/// One step: `proposed` drafts, `judged` of them ruled on and `accepted` accepted, then
/// the target's token.
fn step(
    index: usize,
    mode: &RunMode,
    (proposed, judged, accepted): (usize, usize, usize),
    first_token: u32,
) -> LoggedStep {
    let (draft_origin, final_origin) = match mode {
        RunMode::Plain => (TokenOrigin::Target, TokenOrigin::Target),
        RunMode::Speculative => (
            TokenOrigin::AcceptedDraft,
            if accepted == judged {
                TokenOrigin::Bonus
            } else {
                TokenOrigin::Corrected
            },
        ),
        RunMode::Nasd { .. } => (
            TokenOrigin::NgramHit,
            if accepted == judged {
                TokenOrigin::Bonus
            } else {
                TokenOrigin::Corrected
            },
        ),
    };
    let mut emitted: Vec<EmittedToken> = (0..accepted)
        .map(|i| EmittedToken {
            token: first_token + i as u32,
            origin: draft_origin,
        })
        .collect();
    let final_token = EmittedToken {
        token: first_token + accepted as u32,
        origin: final_origin,
    };
    emitted.push(final_token);
    let gamma = if proposed == 0 {
        GammaChoice::plain()
    } else {
        GammaChoice {
            gamma: proposed,
            policy_gamma: proposed,
            rule: GammaRule::Fixed,
            alpha_estimate: None,
            cost_ratio: None,
        }
    };
    let pieces = emitted
        .iter()
        .map(|t| TextPiece {
            text: format!(" w{}", t.token),
            origin: t.origin,
        })
        .collect();
    LoggedStep {
        trace: StepTrace {
            step: index,
            gamma,
            drafts: (0..proposed)
                .map(|i| DraftTrace {
                    token: first_token + i as u32,
                    q: 0.5,
                    q_top: vec![TokenProb {
                        token: first_token + i as u32,
                        prob: 0.5,
                    }],
                    ngram_context_len: matches!(mode, RunMode::Nasd { .. }).then_some(2),
                })
                .collect(),
            verified: (0..=accepted.min(judged))
                .map(|i| VerifyTrace {
                    index: 10 + i,
                    p_draft: (i < judged).then_some(0.75),
                    p_top: vec![TokenProb {
                        token: 7,
                        prob: 0.25,
                    }],
                })
                .collect(),
            judged,
            accepted,
            final_token: Some(final_token),
            emitted,
            retracted: 0,
            draft_ms: if proposed > 0 { 1.0 } else { 0.0 },
            verify_ms: 4.0,
            draft_forwards: if matches!(mode, RunMode::Speculative) {
                proposed
            } else {
                0
            },
            target_forwards: 1,
        },
        pieces,
    }
}

/// A finished run: plain runs emit one token a step; drafting runs follow the pattern
/// (γ=3) all accepted, first rejected, two accepted — 4 + 1 + 3 = 8 tokens per cycle.
/// Every step takes 4 ms of verifying, and 1 ms of drafting when it drafts.
pub fn fake_record(run_id: &str, mode: RunMode, cycles: usize, wall_ms: f64) -> RunRecord {
    let pattern: &[(usize, usize, usize)] = match mode {
        RunMode::Plain => &[(0, 0, 0); 8],
        _ => &[(3, 3, 3), (3, 1, 0), (3, 3, 2)],
    };
    let mut steps = Vec::new();
    let mut next_token = 0;
    for _ in 0..cycles {
        for &shape in pattern {
            steps.push(step(steps.len(), &mode, shape, next_token));
            next_token += shape.2 as u32 + 1;
        }
    }
    let mut metrics = RunMetrics::default();
    steps.iter().for_each(|s| metrics.record_step(&s.trace));
    let kind = match &mode {
        RunMode::Plain => ModeKind::Plain,
        RunMode::Speculative => ModeKind::Speculative,
        RunMode::Nasd {
            ngram_n,
            filler_top_k,
        } => ModeKind::Nasd {
            ngram_n: *ngram_n,
            filler_top_k: *filler_top_k,
        },
    };
    let summary = metrics.summary(RunEnd {
        mode: kind,
        prompt_len: 3,
        wall_ms,
        time_to_first_token_ms: Some(wall_ms / 10.0),
        model_ms: wall_ms * 0.9,
        cancelled: false,
        stop_reason: StopReason::MaxNewTokens,
    });
    let tokens: Vec<u32> = steps
        .iter()
        .flat_map(|s| s.trace.emitted.iter().map(|t| t.token))
        .collect();
    let origins = steps
        .iter()
        .flat_map(|s| s.trace.emitted.iter().map(|t| t.origin))
        .collect();
    let text = steps
        .iter()
        .flat_map(|s| &s.pieces)
        .map(|p| p.text.as_str())
        .collect();
    let uses_draft = matches!(mode, RunMode::Speculative);
    RunRecord {
        header: RunHeader {
            schema_version: LOG_SCHEMA_VERSION,
            tandem_version: "0.1.0".into(),
            run_id: run_id.to_string(),
            comparison_id: Some("cmp-1".into()),
            suite_item: None,
            created_at: "2026-05-09T08:53:00.123Z".into(),
            gamma_policy: (!matches!(mode, RunMode::Plain)).then_some(GammaPolicy::Fixed(3)),
            gamma_cost_ratio: None,
            mode,
            target: provenance("target"),
            draft: uses_draft.then(|| provenance("draft")),
            backend: "cpu".into(),
            device: "test cpu (2 threads)".into(),
            sampling: SamplingConfig::greedy(),
            max_new_tokens: tokens.len(),
            ignore_eos: true,
            chat: false,
            enable_thinking: None,
            stop_strings: vec![],
            prompt: "Say <b>\"hi\"</b> & go".into(),
            prompt_text: "Say <b>\"hi\"</b> & go".into(),
            prompt_tokens: vec![1, 2, 3],
        },
        steps,
        outcome: RunOutcome {
            summary,
            text,
            tokens,
            origins,
            final_pieces: vec![],
        },
    }
}

/// A small speculative or plain record with every kind of field filled.
pub fn sample_record(run_id: &str, mode: RunMode) -> RunRecord {
    fake_record(run_id, mode, 1, 120.0)
}
