//! Errors of a generation run.

use std::fmt;

use thiserror::Error;

use crate::model::{CausalLm, Logits, ModelError};

/// Which model an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelRole {
    Target,
    Draft,
}

impl fmt::Display for ModelRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelRole::Target => "target",
            ModelRole::Draft => "draft",
        })
    }
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("the prompt is empty: decoding needs at least one token to condition on")]
    EmptyPrompt,
    #[error("invalid generation config: {0}")]
    InvalidConfig(String),
    #[error(
        "the {role} model returned {rows} logits rows of width {width} ({len} values) \
         for {fed} tokens; expected {fed} rows of width {vocab}"
    )]
    BadLogits {
        role: ModelRole,
        fed: usize,
        rows: usize,
        width: usize,
        len: usize,
        vocab: usize,
    },
    #[error("the {role} model failed: {source}")]
    Model {
        role: ModelRole,
        #[source]
        source: ModelError,
    },
}

/// Runs `model.forward_last(tokens, rows)` and checks the shape the trait
/// promises, so that a model bug surfaces as an error instead of a panic deep
/// inside sampling.
pub(crate) fn forward_checked<'a>(
    model: &mut (impl CausalLm + ?Sized),
    role: ModelRole,
    tokens: &[u32],
    rows: usize,
    logits: &'a mut Logits,
) -> Result<&'a Logits, DecodeError> {
    let rows = rows.min(tokens.len());
    let started = std::time::Instant::now();
    let result = model.forward_last_into(tokens, rows, logits);
    FORWARD_MS.with(|ms| ms.set(ms.get() + started.elapsed().as_secs_f64() * 1e3));
    result.map_err(|source| DecodeError::Model { role, source })?;
    let vocab = model.vocab_size();
    if logits.rows != rows || logits.vocab != vocab || !logits.is_consistent() {
        return Err(DecodeError::BadLogits {
            role,
            fed: tokens.len(),
            rows: logits.rows,
            width: logits.vocab,
            len: logits.data.len(),
            vocab,
        });
    }
    Ok(logits)
}

thread_local! {
    /// Milliseconds spent inside model forwards on this thread (a generation runs on
    /// one thread), so a run can tell the models' time from its own.
    static FORWARD_MS: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// The forward time accumulated on this thread since the last call, and a restart.
pub(crate) fn take_forward_ms() -> f64 {
    FORWARD_MS.with(|ms| ms.replace(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns one row whatever it is fed.
    struct OneRowLm;

    impl CausalLm for OneRowLm {
        fn forward(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
            if tokens.is_empty() {
                return Err(ModelError::msg("nothing to do"));
            }
            Ok(Logits::new(1, 2, vec![0.0, 1.0]))
        }
        fn cached_len(&self) -> usize {
            0
        }
        fn truncate(&mut self, _len: usize) {}
        fn reset(&mut self) {}
        fn vocab_size(&self) -> usize {
            2
        }
    }

    #[test]
    fn wrong_row_count_is_an_error() {
        let err = forward_checked(
            &mut OneRowLm,
            ModelRole::Draft,
            &[1, 2],
            2,
            &mut Logits::empty(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            DecodeError::BadLogits {
                fed: 2,
                rows: 1,
                ..
            }
        ));
        assert!(err
            .to_string()
            .starts_with("the draft model returned 1 logits rows"));
        assert!(forward_checked(
            &mut OneRowLm,
            ModelRole::Draft,
            &[1],
            1,
            &mut Logits::empty()
        )
        .is_ok());
    }

    #[test]
    fn model_errors_name_the_model() {
        let err = forward_checked(
            &mut OneRowLm,
            ModelRole::Target,
            &[],
            1,
            &mut Logits::empty(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "the target model failed: nothing to do");
    }
}
