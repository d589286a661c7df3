//! A wrapper that checks how decoding uses a model's cache.

use std::cell::RefCell;
use std::rc::Rc;

use crate::model::{CausalLm, Logits, ModelError};

/// What a [`CheckedLm`] counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LmCounters {
    pub forwards: usize,
    pub tokens_fed: usize,
    pub truncations: usize,
    pub resets: usize,
    /// Tokens fed at a position where the last truncation had just dropped
    /// the very same token: work thrown away and redone for nothing.
    pub recomputed_positions: usize,
}

#[derive(Debug, Default)]
struct CacheRecord {
    tokens: Vec<u32>,
    /// Tokens the last truncation dropped, starting at position `tokens.len()`
    /// at that time; cleared by the next forward.
    dropped: Vec<u32>,
    dropped_from: usize,
    counters: LmCounters,
}

/// Wraps a model, mirrors its cache as a token list, and panics when it is
/// misused: an empty forward, a truncation past the cache, or an inner model
/// whose `cached_len` does not grow by exactly the tokens fed (the cache may
/// only ever be extended at `cached_len`).
pub struct CheckedLm<M> {
    inner: M,
    record: Rc<RefCell<CacheRecord>>,
}

/// Read access to a [`CheckedLm`]'s record while the model itself is borrowed
/// (e.g. by `generate`), so an event observer can inspect the cache.
#[derive(Clone, Debug)]
pub struct CacheProbe {
    record: Rc<RefCell<CacheRecord>>,
}

impl CacheProbe {
    /// The tokens now in the cache, in position order.
    pub fn cache(&self) -> Vec<u32> {
        self.record.borrow().tokens.clone()
    }

    pub fn counters(&self) -> LmCounters {
        self.record.borrow().counters.clone()
    }
}

impl<M: CausalLm> CheckedLm<M> {
    pub fn new(inner: M) -> Self {
        Self {
            inner,
            record: Rc::default(),
        }
    }

    pub fn probe(&self) -> CacheProbe {
        CacheProbe {
            record: Rc::clone(&self.record),
        }
    }

    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl<M: CausalLm> CausalLm for CheckedLm<M> {
    fn forward(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
        assert!(!tokens.is_empty(), "forward called with no tokens");
        let before = self.inner.cached_len();
        let mut record = self.record.borrow_mut();
        assert_eq!(
            before,
            record.tokens.len(),
            "cache changed behind the wrapper"
        );
        let record = &mut *record;
        // Only a leading run of identical tokens is recomputation: after the
        // first difference the context differs, and so does the work.
        for (i, &token) in tokens.iter().enumerate() {
            let dropped = (before + i)
                .checked_sub(record.dropped_from)
                .and_then(|at| record.dropped.get(at));
            if dropped != Some(&token) {
                break;
            }
            record.counters.recomputed_positions += 1;
        }
        record.dropped.clear();
        let logits = self.inner.forward(tokens)?;
        assert_eq!(logits.rows, tokens.len(), "one logits row per token fed");
        assert_eq!(
            self.inner.cached_len(),
            before + tokens.len(),
            "forward must extend the cache at cached_len by the tokens fed"
        );
        record.tokens.extend_from_slice(tokens);
        record.counters.forwards += 1;
        record.counters.tokens_fed += tokens.len();
        Ok(logits)
    }

    fn cached_len(&self) -> usize {
        self.inner.cached_len()
    }

    fn truncate(&mut self, len: usize) {
        let cached = self.inner.cached_len();
        assert!(len <= cached, "truncate({len}) past the cache ({cached})");
        self.inner.truncate(len);
        assert_eq!(self.inner.cached_len(), len, "truncate must shorten to len");
        let mut record = self.record.borrow_mut();
        if len < cached {
            record.dropped = record.tokens[len..].to_vec();
            record.dropped_from = len;
        }
        record.tokens.truncate(len);
        record.counters.truncations += 1;
    }

    fn reset(&mut self) {
        self.inner.reset();
        let mut record = self.record.borrow_mut();
        record.tokens.clear();
        record.dropped.clear();
        record.counters.resets += 1;
    }

    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TableLm;

    fn lm() -> CheckedLm<TableLm> {
        CheckedLm::new(TableLm::new(4, |_, _| vec![0.0; 4]))
    }

    #[test]
    fn mirrors_the_cache_and_counts() {
        let mut model = lm();
        let probe = model.probe();
        model.forward(&[1, 2, 3]).unwrap();
        model.truncate(1);
        model.forward(&[3]).unwrap();
        assert_eq!(probe.cache(), vec![1, 3]);
        let counters = probe.counters();
        assert_eq!((counters.forwards, counters.tokens_fed), (2, 4));
        assert_eq!(counters.recomputed_positions, 0);
    }

    #[test]
    fn re_feeding_a_dropped_token_is_counted() {
        let mut model = lm();
        let probe = model.probe();
        model.forward(&[1, 2, 3]).unwrap();
        model.truncate(1);
        model.forward(&[2]).unwrap();
        assert_eq!(probe.counters().recomputed_positions, 1);
    }

    #[test]
    fn a_different_context_is_not_recomputation() {
        let mut model = lm();
        let probe = model.probe();
        model.forward(&[1, 2, 3]).unwrap();
        model.truncate(1);
        // Position 2 gets token 3 again, but after 0 instead of 2.
        model.forward(&[0, 3]).unwrap();
        assert_eq!(probe.counters().recomputed_positions, 0);
    }

    #[test]
    #[should_panic(expected = "past the cache")]
    fn truncating_past_the_cache_panics() {
        let mut model = lm();
        model.forward(&[1]).unwrap();
        model.truncate(2);
    }

    #[test]
    #[should_panic(expected = "no tokens")]
    fn empty_forward_panics() {
        lm().forward(&[]).unwrap();
    }
}
