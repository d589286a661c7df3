//! Tokenizer (`tokenizer.json`) and chat template of a model folder.
//!
//! The chat template comes from `tokenizer_config.json`'s `chat_template` (older repos)
//! or `chat_template.jinja` (newer ones), rendered with minijinja configured like
//! transformers' Jinja environment: `trim_blocks`, `lstrip_blocks`, Python string
//! methods (`.strip()`, `.startswith()`…), `raise_exception` and `tojson`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ModelError, Result};

/// One chat message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A chat template with the special tokens it may refer to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    origin: PathBuf,
    pub bos_token: String,
    pub eos_token: String,
}

impl ChatTemplate {
    pub fn new(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Self {
        Self {
            source: source.into(),
            origin: PathBuf::from("chat template"),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders a conversation the way `tokenizer.apply_chat_template(tokenize=False)` does.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let err = |reason: String| ModelError::ChatTemplate {
            path: self.origin.clone(),
            reason,
        };
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    message,
                ))
            },
        );
        env.add_function("strftime_now", |format: String| -> String {
            // Templates use this for "Today Date": a fixed, documented date keeps renders
            // reproducible across runs and machines.
            format
                .replace("%d", "01")
                .replace("%b", "Jan")
                .replace("%B", "January")
                .replace("%Y", "2025")
                .replace("%m", "01")
        });
        env.add_template("chat", &self.source)
            .map_err(|e| err(format!("cannot parse the template: {}", describe(&e))))?;
        let template = env.get_template("chat").expect("just added");
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| err(describe(&e)))
    }
}

/// minijinja's error text plus its cause chain, so `raise_exception` messages surface.
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.detail() {
        Some(detail) => detail.to_string(),
        None => e.to_string(),
    };
    if let Some(line) = e.line() {
        text.push_str(&format!(" (template line {line})"));
    }
    text
}

/// A model's tokenizer plus its chat template and special tokens.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    chat_template: Option<ChatTemplate>,
}

/// A special token in tokenizer_config.json: a string, or an AddedToken object.
fn token_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json`, and the chat template from `chat_template.jinja` or
    /// `tokenizer_config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::MissingFile {
                path,
                what: "tokenizer",
            });
        }
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| ModelError::Tokenizer {
            path: path.clone(),
            reason: e.to_string(),
        })?;

        let config_path = dir.join("tokenizer_config.json");
        let config: Value = if config_path.exists() {
            let text = std::fs::read_to_string(&config_path)
                .map_err(|e| ModelError::io(&config_path, e))?;
            serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: config_path.clone(),
                source,
            })?
        } else {
            Value::Null
        };
        let jinja_path = dir.join("chat_template.jinja");
        let (source, origin) = if jinja_path.exists() {
            let text =
                std::fs::read_to_string(&jinja_path).map_err(|e| ModelError::io(&jinja_path, e))?;
            (Some(text), jinja_path)
        } else {
            let source = match config.get("chat_template") {
                Some(Value::String(s)) => Some(s.clone()),
                // A list of named templates: use "default".
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            };
            (source, config_path.clone())
        };
        let chat_template = source.map(|source| ChatTemplate {
            source,
            origin,
            bos_token: token_string(config.get("bos_token")).unwrap_or_default(),
            eos_token: token_string(config.get("eos_token")).unwrap_or_default(),
        });
        Ok(Self {
            inner,
            path,
            chat_template,
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::Tokenizer {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Token ids of `text`. Special tokens written in the text (e.g. `<|im_start|>` from
    /// a chat template) are recognised; no BOS is added: templates add their own.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, false).map_err(|e| self.error(e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens included (so a reader sees `<|im_end|>`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| self.error(e))
    }

    /// Number of tokens the tokenizer knows (may be below the model's padded vocab).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Ids of the added tokens (specials such as `<|im_end|>`), ascending.
    pub fn added_token_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.inner.get_added_tokens_decoder().into_keys().collect();
        ids.sort_unstable();
        ids
    }

    /// Token strings by id (`None` for ids the tokenizer does not define).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Renders a conversation with the model's chat template.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self
            .chat_template
            .as_ref()
            .ok_or_else(|| ModelError::NoChatTemplate {
                path: self.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            })?;
        template.render(messages, add_generation_prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are helpful.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_with_generation_prompt() {
        let t = ChatTemplate::new(CHATML, "<s>", "</s>");
        let out = t.render(&[ChatMessage::new("user", "Hi")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_bos_and_trim_blocks() {
        let src = "{{ bos_token }}{% for m in messages %}\n  {% if m.role == 'user' %}\n[INST] {{ m.content.strip() }} [/INST]{% else %}{{ m.content }}{{ eos_token }}{% endif %}\n{% endfor %}";
        let t = ChatTemplate::new(src, "<s>", "</s>");
        let out = t
            .render(
                &[
                    ChatMessage::new("user", "  hello  "),
                    ChatMessage::new("assistant", "yo"),
                ],
                false,
            )
            .unwrap();
        assert_eq!(out, "<s>[INST] hello [/INST]yo</s>");
    }

    #[test]
    fn raise_exception_becomes_a_clear_error() {
        let src = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}ok";
        let t = ChatTemplate::new(src, "", "");
        let err = t
            .render(&[ChatMessage::new("assistant", "x")], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Conversation must start with user"), "{err}");
        assert_eq!(
            t.render(&[ChatMessage::new("user", "x")], false).unwrap(),
            "ok"
        );
    }

    #[test]
    fn broken_template_is_a_clear_error() {
        let t = ChatTemplate::new("{% for m in messages %}", "", "");
        let err = t.render(&[], false).unwrap_err();
        assert!(matches!(err, ModelError::ChatTemplate { .. }));
    }
}
