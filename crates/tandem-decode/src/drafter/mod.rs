//! Proposing draft tokens (the seam Hugging Face calls a candidate generator).
//!
//! A drafter only proposes and keeps its own state in step with the emitted
//! sequence; verification (`verify`) and measurement (`metrics`) live elsewhere.

mod model_drafter;
mod ngram;

pub use model_drafter::ModelDrafter;
pub use ngram::{NgramDrafter, NgramStore};

use crate::error::DecodeError;
use crate::sampling::{top_tokens, DecodeRng, Sampler};
use crate::trace::{DraftTrace, TokenOrigin, TokenProb};
use crate::verify::DraftDistribution;

/// How many of q's most likely tokens a trace shows.
pub const TRACE_TOP_K: usize = 5;

/// One proposed token with what the verifier needs to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct DraftedToken {
    pub token: u32,
    pub q: DraftDistribution,
    /// Length of the n-gram context that proposed the token (NASD only).
    pub ngram_context_len: Option<usize>,
}

impl DraftedToken {
    pub fn trace(&self) -> DraftTrace {
        let (q, q_top) = match &self.q {
            DraftDistribution::Sampled(q) => (
                self.q.q_of(self.token, self.token),
                top_tokens(q, TRACE_TOP_K),
            ),
            DraftDistribution::PointMass => (
                1.0,
                vec![TokenProb {
                    token: self.token,
                    prob: 1.0,
                }],
            ),
        };
        DraftTrace {
            token: self.token,
            q,
            q_top,
            ngram_context_len: self.ngram_context_len,
        }
    }
}

/// The tokens proposed for one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Draft {
    pub tokens: Vec<DraftedToken>,
    /// Draft-model forward passes spent (0 for n-gram drafts).
    pub forwards: usize,
}

pub trait Drafter {
    /// Proposes up to `max_drafts` tokens to follow `sequence` (the prompt and
    /// everything emitted so far). Fewer, even none, is allowed.
    fn propose(
        &mut self,
        sequence: &[u32],
        max_drafts: usize,
        sampler: &Sampler,
        rng: &mut DecodeRng,
    ) -> Result<Draft, DecodeError>;

    /// Called after every step, once `sequence` holds the step's emissions.
    /// `verified[i]` is the target's warped distribution at the position that
    /// predicts `sequence[first_index + i]` (only positions that were consulted).
    fn after_step(&mut self, sequence: &[u32], verified: &[Vec<f32>], first_index: usize);

    /// Origin recorded for this drafter's accepted tokens.
    fn accepted_origin(&self) -> TokenOrigin;

    /// Draft/target cost ratio to assume before one is measured.
    fn cost_ratio_prior(&self) -> f64;

    /// Forgets everything (a new generation).
    fn reset(&mut self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_show_q_of_the_token_and_top_q() {
        let sampled = DraftedToken {
            token: 2,
            q: DraftDistribution::Sampled(vec![0.1, 0.2, 0.6, 0.1]),
            ngram_context_len: None,
        };
        let trace = sampled.trace();
        assert_eq!(trace.q, 0.6);
        assert_eq!(trace.q_top.len(), 4);
        assert_eq!(trace.q_top[0].token, 2);

        let ngram = DraftedToken {
            token: 7,
            q: DraftDistribution::PointMass,
            ngram_context_len: Some(3),
        };
        let trace = ngram.trace();
        assert_eq!((trace.q, trace.ngram_context_len), (1.0, Some(3)));
        assert_eq!(
            trace.q_top,
            vec![TokenProb {
                token: 7,
                prob: 1.0
            }]
        );
    }
}
