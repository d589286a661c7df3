//! What a generation reports while it runs: one event per step and a summary
//! at the end. These types are the JSONL log format, so they are plain data
//! (serde both ways) and carry no references into the models.

use serde::{Deserialize, Serialize};

use crate::gamma::{GammaChoice, GammaPolicy};
use crate::sampling::SamplingConfig;

/// Where an emitted token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenOrigin {
    /// Sampled from the target in a step without drafts (plain decoding).
    Target,
    /// A draft model's token that the target accepted.
    AcceptedDraft,
    /// Drawn from the target (or residual) distribution after a rejection.
    Corrected,
    /// Drawn from the target after every draft of the step was accepted.
    Bonus,
    /// An n-gram draft that the target accepted (NASD).
    NgramHit,
}

/// A token with its probability.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenProb {
    pub token: u32,
    pub prob: f32,
}

/// One drafted token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DraftTrace {
    pub token: u32,
    /// q(token): the draft's warped probability; 1 for a deterministic n-gram draft.
    pub q: f32,
    /// The five most likely tokens under q.
    pub q_top: Vec<TokenProb>,
    /// NASD only: length of the n-gram context that proposed this token.
    pub ngram_context_len: Option<usize>,
}

/// The target's view of one position it was consulted on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyTrace {
    /// Index in the whole sequence (prompt included) of the token this position predicts.
    pub index: usize,
    /// p(draft) when this position judged a draft; `None` at the bonus or plain position.
    pub p_draft: Option<f32>,
    /// The five most likely tokens under p (warped; plain softmax when greedy).
    pub p_top: Vec<TokenProb>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmittedToken {
    pub token: u32,
    pub origin: TokenOrigin,
}

/// One draft-and-verify round (or one plain target step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTrace {
    /// 0-based step number.
    pub step: usize,
    /// γ used and the rule that set it.
    pub gamma: GammaChoice,
    /// Every proposed draft (fewer than γ when an n-gram lookup ran dry).
    pub drafts: Vec<DraftTrace>,
    /// The positions the target was consulted on, in order: one per judged
    /// draft plus the one that gave the corrected, bonus or plain token.
    pub verified: Vec<VerifyTrace>,
    /// Drafts ruled on; fewer than `drafts.len()` after a rejection or a stop.
    pub judged: usize,
    pub accepted: usize,
    /// The corrected, bonus or plain target token as verification produced
    /// it; `None` when a stop (EOS, budget) ended the accepted run before it.
    pub final_token: Option<EmittedToken>,
    /// Tokens this step added to the output, after any stop cut.
    pub emitted: Vec<EmittedToken>,
    /// Tokens of earlier steps removed from the output because a stop string
    /// found in this step began in them.
    pub retracted: usize,
    pub draft_ms: f64,
    pub verify_ms: f64,
    pub draft_forwards: usize,
    pub target_forwards: usize,
}

/// The strategy, as data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModeKind {
    Plain,
    Speculative,
    Nasd {
        ngram_n: usize,
        filler_top_k: Option<usize>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StopReason {
    /// An end-of-sequence token was emitted (and kept as the last token).
    Eos {
        token: u32,
    },
    MaxNewTokens,
    /// The decoded output contained `stop`; output was cut before it.
    StopString {
        stop: String,
    },
    Cancelled,
}

/// Acceptance at one draft position (0 = the first draft of a step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionAcceptance {
    /// Drafts at this position that were ruled on.
    pub drafted: usize,
    pub accepted: usize,
    /// accepted / drafted.
    pub rate: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationSummary {
    pub mode: ModeKind,
    pub prompt_len: usize,
    pub new_tokens: usize,
    pub steps: usize,
    /// Drafts ruled on by the target (drafts cut off by a stop are left out).
    pub drafted: usize,
    pub accepted: usize,
    /// α = accepted / drafted; `None` when nothing was drafted.
    pub alpha: Option<f64>,
    /// τ = new tokens per target forward.
    pub tau: f64,
    pub acceptance_by_position: Vec<PositionAcceptance>,
    pub target_forwards: usize,
    pub draft_forwards: usize,
    pub tokens_per_second: f64,
    pub wall_ms: f64,
    /// From the start of `generate` to the end of the first step that emitted.
    pub time_to_first_token_ms: Option<f64>,
    pub draft_ms: f64,
    pub verify_ms: f64,
    /// Time inside the models' forward passes, target and draft. The rest of `wall_ms`
    /// is the decoder's own work: sampling, verification, traces and events.
    #[serde(default)]
    pub model_ms: f64,
    pub cancelled: bool,
    pub stop_reason: StopReason,
}

/// What `generate` reports to its observer, in this order: `Started`, one
/// `Step` per step, `Finished`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum GenerationEvent {
    Started {
        mode: ModeKind,
        prompt_len: usize,
        max_new_tokens: usize,
        sampling: SamplingConfig,
        gamma_policy: Option<GammaPolicy>,
    },
    Step(StepTrace),
    Finished(GenerationSummary),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gamma::GammaRule;

    #[test]
    fn events_round_trip_through_json() {
        let step = StepTrace {
            step: 3,
            gamma: GammaChoice {
                gamma: 2,
                policy_gamma: 4,
                rule: GammaRule::Budget,
                alpha_estimate: Some(0.5),
                cost_ratio: None,
            },
            drafts: vec![DraftTrace {
                token: 5,
                q: 1.0,
                q_top: vec![TokenProb {
                    token: 5,
                    prob: 1.0,
                }],
                ngram_context_len: Some(2),
            }],
            verified: vec![VerifyTrace {
                index: 9,
                p_draft: Some(0.25),
                p_top: vec![],
            }],
            judged: 1,
            accepted: 0,
            final_token: Some(EmittedToken {
                token: 1,
                origin: TokenOrigin::Corrected,
            }),
            emitted: vec![EmittedToken {
                token: 1,
                origin: TokenOrigin::Corrected,
            }],
            retracted: 0,
            draft_ms: 0.5,
            verify_ms: 2.0,
            draft_forwards: 0,
            target_forwards: 1,
        };
        let event = GenerationEvent::Step(step);
        let json = serde_json::to_string(&event).unwrap();
        let back: GenerationEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);

        let reason = StopReason::StopString {
            stop: "\n\n".into(),
        };
        let json = serde_json::to_string(&reason).unwrap();
        assert_eq!(serde_json::from_str::<StopReason>(&json).unwrap(), reason);
    }
}
