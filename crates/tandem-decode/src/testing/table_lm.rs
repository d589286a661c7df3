//! A model whose next-token logits are written by hand.

use std::fmt;
use std::sync::Arc;

use super::history_lm::impl_causal_lm_by_history;

type NextLogits = dyn Fn(usize, &[u32]) -> Vec<f32> + Send + Sync;

/// Next-token logits given by a function of (position of the token being
/// predicted, all tokens before it). The cache is simply the token history.
#[derive(Clone)]
pub struct TableLm {
    vocab: usize,
    next: Arc<NextLogits>,
    history: Vec<u32>,
}

impl TableLm {
    /// `next(position, previous)` returns `vocab` logits; `position ==
    /// previous.len()`.
    pub fn new(
        vocab: usize,
        next: impl Fn(usize, &[u32]) -> Vec<f32> + Send + Sync + 'static,
    ) -> Self {
        Self {
            vocab,
            next: Arc::new(next),
            history: Vec::new(),
        }
    }

    /// Like [`TableLm::new`] but written as probabilities (logits = ln p, so
    /// a probability of 0 is a logit of −∞).
    pub fn from_probs(
        vocab: usize,
        next: impl Fn(usize, &[u32]) -> Vec<f32> + Send + Sync + 'static,
    ) -> Self {
        Self::new(vocab, move |position, previous| {
            next(position, previous).iter().map(|p| p.ln()).collect()
        })
    }

    /// The logits that follow `history`, without touching the cache.
    pub fn next_logits(&self, history: &[u32]) -> Vec<f32> {
        let logits = (self.next)(history.len(), history);
        assert_eq!(logits.len(), self.vocab, "table row has the wrong width");
        logits
    }
}

impl fmt::Debug for TableLm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableLm")
            .field("vocab", &self.vocab)
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

impl_causal_lm_by_history!(TableLm);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CausalLm;

    #[test]
    fn rows_follow_the_history() {
        // Logit of token t is t·position + last token.
        let mut lm = TableLm::new(3, |position, previous| {
            let last = *previous.last().unwrap() as f32;
            (0..3).map(|t| (t * position) as f32 + last).collect()
        });
        let logits = lm.forward(&[2, 1]).unwrap();
        assert_eq!(logits.row(0), &[2.0, 3.0, 4.0]);
        assert_eq!(logits.row(1), &[1.0, 3.0, 5.0]);
        assert_eq!(lm.cached_len(), 2);
        lm.truncate(1);
        assert_eq!(lm.forward(&[0]).unwrap().row(0), &[0.0, 2.0, 4.0]);
        assert!(lm.forward(&[3]).is_err());
    }

    #[test]
    fn probabilities_become_log_logits() {
        let lm = TableLm::from_probs(2, |_, _| vec![1.0, 0.0]);
        assert_eq!(lm.next_logits(&[0]), vec![0.0, f32::NEG_INFINITY]);
    }
}
