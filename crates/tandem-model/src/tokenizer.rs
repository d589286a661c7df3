//! Tokenizer (`tokenizer.json`) and chat template of a model folder.
//!
//! The chat template comes from `tokenizer_config.json`'s `chat_template` (older repos)
//! or `chat_template.jinja` (newer ones), rendered with minijinja configured like
//! transformers' Jinja environment: `trim_blocks`, `lstrip_blocks`, Python string
//! methods (`.strip()`, `.startswith()`…), `raise_exception`, `tojson` and the
//! `{% generation %}` block. Extra variables (`enable_thinking`) come in [`ChatOptions`],
//! as `apply_chat_template`'s keyword arguments do.
//!
//! A template is code from an untrusted repo, so rendering is bounded: minijinja's fuel
//! caps the steps (an endless loop ends in an error, not a hung run), the filters that
//! take a width (`indent`, `tojson`, `format`, `.format()`) refuse absurd ones and results
//! over [`MAX_TEMPLATE_TEXT_BYTES`], and the output stops at a length no prompt needs.
//! What minijinja itself allows is not re-checked: a single string repetition is capped
//! by minijinja at 100 MB, but string concatenation in a loop grows with the fuel.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest, StringInput, ValueKind};
use minijinja::{ErrorKind, State, Value as JinjaValue};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::read_text_limited;
use crate::error::{ModelError, Result};

/// Steps (minijinja instructions) a chat template may run per render. Real templates
/// take a few thousand for a conversation; this leaves a hundredfold margin and still
/// stops an endless loop within a fraction of a second.
pub const CHAT_TEMPLATE_FUEL: u64 = 2_000_000;

/// Size limits of a repo's tokenizer files (checked before reading them): the largest
/// real `tokenizer.json` is a few tens of megabytes, a template a few tens of kilobytes.
pub const MAX_TOKENIZER_FILE_BYTES: u64 = 256 << 20;
/// See [`MAX_TOKENIZER_FILE_BYTES`].
pub const MAX_TOKENIZER_CONFIG_BYTES: u64 = 64 << 20;
/// See [`MAX_TOKENIZER_FILE_BYTES`]; also bounds a `chat_template` string.
pub const MAX_TEMPLATE_SOURCE_BYTES: u64 = 4 << 20;

/// Widest `indent` / `tojson(indent=…)` a template may ask for (real ones use 2 or 4).
pub const MAX_TEMPLATE_INDENT: usize = 64;

/// Longest line of a chat template, in characters (see `ChatTemplate::environment`).
const MAX_TEMPLATE_LINE_CHARS: usize = u16::MAX as usize - 1;

/// Largest number a `format` specification may hold (a width or precision).
const MAX_FORMAT_NUMBER: u64 = 4096;

/// Largest string a width-taking filter may build, and the rendered length allowed on
/// top of the messages themselves.
pub const MAX_TEMPLATE_TEXT_BYTES: usize = 16 << 20;

/// Cap on the rendered prompt: the fixed allowance plus twice the messages' text (a
/// template may repeat a message, e.g. a system prompt, but not multiply it).
fn rendered_limit(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .map(|m| m.content.len() + m.role.len())
        .fold(MAX_TEMPLATE_TEXT_BYTES, |sum, n| {
            sum.saturating_add(n.saturating_mul(2))
        })
}

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

/// Variables a chat template may read besides the conversation, as the keyword
/// arguments of transformers' `apply_chat_template(..., enable_thinking=False)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatOptions {
    /// `enable_thinking` (Qwen3, SmolLM3: whether the model reasons in a `<think>` block
    /// before it answers). `None` leaves the variable undefined, so the template's own
    /// default applies (on, for both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_thinking: Option<bool>,
}

impl ChatOptions {
    /// Options that set `enable_thinking`.
    pub fn thinking(enable_thinking: Option<bool>) -> Self {
        Self { enable_thinking }
    }
}

