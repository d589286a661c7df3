//! N-gram drafting for NASD (n-gram assisted speculative decoding): drafts
//! come from continuations already seen in the prompt and the output, so no
//! draft model is needed and drafting costs next to nothing.

use std::collections::HashMap;

use crate::drafter::{Draft, DraftedToken, Drafter};
use crate::error::DecodeError;
use crate::sampling::{top_tokens, DecodeRng, Sampler};
use crate::trace::TokenOrigin;
use crate::verify::DraftDistribution;

/// One continuation of a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Continuation {
    token: u32,
    count: u32,
    /// Store clock at the last observation; breaks count ties (most recent wins).
    last_seen: u64,
}

impl Continuation {
    fn outranks(&self, other: &Continuation) -> bool {
        (self.count, self.last_seen) > (other.count, other.last_seen)
    }
}

#[derive(Clone, Debug, Default)]
struct ContextStats {
    continuations: Vec<Continuation>,
    /// Index of the best continuation, kept current on every observation.
    best: usize,
}

/// Counts of which token followed which context, for contexts of length
/// `1..=max_context`.
#[derive(Clone, Debug, Default)]
pub struct NgramStore {
    max_context: usize,
    contexts: HashMap<Box<[u32]>, ContextStats>,
    clock: u64,
}

impl NgramStore {
    pub fn new(max_context: usize) -> Self {
        Self {
            max_context,
            contexts: HashMap::new(),
            clock: 0,
        }
    }

    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// Records that `next` followed exactly `context`.
    pub fn observe(&mut self, context: &[u32], next: u32) {
        self.clock += 1;
        let stats = match self.contexts.get_mut(context) {
            Some(stats) => stats,
            None => self.contexts.entry(context.into()).or_default(),
        };
        let at = match stats.continuations.iter().position(|c| c.token == next) {
            Some(at) => {
                let c = &mut stats.continuations[at];
                c.count += 1;
                c.last_seen = self.clock;
                at
            }
            None => {
                stats.continuations.push(Continuation {
                    token: next,
                    count: 1,
                    last_seen: self.clock,
                });
                stats.continuations.len() - 1
            }
        };
        // Counts only grow and the clock only advances, so the touched
        // continuation is the only one that can overtake the current best.
        if at != stats.best && stats.continuations[at].outranks(&stats.continuations[stats.best]) {
            stats.best = at;
        }
    }

    /// Records `next` after every context of length `1..=max_context` that
    /// ends at the end of `history`.
    pub fn observe_all_contexts(&mut self, history: &[u32], next: u32) {
        for len in 1..=self.max_context.min(history.len()) {
            self.observe(&history[history.len() - len..], next);
        }
    }

    /// The most frequent continuation (most recent on ties) of the longest
    /// known context that ends `history`, with that context's length.
    pub fn lookup(&self, history: &[u32]) -> Option<(u32, usize)> {
        (1..=self.max_context.min(history.len()))
            .rev()
            .find_map(|len| {
                let stats = self.contexts.get(&history[history.len() - len..])?;
                Some((stats.continuations[stats.best].token, len))
            })
    }

    /// How often `next` was recorded after exactly `context`.
    pub fn count(&self, context: &[u32], next: u32) -> u32 {
        self.contexts
            .get(context)
            .and_then(|stats| stats.continuations.iter().find(|c| c.token == next))
            .map_or(0, |c| c.count)
    }

    /// Number of distinct contexts stored.
    pub fn len(&self) -> usize {
        self.contexts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contexts.is_empty()
    }
}

/// Drafts from an [`NgramStore`] built from the prompt and every emitted token.
///
/// Its drafts are a deterministic function of the history, so q is a point
/// mass: the sampling rule accepts d with probability p(d) and on rejection
/// draws from p without d (renormalized), which keeps the target's
/// distribution exactly: d is emitted with probability p(d), any other x with
/// (1 − p(d)) · p(x) / (1 − p(d)) = p(x). The reference implementation
/// instead draws afresh from p after a rejection, which can return d again,
/// so d comes out with probability p + (1 − p)·p: over-weighted.
#[derive(Clone, Debug)]
pub struct NgramDrafter {
    store: NgramStore,
    filler_top_k: Option<usize>,
    /// Sequence tokens already in the store.
    learned_len: usize,
}

