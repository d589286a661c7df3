//! The seam between decoding and a concrete model: a causal LM with a KV cache.
//!
//! The decoding loops only ever need four things from a model: feed tokens
//! after what is cached, read the cache length, roll the cache back, and know
//! the logit width. Keeping the trait this small lets the burn model (another
//! crate) and the hand-written test models (`testing`) be used interchangeably.

use std::error::Error;
use std::fmt;

/// A causal language model with a KV cache.
pub trait CausalLm {
    /// Feeds `tokens` at positions `self.cached_len()..` and returns logits for
    /// each of them: a [`Logits`] with `rows == tokens.len()`, where row `i`
    /// scores the token that follows `tokens[i]`.
    fn forward(&mut self, tokens: &[u32]) -> Result<Logits, ModelError>;

    /// Like [`forward`](Self::forward) but returns only the last `rows` rows
    /// (`1 <= rows <= tokens.len()`). The decoding loops never read earlier
    /// rows, so a model can skip its LM head there: for a prompt prefill that
    /// is most of the head's work.
    fn forward_last(&mut self, tokens: &[u32], rows: usize) -> Result<Logits, ModelError> {
        let logits = self.forward(tokens)?;
        let skip = logits.rows.saturating_sub(rows);
        Ok(Logits::new(
            logits.rows - skip,
            logits.vocab,
            logits.data[skip * logits.vocab..].to_vec(),
        ))
    }

    /// Like [`forward_last`](Self::forward_last), into `out`, whose buffer a model may
    /// reuse: a verify pass's logits are megabytes, and allocating them afresh every
    /// step costs page faults and zeroing.
    fn forward_last_into(
        &mut self,
        tokens: &[u32],
        rows: usize,
        out: &mut Logits,
    ) -> Result<(), ModelError> {
        *out = self.forward_last(tokens, rows)?;
        Ok(())
    }

    /// Number of tokens whose keys and values are cached.
    fn cached_len(&self) -> usize;

    /// Rolls the cache back to `len` tokens (`len <= cached_len()`), O(1).
    fn truncate(&mut self, len: usize);

    /// Empties the cache.
    fn reset(&mut self);

    /// Width of a logits row.
    fn vocab_size(&self) -> usize;
}

/// Lets a boxed or borrowed model stand wherever a model is expected.
impl<M: CausalLm + ?Sized> CausalLm for Box<M> {
    fn forward(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
        (**self).forward(tokens)
    }
    fn forward_last(&mut self, tokens: &[u32], rows: usize) -> Result<Logits, ModelError> {
        (**self).forward_last(tokens, rows)
    }
    fn forward_last_into(
        &mut self,
        tokens: &[u32],
        rows: usize,
        out: &mut Logits,
    ) -> Result<(), ModelError> {
        (**self).forward_last_into(tokens, rows, out)
    }
    fn cached_len(&self) -> usize {
        (**self).cached_len()
    }
    fn truncate(&mut self, len: usize) {
        (**self).truncate(len)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }
}

impl<M: CausalLm + ?Sized> CausalLm for &mut M {
    fn forward(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
        (**self).forward(tokens)
    }
    fn forward_last(&mut self, tokens: &[u32], rows: usize) -> Result<Logits, ModelError> {
        (**self).forward_last(tokens, rows)
    }
    fn forward_last_into(
        &mut self,
        tokens: &[u32],
        rows: usize,
        out: &mut Logits,
    ) -> Result<(), ModelError> {
        (**self).forward_last_into(tokens, rows, out)
    }
    fn cached_len(&self) -> usize {
        (**self).cached_len()
    }
    fn truncate(&mut self, len: usize) {
        (**self).truncate(len)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }
}

/// Row-major logits.
///
/// # Shapes
/// `data.len() == rows * vocab`; row `i` is `data[i * vocab..(i + 1) * vocab]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    pub rows: usize,
    pub vocab: usize,
    pub data: Vec<f32>,
}

impl Logits {
    /// Wraps `data`, panicking if it is not `rows * vocab` long (a model bug).
    pub fn new(rows: usize, vocab: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            rows * vocab,
            "logits data must hold rows * vocab values"
        );
        Self { rows, vocab, data }
    }

    /// No rows (a buffer for [`CausalLm::forward_last_into`]).
    pub fn empty() -> Self {
        Self {
            rows: 0,
            vocab: 0,
            data: Vec::new(),
        }
    }

    /// Logits of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.vocab..(i + 1) * self.vocab]
    }

    /// Whether `data` really is `rows * vocab` long (the fields are public,
    /// so a model can build an inconsistent value without [`Logits::new`]).
    pub fn is_consistent(&self) -> bool {
        self.data.len() == self.rows * self.vocab
    }
}

/// A model's own error, boxed so that any crate (burn's included) can return
/// its typed errors; recover them with [`ModelError::downcast_ref`].
#[derive(Debug)]
pub struct ModelError(Box<dyn Error + Send + Sync>);

impl ModelError {
    pub fn new(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self(error.into())
    }

    /// An error that is only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }

    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }

    pub fn into_inner(self) -> Box<dyn Error + Send + Sync> {
        self.0
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for ModelError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct OutOfMemory;

    impl fmt::Display for OutOfMemory {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("out of memory")
        }
    }

    impl Error for OutOfMemory {}

    #[test]
    fn rows_are_row_major_slices() {
        let logits = Logits::new(2, 3, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(logits.row(0), &[0.0, 1.0, 2.0]);
        assert_eq!(logits.row(1), &[3.0, 4.0, 5.0]);
        assert!(logits.is_consistent());
    }

    #[test]
    #[should_panic(expected = "rows * vocab")]
    fn new_rejects_wrong_length() {
        Logits::new(2, 3, vec![0.0; 5]);
    }

    #[test]
    fn typed_errors_survive_boxing() {
        let error = ModelError::new(OutOfMemory);
        assert_eq!(error.to_string(), "out of memory");
        assert_eq!(error.downcast_ref::<OutOfMemory>(), Some(&OutOfMemory));
        assert_eq!(ModelError::msg("bad shape").to_string(), "bad shape");
    }
}