/// A chat template with the special tokens it may refer to.
#[derive(Debug, Clone, PartialEq)]
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

    /// A model's chat template without its tokenizer (cheap: `tokenizer.json` is not
    /// read), from a model folder or a GGUF file. `None` when the model has none.
    pub fn from_dir(dir: &Path) -> Result<Option<Self>> {
        if crate::formats::gguf::is_gguf_file(dir) {
            let tokenizer = Tokenizer::from_gguf(&crate::formats::gguf::GgufFile::open(dir)?)?;
            return Ok(tokenizer.chat_template);
        }
        crate::config::check_model_dir(dir)?;
        Self::from_files(dir)
    }

    /// The template of `chat_template.jinja` or `tokenizer_config.json`, with the
    /// latter's BOS and EOS names.
    fn from_files(dir: &Path) -> Result<Option<Self>> {
        let config_path = dir.join("tokenizer_config.json");
        let config: Value = if config_path.exists() {
            let text = read_text_limited(
                &config_path,
                "tokenizer configuration",
                MAX_TOKENIZER_CONFIG_BYTES,
            )?;
            serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: config_path.clone(),
                source,
            })?
        } else {
            Value::Null
        };
        let jinja_path = dir.join("chat_template.jinja");
        let (source, origin) = if jinja_path.exists() {
            let text = read_text_limited(&jinja_path, "chat template", MAX_TEMPLATE_SOURCE_BYTES)?;
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
            if let Some(source) = &source {
                if source.len() as u64 > MAX_TEMPLATE_SOURCE_BYTES {
                    return Err(ModelError::field(
                        &config_path,
                        "chat_template",
                        format!(
                            "the template is {} bytes, more than the {MAX_TEMPLATE_SOURCE_BYTES} allowed",
                            source.len()
                        ),
                    ));
                }
            }
            (source, config_path.clone())
        };
        Ok(source.map(|source| ChatTemplate {
            source,
            origin,
            bos_token: token_string(config.get("bos_token")).unwrap_or_default(),
            eos_token: token_string(config.get("eos_token")).unwrap_or_default(),
        }))
    }

    fn error(&self, reason: String) -> ModelError {
        ModelError::ChatTemplate {
            path: self.origin.clone(),
            reason,
        }
    }

    /// Renders a conversation the way `tokenizer.apply_chat_template(tokenize=False)` does,
    /// within the bounds in the module docs.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.render_with(messages, add_generation_prompt, &ChatOptions::default())
    }

    /// [`render`](Self::render) with extra template variables, as
    /// `apply_chat_template(..., enable_thinking=False)` passes its keyword arguments.
    pub fn render_with(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        options: &ChatOptions,
    ) -> Result<String> {
        let env = self.environment()?;
        let template = env.get_template("chat").expect("just added");
        let mut out = LimitedWriter {
            text: Vec::new(),
            limit: rendered_limit(messages),
            exceeded: false,
        };
        let rendered = template.render_captured_to(
            self.context(messages, add_generation_prompt, options),
            &mut out,
        );
        match rendered {
            Ok(_) => String::from_utf8(out.text)
                .map_err(|_| self.error("the rendered prompt is not valid UTF-8".into())),
            Err(_) if out.exceeded => Err(self.error(format!(
                "the rendered prompt is longer than {} bytes (a runaway template?)",
                out.limit
            ))),
            Err(e) => Err(self.error(describe(&e))),
        }
    }

    /// Fuel a render consumes (to check the budget leaves real templates room).
    #[cfg(test)]
    fn fuel_used(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<u64> {
        let env = self.environment()?;
        let template = env.get_template("chat").expect("just added");
        let captured = template
            .render_captured(self.context(messages, add_generation_prompt, &ChatOptions::default()))
            .map_err(|e| self.error(describe(&e)))?;
        Ok(captured.state().fuel_levels().map_or(0, |(used, _)| used))
    }

    fn context(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        options: &ChatOptions,
    ) -> JinjaValue {
        let base = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        match options.enable_thinking {
            // Left out rather than set to none: templates test `is defined`.
            None => base,
            Some(enable_thinking) => {
                minijinja::context! { enable_thinking => enable_thinking, ..base }
            }
        }
    }

    /// Whether the template has a thinking switch (reads `enable_thinking` and renders a
    /// chat differently with it on and off), and if so its default: what it does with
    /// the variable left undefined. `None`: no switch.
    pub fn thinking_default(&self) -> Option<bool> {
        if !self.source.contains("enable_thinking") {
            return None;
        }
        let probe = [ChatMessage::new("user", "Hi")];
        let render = |enable_thinking| {
            self.render_with(&probe, true, &ChatOptions { enable_thinking })
                .ok()
        };
        let (on, off) = (render(Some(true))?, render(Some(false))?);
        if on == off {
            return None;
        }
        Some(render(None).as_ref() != Some(&off))
    }

    /// The environment transformers renders with, plus the bounds.
    fn environment(&self) -> Result<minijinja::Environment<'_>> {
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_fuel(Some(CHAT_TEMPLATE_FUEL));
        env.set_unknown_method_callback(bounded_methods);
        env.add_filter("indent", bounded_indent);
        env.add_filter("tojson", bounded_tojson);
        env.add_filter("format", bounded_format);
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
        // minijinja counts columns in a u16: a longer line overflows its error spans
        // (a panic in builds with overflow checks). No real template comes close.
        if let Some(line) = self
            .source
            .split('\n')
            .position(|line| line.chars().count() > MAX_TEMPLATE_LINE_CHARS)
        {
            return Err(self.error(format!(
                "cannot parse the template: line {} is longer than {MAX_TEMPLATE_LINE_CHARS} characters",
                line + 1
            )));
        }
        env.add_template_owned("chat", without_generation_tags(&self.source))
            .map_err(|e| self.error(format!("cannot parse the template: {}", describe(&e))))?;
        Ok(env)
    }
}