impl NgramDrafter {
    /// `ngram_n` ≥ 2 is the n-gram order: contexts have `1..=ngram_n − 1`
    /// tokens. With `filler_top_k`, the target's k most likely tokens at every
    /// verified position are also learned as continuations of that position's
    /// contexts, so alternatives the target rated highly can be drafted later.
    pub fn new(ngram_n: usize, filler_top_k: Option<usize>) -> Self {
        assert!(ngram_n >= 2, "an n-gram drafter needs n >= 2");
        Self {
            store: NgramStore::new(ngram_n - 1),
            filler_top_k,
            learned_len: 0,
        }
    }

    pub fn store(&self) -> &NgramStore {
        &self.store
    }

    /// Adds the tokens of `sequence` not seen yet (the sequence only grows).
    fn learn(&mut self, sequence: &[u32]) {
        for t in self.learned_len.max(1)..sequence.len() {
            self.store.observe_all_contexts(&sequence[..t], sequence[t]);
        }
        self.learned_len = self.learned_len.max(sequence.len());
    }
}

impl Drafter for NgramDrafter {
    fn propose(
        &mut self,
        sequence: &[u32],
        max_drafts: usize,
        _sampler: &Sampler,
        _rng: &mut DecodeRng,
    ) -> Result<Draft, DecodeError> {
        self.learn(sequence);
        let keep = self.store.max_context().min(sequence.len());
        let mut history = sequence[sequence.len() - keep..].to_vec();
        let mut draft = Draft::default();
        for _ in 0..max_drafts {
            // An unknown context ends the draft early; the step then verifies
            // what there is (possibly nothing: a plain target step).
            let Some((token, context_len)) = self.store.lookup(&history) else {
                break;
            };
            draft.tokens.push(DraftedToken {
                token,
                q: DraftDistribution::PointMass,
                ngram_context_len: Some(context_len),
            });
            // Chain: the next lookup sees the proposal as part of the context.
            history.push(token);
        }
        Ok(draft)
    }

    fn after_step(&mut self, sequence: &[u32], verified: &[Vec<f32>], first_index: usize) {
        let Some(k) = self.filler_top_k else {
            return;
        };
        // Filler is learned before the step's emitted tokens (those are
        // learned at the next proposal), so at equal counts an emitted
        // continuation is the more recent and wins.
        for (i, p) in verified.iter().enumerate() {
            let index = first_index + i;
            if index > sequence.len() {
                break; // the position's context was cut off by a stop
            }
            for candidate in top_tokens(p, k) {
                self.store
                    .observe_all_contexts(&sequence[..index], candidate.token);
            }
        }
    }

    fn accepted_origin(&self) -> TokenOrigin {
        TokenOrigin::NgramHit
    }

    fn cost_ratio_prior(&self) -> f64 {
        0.0
    }

