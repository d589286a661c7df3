//! One model folder as the doctor sees it: its parsed config, its tokenizer
//! and the special-token names of `tokenizer_config.json`. Each part that
//! cannot be read is kept as the message saying why, so one bad file does not
//! hide what the other files have to say.

use std::fmt;
use std::path::Path;

use serde_json::Value;
use tandem_model::{ModelConfig, Tokenizer};

/// Which side of the pair a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Draft,
    Target,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Draft => "draft",
            Role::Target => "target",
        })
    }
}

pub(crate) struct ModelFiles {
    pub role: Role,
    pub config: Result<ModelConfig, String>,
    pub tokenizer: Result<Tokenizer, String>,
    /// The tokenizer's token strings, index = id (see [`token_strings`]).
    pub tokens: Option<Vec<String>>,
    /// `bos_token` and `eos_token` of `tokenizer_config.json` (`None` when
    /// absent or null, as Qwen's `bos_token` is).
    pub bos_name: Option<String>,
    pub eos_name: Option<String>,
}

impl ModelFiles {
    pub fn load(dir: &Path, role: Role) -> ModelFiles {
        let config = ModelConfig::from_dir(dir).map_err(|err| err.to_string());
        let tokenizer = Tokenizer::from_dir(dir).map_err(|err| err.to_string());
        let tokenizer_config = read_tokenizer_config(dir);
        let tokens = tokenizer.as_ref().ok().map(token_strings);
        // A GGUF file has no tokenizer_config.json: its BOS and EOS are the ones its
        // chat template was given (named by the file's token ids).
        let template = tokenizer.as_ref().ok().and_then(Tokenizer::chat_template);
        let from_template = |name: Option<&String>| name.filter(|n| !n.is_empty()).cloned();
        let bos_name = token_name(tokenizer_config.get("bos_token"))
            .or_else(|| from_template(template.map(|t| &t.bos_token)));
        let eos_name = token_name(tokenizer_config.get("eos_token"))
            .or_else(|| from_template(template.map(|t| &t.eos_token)));
        ModelFiles {
            role,
            config,
            tokenizer,
            tokens,
            bos_name,
            eos_name,
        }
    }

    pub fn config(&self) -> Option<&ModelConfig> {
        self.config.as_ref().ok()
    }

    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref().ok()
    }

    pub fn tokens(&self) -> Option<&[String]> {
        self.tokens.as_deref()
    }
}

/// Token strings, index = id. Scans up to the larger of the tokenizer's
/// count and its highest added-token id, so added tokens past a gap in the
/// ids are not missed; ids without a token read as "". Sized by the
/// tokenizer, never by `vocab_size` (a number a repo can set to billions), and
/// capped at the largest vocabulary a config may declare.
fn token_strings(tokenizer: &Tokenizer) -> Vec<String> {
    let past_added = tokenizer
        .added_token_ids()
        .last()
        .map_or(0, |&id| id as usize + 1);
    let scan = tokenizer
        .vocab_size()
        .max(past_added)
        .min(tandem_model::config::MAX_VOCAB_SIZE);
    let mut tokens: Vec<Option<String>> = (0..scan as u32)
        .map(|id| tokenizer.id_to_token(id))
        .collect();
    while matches!(tokens.last(), Some(None)) {
        tokens.pop();
    }
    tokens.into_iter().map(Option::unwrap_or_default).collect()
}

/// `tokenizer_config.json` as JSON; `Null` when missing or unreadable (the
/// tokenizer check reports a broken file already).
fn read_tokenizer_config(dir: &Path) -> Value {
    std::fs::read_to_string(dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

/// A special token written as a string or as an `AddedToken` object.
fn token_name(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(name) => Some(name.clone()),
        Value::Object(token) => token
            .get("content")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_names_come_as_strings_or_objects() {
        assert_eq!(token_name(Some(&json!("<s>"))).as_deref(), Some("<s>"));
        assert_eq!(
            token_name(Some(&json!({"content": "</s>", "lstrip": false}))).as_deref(),
            Some("</s>")
        );
        assert_eq!(token_name(Some(&Value::Null)), None);
        assert_eq!(token_name(None), None);
    }
}
