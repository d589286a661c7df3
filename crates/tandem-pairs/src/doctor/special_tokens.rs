//! Same special tokens and chat format. The ids come from the configs
//! (`generation_config.json` winning, as in transformers), the names from
//! `tokenizer_config.json`, and the chat template from either file.
//!
//! A different end-of-answer token means the draft was trained to stop
//! somewhere else, a sign the two are not one family: a problem. A different
//! chat template only costs accepted guesses, since Tandem formats prompts
//! with the target's template: a warning.

use tandem_model::Tokenizer;

use super::model_files::ModelFiles;
use super::vocabulary::quoted;
use super::Findings;

pub(super) fn check(draft: &ModelFiles, target: &ModelFiles, findings: &mut Findings) {
    check_token_ids(draft, target, findings);
    check_token_names(draft, target, findings);
    check_chat_templates(draft, target, findings);
}

fn check_token_ids(draft: &ModelFiles, target: &ModelFiles, findings: &mut Findings) {
    let (Some(draft_config), Some(target_config)) = (draft.config(), target.config()) else {
        return;
    };
    let describe = |ids: &[u32]| describe_ids(ids, target);
    if draft_config.bos_token_id != target_config.bos_token_id {
        let ids = |id: Option<u32>| id.map(|id| describe(&[id])).unwrap_or("none".into());
        findings.problem(format!(
            "The models start text with different tokens (draft: {}; target: {}), so they \
             don't read text the same way.",
            ids(draft_config.bos_token_id),
            ids(target_config.bos_token_id)
        ));
    }
    let (draft_eos, target_eos) = (
        sorted(&draft_config.eos_token_ids),
        sorted(&target_config.eos_token_ids),
    );
    if draft_eos != target_eos {
        findings.problem(format!(
            "The models end their answers with different tokens (draft: {}; target: {}), \
             so the draft would guess the end of an answer at the wrong moments.",
            describe(&draft_eos),
            describe(&target_eos)
        ));
    }
}

/// The names in `tokenizer_config.json`, which chat templates insert.
fn check_token_names(draft: &ModelFiles, target: &ModelFiles, findings: &mut Findings) {
    let name = |name: &Option<String>| name.as_deref().map(quoted).unwrap_or("none".into());
    if draft.bos_name != target.bos_name {
        findings.problem(format!(
            "The tokenizers name different start-of-text tokens (draft: {}; target: {}).",
            name(&draft.bos_name),
            name(&target.bos_name)
        ));
    }
    if draft.eos_name != target.eos_name {
        findings.problem(format!(
            "The tokenizers name different end-of-answer tokens (draft: {}; target: {}).",
            name(&draft.eos_name),
            name(&target.eos_name)
        ));
    }
}

fn check_chat_templates(draft: &ModelFiles, target: &ModelFiles, findings: &mut Findings) {
    let (Some(draft_tokenizer), Some(target_tokenizer)) = (draft.tokenizer(), target.tokenizer())
    else {
        return;
    };
    match (template(draft_tokenizer), template(target_tokenizer)) {
        (Some(d), Some(t)) if d == t => {
            findings.note("Both models format chats the same way (same chat template).")
        }
        (Some(_), Some(_)) => findings.warning(
            "The two models format chats differently (their chat templates differ). Tandem \
             formats prompts the target's way, so the draft sees a slightly unfamiliar layout \
             and may guess right less often.",
        ),
        (None, Some(_)) => findings.warning(
            "Only the target has a chat template, so the draft may not be tuned for chat and \
             may guess right less often.",
        ),
        (Some(_), None) => findings.warning(
            "The target has no chat template, so chat prompts can't be formatted for it; use \
             plain text prompts, or pick an instruct (chat) version of the target.",
        ),
        (None, None) => findings
            .note("Neither model has a chat template: they continue plain text rather than chat."),
    }
}

fn template(tokenizer: &Tokenizer) -> Option<&str> {
    tokenizer.chat_template().map(|t| t.source().trim())
}

fn sorted(ids: &[u32]) -> Vec<u32> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `"<|im_end|>" (id 2)`, using the target's tokenizer for the names.
fn describe_ids(ids: &[u32], model: &ModelFiles) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = ids
        .iter()
        .map(|&id| {
            match model
                .tokens()
                .and_then(|tokens| tokens.get(id as usize))
                .filter(|token| !token.is_empty())
            {
                Some(token) => format!("{} (id {id})", quoted(token)),
                None => format!("id {id}"),
            }
        })
        .collect();
    names.join(", ")
}