/// The template with transformers' `{% generation %}` … `{% endgeneration %}` block (it
/// marks the assistant's tokens for training masks and renders its body unchanged, e.g.
/// in SmolLM3's template) turned into an always-true `if`, which minijinja knows. The
/// whitespace modifiers (`{%-`, `-%}`) are kept, so the text around renders the same.
fn without_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        // The closing `%}` after the opening `{%` (in `{%}` they overlap).
        let Some(end) = tag[2..].find("%}").map(|end| end + 2) else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let open_modifier = inner.strip_prefix(['-', '+']).map(|_| &inner[..1]);
        let close_modifier = inner
            .strip_suffix(['-', '+'])
            .map(|_| &inner[inner.len() - 1..]);
        let name = inner
            .trim_start_matches(['-', '+'])
            .trim_end_matches(['-', '+'])
            .trim();
        let replacement = match name {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replacement {
            Some(statement) => {
                out.push_str("{%");
                out.push_str(open_modifier.unwrap_or(""));
                out.push(' ');
                out.push_str(statement);
                out.push(' ');
                out.push_str(close_modifier.unwrap_or(""));
                out.push_str("%}");
            }
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Collects the output, failing once it would pass `limit` bytes (the render stops there).
struct LimitedWriter {
    text: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl std::io::Write for LimitedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len().saturating_add(buf.len()) > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("rendered prompt too long"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn template_error(message: String) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, message)
}

/// `indent` with its width capped at [`MAX_TEMPLATE_INDENT`] and its result at
/// [`MAX_TEMPLATE_TEXT_BYTES`] (minijinja's own allocates whatever it is asked).
fn bounded_indent(
    value: StringInput<'_>,
    width: Option<usize>,
    indent_first_line: Option<bool>,
    indent_blank_lines: Option<bool>,
    kwargs: Kwargs,
) -> std::result::Result<JinjaValue, minijinja::Error> {
    let asked = match width {
        Some(width) => width,
        None => kwargs.peek::<Option<usize>>("width")?.unwrap_or(4),
    };
    if asked > MAX_TEMPLATE_INDENT {
        return Err(template_error(format!(
            "indent width {asked} is more than the {MAX_TEMPLATE_INDENT} allowed"
        )));
    }
    let text = value.as_str();
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    let result_len = lines.saturating_mul(asked).saturating_add(text.len());
    if result_len > MAX_TEMPLATE_TEXT_BYTES {
        return Err(template_error(format!(
            "indent would build {result_len} bytes, more than the {MAX_TEMPLATE_TEXT_BYTES} allowed"
        )));
    }
    minijinja::filters::indent(value, width, indent_first_line, indent_blank_lines, kwargs)
}

/// `tojson` with its indent width capped at [`MAX_TEMPLATE_INDENT`].
fn bounded_tojson(
    value: &JinjaValue,
    indent: Option<JinjaValue>,
    kwargs: Kwargs,
) -> std::result::Result<JinjaValue, minijinja::Error> {
    let asked = match &indent {
        Some(indent) => Some(indent.clone()),
        None => kwargs.peek::<Option<JinjaValue>>("indent")?,
    };
    // `true` means 2 and `false` none; anything else must be a width up to the cap.
    if let Some(width) = asked.filter(|v| v.kind() != ValueKind::Bool) {
        if !matches!(usize::try_from(width.clone()), Ok(w) if w <= MAX_TEMPLATE_INDENT) {
            return Err(template_error(format!(
                "tojson indent width {width} is not a number from 0 to {MAX_TEMPLATE_INDENT}"
            )));
        }
    }
    minijinja::filters::tojson(value, indent, kwargs)
}

/// Refuses a printf- or str.format-style format string holding a number over
/// [`MAX_FORMAT_NUMBER`]: widths and precisions pad without limit.
fn check_format_string(format: &str) -> std::result::Result<(), minijinja::Error> {
    for digits in format.split(|c: char| !c.is_ascii_digit()) {
        let number = digits.bytes().fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        if number > MAX_FORMAT_NUMBER {
            return Err(template_error(format!(
                "format width {digits} is more than the {MAX_FORMAT_NUMBER} allowed"
            )));
        }
    }
    Ok(())
}

/// The `format` filter, with widths checked.
fn bounded_format(
    state: &State<'_, '_>,
    format: &JinjaValue,
    args: Rest<JinjaValue>,
) -> std::result::Result<JinjaValue, minijinja::Error> {
    if let Some(text) = format.as_str() {
        check_format_string(text)?;
    }
    minijinja::filters::format(state, format, args)
}

/// Python's string methods (pycompat), with `.format()` widths checked.
fn bounded_methods(
    state: &State<'_, '_>,
    value: &JinjaValue,
    method: &str,
    args: &[JinjaValue],
) -> std::result::Result<JinjaValue, minijinja::Error> {
    if method == "format" {
        if let Some(text) = value.as_str() {
            check_format_string(text)?;
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// minijinja's error text plus its cause chain, so `raise_exception` messages surface.
fn describe(e: &minijinja::Error) -> String {
    if e.kind() == ErrorKind::OutOfFuel {
        return format!(
            "the template ran out of fuel: it takes more than {CHAT_TEMPLATE_FUEL} steps (an endless loop?)"
        );
    }
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
        if crate::formats::gguf::is_gguf_file(dir) {
            return Self::from_gguf(&crate::formats::gguf::GgufFile::open(dir)?);
        }
        crate::config::check_model_dir(dir)?;
        let path = dir.join("tokenizer.json");
        let text = read_text_limited(&path, "tokenizer", MAX_TOKENIZER_FILE_BYTES)?;
        let inner: tokenizers::Tokenizer = text.parse().map_err(|e| ModelError::Tokenizer {
            path: path.clone(),
            reason: format!("{e}"),
        })?;
        drop(text);
        let chat_template = ChatTemplate::from_files(dir)?;
        Ok(Self {
            inner,
            path,
            chat_template,
        })
    }

    /// The tokenizer a GGUF file describes (`tokenizer.ggml.*`) and its chat template
    /// (`tokenizer.chat_template`), with BOS and EOS named by the file's token ids.
    pub fn from_gguf(file: &crate::formats::gguf::GgufFile) -> Result<Self> {
        use crate::formats::gguf::GgufValue;
        let inner = crate::formats::gguf_tokenizer::tokenizer(file)?;
        let token = |key: &str| {
            file.get(key)
                .and_then(GgufValue::as_u64)
                .and_then(|id| u32::try_from(id).ok())
                .and_then(|id| inner.id_to_token(id))
                .unwrap_or_default()
        };
        let chat_template = match file.get("tokenizer.chat_template") {
            None => None,
            Some(GgufValue::String(source)) if source.len() as u64 <= MAX_TEMPLATE_SOURCE_BYTES => {
                Some(ChatTemplate {
                    source: source.clone(),
                    origin: file.path().to_path_buf(),
                    bos_token: token("tokenizer.ggml.bos_token_id"),
                    eos_token: token("tokenizer.ggml.eos_token_id"),
                })
            }
            Some(other) => {
                return Err(ModelError::field(
                    file.path(),
                    "tokenizer.chat_template",
                    format!(
                        "expected a template of at most {MAX_TEMPLATE_SOURCE_BYTES} bytes, got a {} ({} bytes)",
                        other.type_name(),
                        other.as_str().map_or(0, str::len)
                    ),
                ))
            }
        };
        Ok(Self {
            inner,
            path: file.path().to_path_buf(),
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
        self.apply_chat_template_with(messages, add_generation_prompt, &ChatOptions::default())
    }

    /// [`apply_chat_template`](Self::apply_chat_template) with extra template variables.
    pub fn apply_chat_template_with(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        options: &ChatOptions,
    ) -> Result<String> {
        let template = self
            .chat_template
            .as_ref()
            .ok_or_else(|| ModelError::NoChatTemplate {
                path: self.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            })?;
        template.render_with(messages, add_generation_prompt, options)
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

    fn render_err(src: &str) -> String {
        let started = std::time::Instant::now();
        let result = ChatTemplate::new(src, "", "").render(&[ChatMessage::new("user", "hi")], true);
        assert!(started.elapsed().as_secs() < 10, "{src} took too long");
        let err = result.expect_err(src);
        assert!(matches!(err, ModelError::ChatTemplate { .. }), "{err}");
        err.to_string()
    }

    #[test]
    fn huge_indent_and_tojson_widths_are_refused() {
        for src in [
            "{{ 'x'|indent(10000000000000) }}",
            "{{ 'x'|indent(width=10000000000000) }}",
            "{{ messages|tojson(indent=10000000000000) }}",
            "{{ messages|tojson(10000000000000) }}",
        ] {
            let err = render_err(src);
            assert!(
                err.contains("10000000000000") && err.contains("width"),
                "{src}: {err}"
            );
        }
        // Ordinary widths still work, positional or by keyword.
        let t = ChatTemplate::new(
            "{{ 'a\nb'|indent(2) }}|{{ 'a\nb'|indent(width=1, first=true) }}|{{ {'k': 1}|tojson(indent=2) }}",
            "",
            "",
        );
        assert_eq!(
            t.render(&[], false).unwrap(),
            "a\n  b| a\n b|{\n  \"k\": 1\n}"
        );
    }

    #[test]
    fn huge_format_widths_are_refused() {
        for src in [
            "{{ '%10000000000d'|format(1) }}",
            "{{ '{:>10000000000}'.format('x') }}",
        ] {
            let err = render_err(src);
            assert!(err.contains("10000000000"), "{src}: {err}");
        }
        let t = ChatTemplate::new("{{ '%03d'|format(7) }}{{ '{}!'.format('x') }}", "", "");
        assert_eq!(t.render(&[], false).unwrap(), "007x!");
    }

    #[test]
    fn a_template_line_too_long_to_parse_is_a_clear_error() {
        // minijinja's column count would overflow on a syntax error at its end.
        let long = format!("{{{{ 'x' }}}}{}\"", "a".repeat(70_000));
        let err = render_err(&long);
        assert!(err.contains("line 1 is longer than"), "{err}");
        // Long lines within the bound, and long templates of short lines, are fine.
        let wide = format!("{{{{ '{}' }}}}", "a".repeat(60_000));
        assert_eq!(
            ChatTemplate::new(wide, "", "")
                .render(&[], false)
                .unwrap()
                .len(),
            60_000
        );
    }

    #[test]
    fn endless_loops_run_out_of_fuel() {
        let err = render_err(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        );
        assert!(err.contains("fuel") || err.contains("too long"), "{err}");
    }

    #[test]
    fn rendered_length_is_capped() {
        // 10 MB per outer step within minijinja's own limits, 64 steps: far more than any
        // prompt, and little fuel.
        let err = render_err(
            "{% set big = 'x' * 10000000 %}{% for i in range(64) %}{{ big }}{% endfor %}",
        );
        assert!(err.contains("longer than"), "{err}");
        // A filter's result is capped as well.
        let err = render_err("{{ ('a\n' * 10000000)|indent(8) }}");
        assert!(err.contains("indent"), "{err}");
    }

    #[test]
    fn real_templates_stay_well_within_the_fuel() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/chat_templates.json");
        let cases: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(!cases.is_empty());
        for case in cases.iter().filter(|case| case["raises"] != true) {
            let messages: Vec<ChatMessage> =
                serde_json::from_value(case["messages"].clone()).unwrap();
            let t = ChatTemplate::new(case["template"].as_str().unwrap(), "<s>", "</s>");
            let used = t.fuel_used(&messages, true).unwrap();
            // A hundredfold margin: long conversations must not run out.
            assert!(used * 100 < CHAT_TEMPLATE_FUEL, "{}: {used}", case["name"]);
        }
    }

    #[test]
    fn a_file_as_folder_and_oversized_files_are_clear_errors() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llama-gqa");
        let err = Tokenizer::from_dir(&fixture.join("config.json"))
            .err()
            .unwrap();
        assert!(matches!(err, ModelError::NotAFolder(_)), "{err}");

        let dir = crate::formats::safetensors::tests::tempdir();
        std::fs::copy(fixture.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
        let jinja = std::fs::File::create(dir.join("chat_template.jinja")).unwrap();
        jinja.set_len(MAX_TEMPLATE_SOURCE_BYTES + 1).unwrap();
        let err = Tokenizer::from_dir(&dir).err().unwrap();
        assert!(
            matches!(&err, ModelError::FileTooLarge { path, .. } if path.ends_with("chat_template.jinja")),
            "{err}"
        );
        std::fs::remove_file(dir.join("chat_template.jinja")).unwrap();
        let config = std::fs::File::create(dir.join("tokenizer_config.json")).unwrap();
        config.set_len(MAX_TOKENIZER_CONFIG_BYTES + 1).unwrap();
        let err = Tokenizer::from_dir(&dir).err().unwrap();
        assert!(matches!(err, ModelError::FileTooLarge { .. }), "{err}");
        // A template string inside tokenizer_config.json is held to the same size.
        let huge = "x".repeat(MAX_TEMPLATE_SOURCE_BYTES as usize + 1);
        std::fs::write(
            dir.join("tokenizer_config.json"),
            serde_json::json!({ "chat_template": huge }).to_string(),
        )
        .unwrap();
        let err = Tokenizer::from_dir(&dir).err().unwrap().to_string();
        assert!(err.contains("chat_template"), "{err}");
    }

    /// The end of Qwen3's template: the generation prompt, and the empty think block
    /// that turns thinking off.
    const QWEN3_TAIL: &str = "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\n' }}\n    {%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\n\n</think>\n\n' }}\n    {%- endif %}\n{%- endif %}";

    #[test]
    fn enable_thinking_reaches_the_template_and_undefined_keeps_its_default() {
        let t = ChatTemplate::new(QWEN3_TAIL, "", "<|im_end|>");
        let messages = [ChatMessage::new("user", "2+2?")];
        let prompt = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n";
        let off = t
            .render_with(&messages, true, &ChatOptions::thinking(Some(false)))
            .unwrap();
        assert_eq!(off, format!("{prompt}<think>\n\n</think>\n\n"));
        let on = t
            .render_with(&messages, true, &ChatOptions::thinking(Some(true)))
            .unwrap();
        assert_eq!(on, prompt);
        // Undefined: the template's default (thinking on), as plain `render` does.
        assert_eq!(t.render(&messages, true).unwrap(), prompt);
        assert_eq!(
            t.render_with(&messages, true, &ChatOptions::default())
                .unwrap(),
            prompt
        );
        assert_eq!(t.thinking_default(), Some(true));
    }

    #[test]
    fn the_thinking_default_is_read_from_the_template() {
        // Off unless asked for.
        let opt_in = ChatTemplate::new(
            "{{ messages[0].content }}{% if enable_thinking is defined and enable_thinking %}<think>{% endif %}",
            "",
            "",
        );
        assert_eq!(opt_in.thinking_default(), Some(false));
        // SmolLM3's style: `{% set enable_thinking = true %}` when undefined.
        let smol = ChatTemplate::new(
            "{%- if enable_thinking is not defined -%}{%- set enable_thinking = true -%}{%- endif -%}{{ '/think' if enable_thinking else '/no_think' }}",
            "",
            "",
        );
        assert_eq!(smol.thinking_default(), Some(true));
        // No switch: not mentioned, or mentioned without effect.
        assert_eq!(ChatTemplate::new(CHATML, "", "").thinking_default(), None);
        let inert = ChatTemplate::new("{# enable_thinking is not used #}hi", "", "");
        assert_eq!(inert.thinking_default(), None);
    }

    #[test]
    fn generation_blocks_render_their_body() {
        // transformers' `{% generation %}` (SmolLM3) marks assistant text; the text
        // renders as if the tags were not there, whitespace control included.
        let src = "{%- for m in messages -%}\n  {% generation %}\n[{{ m.content }}]\n  {%- endgeneration -%}\n!{%- endfor %}";
        let plain = "{%- for m in messages -%}\n  {% if true %}\n[{{ m.content }}]\n  {%- endif -%}\n!{%- endfor %}";
        let messages = [
            ChatMessage::new("assistant", "a"),
            ChatMessage::new("user", "b"),
        ];
        let out = ChatTemplate::new(src, "", "")
            .render(&messages, false)
            .unwrap();
        assert_eq!(
            out,
            ChatTemplate::new(plain, "", "")
                .render(&messages, false)
                .unwrap()
        );
        assert_eq!(out, "[a]![b]!");
        assert_eq!(
            without_generation_tags("{%+ generation -%}x{%endgeneration%}{% if a %}{{ '{%' }}"),
            "{%+ if true -%}x{% endif %}{% if a %}{{ '{%' }}"
        );
        // Odd or unfinished tags pass through untouched, for the parser to refuse.
        for odd in [
            "{%}",
            "{%%}",
            "{%-",
            "{% generation",
            "x{%",
            "{%-%}",
            "é{%é%}é",
        ] {
            assert_eq!(without_generation_tags(odd), odd);
        }
    }

    #[test]
    fn the_template_alone_is_read_without_the_tokenizer() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen2-bias");
        let template = ChatTemplate::from_dir(&fixture).unwrap().unwrap();
        let tokenizer = Tokenizer::from_dir(&fixture).unwrap();
        assert_eq!(Some(&template), tokenizer.chat_template());

        let dir = crate::formats::safetensors::tests::tempdir();
        std::fs::write(dir.join("tokenizer_config.json"), "{}").unwrap();
        assert_eq!(ChatTemplate::from_dir(&dir).unwrap(), None);
        std::fs::write(dir.join("chat_template.jinja"), QWEN3_TAIL).unwrap();
        let template = ChatTemplate::from_dir(&dir).unwrap().unwrap();
        assert_eq!(template.thinking_default(), Some(true));
        assert!(ChatTemplate::from_dir(&dir.join("nope")).is_err());
    }

    #[test]
    fn broken_template_is_a_clear_error() {
        let t = ChatTemplate::new("{% for m in messages %}", "", "");
        let err = t.render(&[], false).unwrap_err();
        assert!(matches!(err, ModelError::ChatTemplate { .. }));
    }
}
