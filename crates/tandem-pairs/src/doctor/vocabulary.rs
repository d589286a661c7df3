//! Same vocabulary: the target checks the draft's guesses id by id, so every
//! id the draft can produce must mean the same text in both models.
//!
//! The comparison itself is `tandem_decode::check_vocab_compatible` (the
//! check the decoder relies on); this module words its outcome and adds the
//! config side: each model's `vocab_size` must leave room for its tokenizer.

use tandem_decode::{check_vocab_compatible, VocabMismatch};
use tandem_model::Architecture;

use super::model_files::ModelFiles;
use super::Findings;

/// Most added special tokens a tokenizer may have past the model's rows and still be
/// the model's own (Gemma 3's text models have one, `<image_soft_token>`).
const MAX_SPECIALS_PAST_ROWS: usize = 64;

pub(super) fn check(draft: &ModelFiles, target: &ModelFiles, findings: &mut Findings) {
    for model in [draft, target] {
        check_room_for_tokenizer(model, findings);
    }
    let (Some(draft_tokens), Some(target_tokens)) = (draft.tokens(), target.tokens()) else {
        return;
    };
    match check_vocab_compatible(target_tokens, draft_tokens) {
        Ok(()) if target_tokens.len() == draft_tokens.len() => findings.note(format!(
            "Both models use the same vocabulary ({} tokens).",
            draft_tokens.len()
        )),
        Ok(()) => {
            let extra = target_tokens.len() - draft_tokens.len();
            findings.note(format!(
                "Both models use the same vocabulary; the target knows {extra} more \
                 token{} ({} in all) that the draft never guesses, which is fine.",
                if extra == 1 { "" } else { "s" },
                target_tokens.len()
            ))
        }
        Err(VocabMismatch::TokenDiffers { id, target, draft }) => findings.problem(format!(
            "These two models use different vocabularies (token {id} is {} in the draft \
             but {} in the target), so the draft's guesses can't be checked by the \
             target. Pick a draft from the same model family as the target.",
            quoted(&draft),
            quoted(&target)
        )),
        Err(VocabMismatch::DraftLarger { draft, target }) => findings.problem(format!(
            "The draft knows more tokens ({draft}) than the target ({target}), so it could \
             guess tokens the target doesn't have. Pick a draft from the same model family \
             as the target."
        )),
    }
    check_output_widths(draft, target, findings);
}

/// A tokenizer with more tokens than the model's `vocab_size` produces ids
/// the model has no row for: the folder mixes files of different models.
///
/// Except in Gemma 3: its text models (270M, 1B: 262 144 rows) share the multimodal
/// models' tokenizer, whose `<image_soft_token>` (id 262 144) stands for image
/// features. The model never writes a token past its rows, and one in a prompt is
/// refused by the loader as out of range, so a few added special tokens past the rows
/// are only a note there. Anywhere else they still mean mixed-up files.
fn check_room_for_tokenizer(model: &ModelFiles, findings: &mut Findings) {
    let (Some(config), Some(tokens), Some(tokenizer)) =
        (model.config(), model.tokens(), model.tokenizer())
    else {
        return;
    };
    if tokens.len() <= config.vocab_size {
        return;
    }
    let added = tokenizer.added_token_ids();
    let past: Vec<usize> = (config.vocab_size..tokens.len())
        .filter(|&id| !tokens[id].is_empty())
        .collect();
    let only_added = past
        .iter()
        .all(|&id| added.binary_search(&(id as u32)).is_ok());
    let shared_multimodal = config.architecture == Architecture::Gemma3;
    if shared_multimodal && only_added && past.len() <= MAX_SPECIALS_PAST_ROWS {
        let names: Vec<String> = past.iter().map(|&id| quoted(&tokens[id])).collect();
        findings.note(format!(
            "The {role}'s tokenizer has {} special token{} past the {role} model's {} token \
             slots ({}); the model never writes {}, which is fine.",
            past.len(),
            if past.len() == 1 { "" } else { "s" },
            config.vocab_size,
            names.join(", "),
            if past.len() == 1 { "it" } else { "them" },
            role = model.role,
        ));
        return;
    }
    findings.problem(format!(
        "The {role}'s tokenizer has {} tokens but the {role} model only has room for {} \
         (vocab_size in config.json), so these files don't belong to the same model.",
        tokens.len(),
        config.vocab_size,
        role = model.role,
    ));
}

/// Padded output layers (Qwen pads `vocab_size` past its tokenizer) are
/// fine either way; say so, since the numbers differ from the tokenizers'.
fn check_output_widths(draft: &ModelFiles, target: &ModelFiles, findings: &mut Findings) {
    let (Some(draft_config), Some(target_config)) = (draft.config(), target.config()) else {
        return;
    };
    let (draft_width, target_width) = (draft_config.vocab_size, target_config.vocab_size);
    if draft_width < target_width {
        findings.note(format!(
            "The target's output layer is padded to {target_width} token slots and the \
             draft's to {draft_width}; the extra slots are unused, which is fine."
        ));
    } else if draft_width > target_width {
        findings.note(format!(
            "The draft's output layer is padded to {draft_width} token slots, more than the \
             target's {target_width}; the extra slots are unused, which is fine."
        ));
    }
}

/// A token as a user can read it: quoted, with control characters escaped.
pub(super) fn quoted(token: &str) -> String {
    format!("\"{}\"", token.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_quoted_readably() {
        assert_eq!(quoted("foo"), "\"foo\"");
        assert_eq!(quoted("a\nb"), "\"a\\nb\"");
    }
}
