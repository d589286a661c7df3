//! Drafting with a smaller causal LM.

use crate::drafter::{Draft, DraftedToken, Drafter};
use crate::error::{forward_checked, DecodeError, ModelRole};
use crate::gamma::MODEL_COST_RATIO_PRIOR;
use crate::model::{CausalLm, Logits};
use crate::sampling::{prob_of, DecodeRng, Sampler};
use crate::trace::TokenOrigin;
use crate::verify::DraftDistribution;

/// Drafts by sampling from a draft model's own warped distribution q.
///
/// Cache: between steps the draft's cache is a prefix of the sequence of
/// length at most `len − 1`, so each proposal first feeds whatever the cache
/// lacks (after a fully accepted step that is the last draft and the bonus
/// token) together, in the forward that yields the first draft.
pub struct ModelDrafter<'a> {
    model: &'a mut dyn CausalLm,
    /// The draft's logits, reused from step to step.
    logits: Logits,
    /// A proposal ends after a token drafted with q below this (see
    /// [`GammaPolicy::Confident`](crate::GammaPolicy::Confident)).
    min_prob: f32,
    /// q covers only the first this many ids: the target's logits width. A draft
    /// padded wider could otherwise propose an id the target has no embedding for.
    target_vocab: usize,
}

impl<'a> ModelDrafter<'a> {
    pub fn new(model: &'a mut dyn CausalLm) -> Self {
        Self {
            model,
            logits: Logits::empty(),
            min_prob: 0.0,
            target_vocab: usize::MAX,
        }
    }

    /// Drafts only ids below `target_vocab` (the target's logits width). Any q is
    /// exact as long as the verifier sees the same q, and this one is cut before
    /// warping, so top-k and top-p act on ids the target can judge.
    pub fn with_target_vocab(mut self, target_vocab: usize) -> Self {
        self.target_vocab = target_vocab;
        self
    }

    /// Ends each proposal after the first token whose q is below `min_prob`.
    pub fn with_min_prob(mut self, min_prob: f32) -> Self {
        self.min_prob = min_prob;
        self
    }
}

