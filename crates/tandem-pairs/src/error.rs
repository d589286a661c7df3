//! Errors of this crate. A pair that does not fit together is not an error:
//! that is a [`Verdict`](crate::Verdict) with problems. These are the cases
//! where there was nothing to judge.

use std::path::PathBuf;

use tandem_hub::HubError;

#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    #[error("the pair catalog is invalid: {reason}")]
    BadCatalog { reason: String },

    #[error("the folder {} does not exist", path.display())]
    MissingFolder { path: PathBuf },

    #[error("{} is a file, not a model folder: give the folder that holds config.json, tokenizer.json and the *.safetensors weights, a .gguf file, or a hub model id such as Qwen/Qwen2.5-0.5B-Instruct", path.display())]
    NotAFolder { path: PathBuf },

    /// Fetching a model's files from the hub failed; the hub's message
    /// already says why (gated, not found, offline…) and what to do.
    /// (Boxed: a `HubError` is large and this error travels in `Result`s.)
    #[error("{source}")]
    Hub {
        repo: String,
        #[source]
        source: Box<HubError>,
    },
}

impl PairsError {
    pub(crate) fn hub(repo: String, source: HubError) -> PairsError {
        PairsError::Hub {
            repo,
            source: Box::new(source),
        }
    }
}
