//! A vocabulary padded wider than the tokenizer's, as in Qwen's configs.

use crate::model::{CausalLm, Logits, ModelError};

/// Wraps a model and appends `extra` logit columns of −∞: ids the model can
/// never produce, as a padded embedding matrix gives.
#[derive(Clone, Debug)]
pub struct PaddedLm<M> {
    inner: M,
    extra: usize,
}

impl<M: CausalLm> PaddedLm<M> {
    pub fn new(inner: M, extra: usize) -> Self {
        Self { inner, extra }
    }
}

impl<M: CausalLm> CausalLm for PaddedLm<M> {
    fn forward(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
        let narrow = self.inner.forward(tokens)?;
        let vocab = narrow.vocab + self.extra;
        let mut data = Vec::with_capacity(narrow.rows * vocab);
        for row in 0..narrow.rows {
            data.extend_from_slice(narrow.row(row));
            data.extend(std::iter::repeat_n(f32::NEG_INFINITY, self.extra));
        }
        Ok(Logits::new(narrow.rows, vocab, data))
    }

    fn cached_len(&self) -> usize {
        self.inner.cached_len()
    }

    fn truncate(&mut self, len: usize) {
        self.inner.truncate(len)
    }

    fn reset(&mut self) {
        self.inner.reset()
    }

    fn vocab_size(&self) -> usize {
        self.inner.vocab_size() + self.extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TableLm;

    #[test]
    fn pads_every_row() {
        let mut lm = PaddedLm::new(TableLm::new(2, |_, _| vec![1.0, 2.0]), 2);
        let logits = lm.forward(&[0, 1]).unwrap();
        assert_eq!(lm.vocab_size(), 4);
        let pad = f32::NEG_INFINITY;
        assert_eq!(logits.row(1), &[1.0, 2.0, pad, pad]);
    }
}