impl Drafter for ModelDrafter<'_> {
    fn propose(
        &mut self,
        sequence: &[u32],
        max_drafts: usize,
        sampler: &Sampler,
        rng: &mut DecodeRng,
    ) -> Result<Draft, DecodeError> {
        let cached = self.model.cached_len();
        assert!(
            cached < sequence.len(),
            "draft cache ({cached}) must trail the sequence ({})",
            sequence.len()
        );
        let mut draft = Draft::default();
        let mut feed = sequence[cached..].to_vec();
        for _ in 0..max_drafts {
            let logits = forward_checked(
                &mut *self.model,
                ModelRole::Draft,
                &feed,
                1,
                &mut self.logits,
            )?;
            draft.forwards += 1;
            let row = logits.row(logits.rows - 1);
            let q = sampler.distribution(&row[..row.len().min(self.target_vocab)]);
            let token = sampler.choose(&q, rng);
            let unsure = prob_of(&q, token) < self.min_prob;
            draft.tokens.push(DraftedToken {
                token,
                q: DraftDistribution::Sampled(q),
                ngram_context_len: None,
            });
            if unsure {
                break;
            }
            // The last draft is never fed here: if it is accepted it reaches
            // the cache with the next step's first forward, if not it never must.
            feed = vec![token];
        }
        Ok(draft)
    }

    fn after_step(&mut self, sequence: &[u32], _verified: &[Vec<f32>], _first_index: usize) {
        // Cached drafts past the first rejection (or past a stop) are stale;
        // everything before them equals the sequence, so a truncation is all
        // the rollback needed.
        let keep = self.model.cached_len().min(sequence.len() - 1);
        self.model.truncate(keep);
    }

    fn accepted_origin(&self) -> TokenOrigin {
        TokenOrigin::AcceptedDraft
    }

    fn cost_ratio_prior(&self) -> f64 {
        MODEL_COST_RATIO_PRIOR
    }

    fn reset(&mut self) {
        self.model.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::{seeded_rng, SamplingConfig};
    use crate::testing::{CheckedLm, TableLm};

    /// Always predicts `last + 1` (mod 4) with certainty.
    fn counting_lm() -> CheckedLm<TableLm> {
        CheckedLm::new(TableLm::new(4, |_, prev| {
            let next = (prev.last().unwrap() + 1) % 4;
            (0..4u32)
                .map(|t| if t == next { 10.0 } else { 0.0 })
                .collect()
        }))
    }

    #[test]
    fn proposes_by_chaining_its_own_samples() {
        let mut model = counting_lm();
        let probe = model.probe();
        let sampler = Sampler::new(SamplingConfig::greedy());
        let mut rng = seeded_rng(0);
        let mut drafter = ModelDrafter::new(&mut model);
        let draft = drafter.propose(&[0, 1], 3, &sampler, &mut rng).unwrap();
        let tokens: Vec<u32> = draft.tokens.iter().map(|d| d.token).collect();
        assert_eq!(tokens, vec![2, 3, 0]);
        assert_eq!(draft.forwards, 3);
        // Prompt and the first two drafts are cached; the last draft is not.
        assert_eq!(probe.cache(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn stops_after_the_first_unsure_draft() {
        // Sure of `last + 1` except after 2, where 3 gets q ≈ 0.47.
        let mut model = CheckedLm::new(TableLm::new(4, |_, prev| {
            let last = *prev.last().unwrap();
            let next = (last + 1) % 4;
            let sure = if last == 2 { 1.0 } else { 10.0 };
            (0..4u32)
                .map(|t| if t == next { sure } else { 0.0 })
                .collect()
        }));
        let probe = model.probe();
        let sampler = Sampler::new(SamplingConfig::greedy());
        let mut rng = seeded_rng(0);
        let mut drafter = ModelDrafter::new(&mut model).with_min_prob(0.5);
        let draft = drafter.propose(&[0], 6, &sampler, &mut rng).unwrap();
        let tokens: Vec<u32> = draft.tokens.iter().map(|d| d.token).collect();
        // 1 and 2 are sure; 3 is proposed, unsure, and ends the proposal.
        assert_eq!(tokens, vec![1, 2, 3]);
        assert_eq!(draft.forwards, 3);
        assert!(draft.tokens[2].q.q_of(3, 3) < 0.5);
        assert_eq!(probe.cache(), vec![0, 1, 2]);
        // Below every q, the threshold changes nothing.
        drafter.after_step(&[0, 1], &[], 1);
        let mut drafter = ModelDrafter::new(&mut model).with_min_prob(0.2);
        let draft = drafter.propose(&[0, 1], 4, &sampler, &mut rng).unwrap();
        assert_eq!(draft.tokens.len(), 4);
    }

    #[test]
    fn rolls_back_to_the_emitted_prefix_and_catches_up() {
        let mut model = counting_lm();
        let probe = model.probe();
        let sampler = Sampler::new(SamplingConfig::greedy());
        let mut rng = seeded_rng(0);
        let mut drafter = ModelDrafter::new(&mut model);
        drafter.propose(&[0, 1], 3, &sampler, &mut rng).unwrap();
        // Target accepted 2 only and corrected to 1: sequence 0 1 2 1.
        drafter.after_step(&[0, 1, 2, 1], &[], 2);
        assert_eq!(probe.cache(), vec![0, 1, 2]);
        let draft = drafter
            .propose(&[0, 1, 2, 1], 1, &sampler, &mut rng)
            .unwrap();
        assert_eq!(draft.tokens[0].token, 2);
        assert_eq!(probe.cache(), vec![0, 1, 2, 1]);
        assert_eq!(probe.counters().recomputed_positions, 0);
    }
}
