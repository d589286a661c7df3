//! The cache plumbing shared by test models whose cache is just their token history.

/// Implements [`CausalLm`](crate::model::CausalLm) for a test model whose next-token
/// logits are a pure function of the tokens before it: its "KV cache" is its token
/// history, so truncating is rolling the history back. The model needs the fields
/// `vocab: usize` and `history: Vec<u32>` and a method
/// `next_logits(&self, history: &[u32]) -> Vec<f32>`.
macro_rules! impl_causal_lm_by_history {
    ($model:ty) => {
        impl $crate::model::CausalLm for $model {
            fn forward(
                &mut self,
                tokens: &[u32],
            ) -> Result<$crate::model::Logits, $crate::model::ModelError> {
                let vocab = self.vocab;
                let mut data = Vec::with_capacity(tokens.len() * vocab);
                for &token in tokens {
                    if token as usize >= vocab {
                        return Err($crate::model::ModelError::msg(format!(
                            "token {token} outside the vocabulary of {vocab}"
                        )));
                    }
                    self.history.push(token);
                    data.extend(self.next_logits(&self.history));
                }
                Ok($crate::model::Logits::new(tokens.len(), vocab, data))
            }

            fn cached_len(&self) -> usize {
                self.history.len()
            }

            fn truncate(&mut self, len: usize) {
                self.history.truncate(len);
            }

            fn reset(&mut self) {
                self.history.clear();
            }

            fn vocab_size(&self) -> usize {
                self.vocab
            }
        }
    };
}
pub(crate) use impl_causal_lm_by_history;
