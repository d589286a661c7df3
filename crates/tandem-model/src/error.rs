//! Typed errors for everything a user can get wrong: a folder, a file, a field, a tensor.
//!
//! Every variant names the file (and the field or tensor) so the message alone tells the
//! user what to fix. Nothing in this crate panics on user input.

use std::path::PathBuf;

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model folder {0} does not exist")]
    MissingFolder(PathBuf),

    #[error("{0} is a file, not a model folder: give the folder that holds config.json, tokenizer.json and the *.safetensors weights, or a .gguf file")]
    NotAFolder(PathBuf),

    #[error("{path}: file not found ({what})")]
    MissingFile { path: PathBuf, what: &'static str },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: the file is {size} bytes, more than the {limit} bytes a {what} may have")]
    FileTooLarge {
        path: PathBuf,
        what: &'static str,
        size: u64,
        limit: u64,
    },

    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("{path}: field `{field}`: {reason}")]
    BadField {
        path: PathBuf,
        field: String,
        reason: String,
    },

    #[error(
        "{path}: unsupported architecture `{architecture}` (supported: {})",
        crate::config::Architecture::SUPPORTED
    )]
    UnsupportedArchitecture { path: PathBuf, architecture: String },

    #[error("{path}: `{architecture}` is not supported: {why}")]
    UnsupportedFamily {
        path: PathBuf,
        architecture: String,
        why: &'static str,
    },

    #[error("{path}: unsupported rope scaling type `{rope_type}` (supported: none/default, llama3, linear, longrope)")]
    UnsupportedRope { path: PathBuf, rope_type: String },

    #[error("{path}: corrupt safetensors file: {reason}")]
    CorruptSafetensors { path: PathBuf, reason: String },

    #[error("{path}: corrupt GGUF file: {reason}")]
    CorruptGguf { path: PathBuf, reason: String },

    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },

    #[error("{path}: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },

    #[error("{path}: tensor `{name}` has dtype {dtype}, expected F32, F16 or BF16")]
    TensorDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },

    #[error("token id {token} is out of range: the model's vocabulary has {vocab_size} entries")]
    TokenOutOfRange { token: u32, vocab_size: usize },

    #[error("the input needs {needed} positions but the context holds {capacity} (max_position_embeddings or the chosen context length); shorten the prompt or lower max new tokens")]
    ContextOverflow { needed: usize, capacity: usize },

    #[error("{path}: tokenizer error: {reason}")]
    Tokenizer { path: PathBuf, reason: String },

    #[error("{path}: chat template error: {reason}")]
    ChatTemplate { path: PathBuf, reason: String },

    #[error("{path}: the model has no chat template (neither `chat_template` in tokenizer_config.json nor chat_template.jinja)")]
    NoChatTemplate { path: PathBuf },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn field(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::BadField {
            path: path.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}
