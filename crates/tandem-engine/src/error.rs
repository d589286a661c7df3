//! Engine errors: each wraps the layer that failed, with its own precise message.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] tandem_model::ModelError),

    #[error(transparent)]
    Decode(#[from] tandem_decode::DecodeError),

    #[error("the draft model cannot draft for this target: {0}")]
    IncompatibleDraft(String),

    #[error("{0}")]
    InvalidRequest(String),

    #[error("the {0} backend is not available in this build (rebuild with `--features cuda`)")]
    BackendUnavailable(&'static str),

    /// A run already holds the models; the caller may retry once it ends or cancel it.
    #[error("a run is in progress")]
    Busy,

    #[error("no models are loaded")]
    NotLoaded,

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A run log or suite file that cannot be read back.
    #[error("{path}: {reason}")]
    BadFile { path: String, reason: String },
}

impl EngineError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
