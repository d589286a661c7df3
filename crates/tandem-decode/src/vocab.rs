//! Checking that a draft model speaks the target's vocabulary.
//!
//! Speculative decoding compares p and q token id by token id, so a draft
//! whose id 42 is a different string from the target's id 42 would be
//! "accepted" while meaning something else. The check works on token strings
//! (index = id) because model configs only know a vocabulary's size.

use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum VocabMismatch {
    #[error(
        "the draft vocabulary has {draft} tokens but the target's only {target}: \
         the draft could propose ids the target cannot produce"
    )]
    DraftLarger { draft: usize, target: usize },
    #[error("token id {id} differs between the models: target {target:?}, draft {draft:?}")]
    TokenDiffers {
        id: u32,
        target: String,
        draft: String,
    },
}

/// Accepts a draft whose tokens (index = id) equal the target's on every id
/// they share. The target may have more ids (a padded vocabulary such as
/// Qwen's, whose config vocab_size exceeds its tokenizer's); the draft may not.
///
/// Logit *widths* are a separate matter, handled during verification: where
/// the target's rows are wider, the draft's missing probabilities count as 0.
pub fn check_vocab_compatible<T, D>(target: &[T], draft: &[D]) -> Result<(), VocabMismatch>
where
    T: AsRef<str>,
    D: AsRef<str>,
{
    if draft.len() > target.len() {
        return Err(VocabMismatch::DraftLarger {
            draft: draft.len(),
            target: target.len(),
        });
    }
    for (id, (t, d)) in target.iter().zip(draft).enumerate() {
        if t.as_ref() != d.as_ref() {
            return Err(VocabMismatch::TokenDiffers {
                id: id as u32,
                target: t.as_ref().to_owned(),
                draft: d.as_ref().to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_vocabularies_pass() {
        let vocab = ["a", "b", "c"];
        assert_eq!(check_vocab_compatible(&vocab, &vocab), Ok(()));
    }

    #[test]
    fn padded_target_passes() {
        let target = vec!["a".to_string(), "b".into(), "<pad_0>".into()];
        assert_eq!(check_vocab_compatible(&target, &["a", "b"]), Ok(()));
    }

    #[test]
    fn first_differing_id_is_reported() {
        let err = check_vocab_compatible(&["a", "b", "c", "d"], &["a", "x", "c", "y"]).unwrap_err();
        assert_eq!(
            err,
            VocabMismatch::TokenDiffers {
                id: 1,
                target: "b".into(),
                draft: "x".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "token id 1 differs between the models: target \"b\", draft \"x\""
        );
    }

    #[test]
    fn larger_draft_is_refused() {
        assert_eq!(
            check_vocab_compatible(&["a"], &["a", "b"]),
            Err(VocabMismatch::DraftLarger {
                draft: 2,
                target: 1
            })
        );
    }
}
