//! A seeded random n-gram model: a stand-in for a real LM in exactness tests.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::history_lm::impl_causal_lm_by_history;

/// Logits from a random table indexed by the last `context` tokens (missing
/// ones at the start count as token 0), plus a random term that cycles with
/// the position so that greedy output is not trivially periodic.
///
/// # Shapes
/// `table`: `vocab^context` rows of `vocab` logits; `position_table`:
/// `period` rows of `vocab` logits.
#[derive(Clone, Debug)]
pub struct RandomNgramLm {
    vocab: usize,
    context: usize,
    period: usize,
    table: Vec<f32>,
    position_table: Vec<f32>,
    history: Vec<u32>,
}

impl RandomNgramLm {
    /// Logits are uniform in `±sharpness` (sharp enough for confident
    /// argmaxes at 4 or so); the position term is a quarter of that.
    pub fn new(seed: u64, vocab: usize, context: usize, sharpness: f32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let period = 7;
        let rows = vocab.pow(context as u32);
        let mut uniform = |n: usize, scale: f32| -> Vec<f32> {
            (0..n).map(|_| rng.random_range(-scale..scale)).collect()
        };
        let table = uniform(rows * vocab, sharpness);
        let position_table = uniform(period * vocab, sharpness / 4.0);
        Self {
            vocab,
            context,
            period,
            table,
            position_table,
            history: Vec::new(),
        }
    }

    /// A weaker copy, for use as a draft: every logit moved by up to `±scale`.
    pub fn with_noise(&self, seed: u64, scale: f32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut noisy = self.clone();
        noisy.history.clear();
        for v in noisy
            .table
            .iter_mut()
            .chain(noisy.position_table.iter_mut())
        {
            *v += rng.random_range(-scale..scale);
        }
        noisy
    }

    /// The logits that follow `history`, without touching the cache.
    pub fn next_logits(&self, history: &[u32]) -> Vec<f32> {
        let row = (0..self.context).fold(0, |row, back| {
            let token = history
                .len()
                .checked_sub(back + 1)
                .map_or(0, |i| history[i] as usize);
            row * self.vocab + token
        });
        let phase = history.len() % self.period;
        let table = &self.table[row * self.vocab..(row + 1) * self.vocab];
        let position = &self.position_table[phase * self.vocab..(phase + 1) * self.vocab];
        table.iter().zip(position).map(|(a, b)| a + b).collect()
    }
}

impl_causal_lm_by_history!(RandomNgramLm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_model() {
        let a = RandomNgramLm::new(3, 8, 2, 4.0);
        let b = RandomNgramLm::new(3, 8, 2, 4.0);
        let c = RandomNgramLm::new(4, 8, 2, 4.0);
        assert_eq!(a.next_logits(&[1, 2]), b.next_logits(&[1, 2]));
        assert_ne!(a.next_logits(&[1, 2]), c.next_logits(&[1, 2]));
    }

    #[test]
    fn depends_on_the_last_context_tokens_and_position() {
        let lm = RandomNgramLm::new(1, 8, 2, 4.0);
        // Same last two tokens and same phase (length mod 7): same logits.
        assert_eq!(lm.next_logits(&[5, 1, 2]), lm.next_logits(&[6, 1, 2]));
        assert_ne!(lm.next_logits(&[1, 2]), lm.next_logits(&[1, 3]));
        assert_ne!(lm.next_logits(&[0, 1, 2]), lm.next_logits(&[1, 2]));
    }

    #[test]
    fn noise_changes_logits_a_little() {
        let lm = RandomNgramLm::new(1, 8, 2, 4.0);
        let noisy = lm.with_noise(9, 1.0);
        let (a, b) = (lm.next_logits(&[3]), noisy.next_logits(&[3]));
        assert_ne!(a, b);
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 2.0));
    }
}