    fn reset(&mut self) {
        self.store = NgramStore::new(self.store.max_context());
        self.learned_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::{seeded_rng, SamplingConfig};

    fn propose(drafter: &mut NgramDrafter, sequence: &[u32], max: usize) -> Vec<(u32, usize)> {
        let sampler = Sampler::new(SamplingConfig::greedy());
        drafter
            .propose(sequence, max, &sampler, &mut seeded_rng(0))
            .unwrap()
            .tokens
            .iter()
            .map(|d| (d.token, d.ngram_context_len.unwrap()))
            .collect()
    }

    #[test]
    fn longest_context_wins() {
        let mut store = NgramStore::new(2);
        // "1 → 5" once, but "2 1 → 7" is the longer match.
        store.observe_all_contexts(&[1], 5);
        store.observe_all_contexts(&[2, 1], 7);
        store.observe_all_contexts(&[3, 1], 5);
        assert_eq!(store.lookup(&[2, 1]), Some((7, 2)));
        assert_eq!(store.lookup(&[4, 1]), Some((5, 1)));
        assert_eq!(store.lookup(&[4, 9]), None);
    }

    #[test]
    fn most_frequent_then_most_recent() {
        let mut store = NgramStore::new(1);
        store.observe(&[1], 5);
        store.observe(&[1], 6);
        store.observe(&[1], 6);
        assert_eq!(store.lookup(&[1]), Some((6, 1)));
        store.observe(&[1], 5);
        // 2 each: 5 is the more recent.
        assert_eq!(store.lookup(&[1]), Some((5, 1)));
        store.observe(&[1], 6);
        assert_eq!(store.lookup(&[1]), Some((6, 1)));
    }

    #[test]
    fn drafts_chain_and_stop_at_unknown_context() {
        let mut drafter = NgramDrafter::new(3, None);
        // Prompt 1 2 3 4 1 2: context (1 2) → 3, then (2 3) → 4, (3 4) → 1,
        // (4 1) → 2, (1 2) → 3 ...
        let drafts = propose(&mut drafter, &[1, 2, 3, 4, 1, 2], 6);
        assert_eq!(drafts, vec![(3, 2), (4, 2), (1, 2), (2, 2), (3, 2), (4, 2)]);
        // A context never seen, even at length 1, drafts nothing.
        assert_eq!(propose(&mut drafter, &[1, 2, 3, 4, 1, 2, 9], 4), vec![]);
    }

    #[test]
    fn falls_back_to_shorter_contexts_while_chaining() {
        let mut drafter = NgramDrafter::new(3, None);
        // Prompt 1 2 3 5 1: (5 1) is unknown but (1) → 2 is known; then the
        // pairs (1 2) → 3, (2 3) → 5, (3 5) → 1; then (5 1) is unknown again.
        assert_eq!(
            propose(&mut drafter, &[1, 2, 3, 5, 1], 5),
            vec![(2, 1), (3, 2), (5, 2), (1, 2), (2, 1)]
        );
    }

    #[test]
    fn emitted_tokens_are_learned() {
        let mut drafter = NgramDrafter::new(2, None);
        assert_eq!(propose(&mut drafter, &[1, 2], 1), vec![]);
        // After "2 → 8" was emitted, (2) is known.
        assert_eq!(propose(&mut drafter, &[1, 2, 8, 2], 1), vec![(8, 1)]);
    }

    #[test]
    fn filler_learns_the_targets_top_k() {
        let mut drafter = NgramDrafter::new(3, Some(2));
        propose(&mut drafter, &[1, 2], 1);
        // The position predicting index 2 (contexts "2" and "1 2") rated 6
        // and 7 highest, but 5 was sampled.
        let p = vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.5, 0.4];
        drafter.after_step(&[1, 2, 5], &[p], 2);
        let store = drafter.store();
        for context in [&[2][..], &[1, 2][..]] {
            assert_eq!(store.count(context, 6), 1);
            assert_eq!(store.count(context, 7), 1);
            assert_eq!(store.count(context, 5), 0);
        }
        // The emitted 5 is learned at the next proposal and, being the most
        // recent at an equal count, is what gets drafted.
        assert_eq!(propose(&mut drafter, &[1, 2, 5, 1, 2], 1), vec![(5, 2)]);
        assert_eq!(drafter.store().count(&[1, 2], 5), 1);
    }

    #[test]
    fn reset_forgets() {
        let mut drafter = NgramDrafter::new(2, None);
        propose(&mut drafter, &[1, 2, 1], 1);
        assert!(!drafter.store().is_empty());
        drafter.reset();
        assert!(drafter.store().is_empty());
        assert_eq!(propose(&mut drafter, &[1], 1), vec![]);
    }
}
