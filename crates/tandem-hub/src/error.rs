//! Errors worded for the person at the keyboard: each says what went wrong and,
//! where there is one, what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong while finding or fetching a model.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid model id {repo:?}: expected \"org/name\" made of letters, digits, '-', '_' and '.'")]
    InvalidRepoId { repo: String },

    #[error("invalid hub endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },

    #[error("invalid revision {revision:?}: {reason}")]
    InvalidRevision { revision: String, reason: String },

    #[error(
        "the cache file {} holds {content:?}, not a commit hash; delete it and download the model again",
        path.display()
    )]
    BadRef { path: PathBuf, content: String },

    #[error("no such model: {repo}")]
    RepoNotFound { repo: String },

    #[error("model {repo} has no revision {revision:?}")]
    RevisionNotFound { repo: String, revision: String },

    #[error("model {repo} has no file {file} at revision {revision}")]
    FileNotFound {
        repo: String,
        revision: String,
        file: String,
    },

    #[error("{}", gated_message(repo, page, *had_token))]
    Gated {
        repo: String,
        /// The model's page, where the licence is accepted.
        page: String,
        /// Whether a token was sent (it lacks access) or none was found.
        had_token: bool,
        status: u16,
    },

    #[error("{}", no_safetensors_message(repo, pickle_files))]
    NoSafetensors {
        repo: String,
        /// The pickle weight files the repo has instead (never loaded).
        pickle_files: Vec<String>,
    },

    #[error("model {repo} lacks files Tandem needs: {}", files.join(", "))]
    MissingFiles { repo: String, files: Vec<String> },

    #[error("bad model.safetensors.index.json in {repo}: {reason}")]
    BadIndex { repo: String, reason: String },

    #[error("checksum mismatch for {file}: expected sha {expected}, got {actual}; the corrupt download was deleted")]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },

    #[error("size mismatch for {file}: expected {expected} bytes, got {actual}; the bad download was deleted")]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },

    #[error(
        "not enough free disk space in {}: the download needs {} ({needed} bytes) but only {} ({available} bytes) is free",
        path.display(), human_bytes(*needed), human_bytes(*available)
    )]
    InsufficientDiskSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },

    #[error("cannot reach {endpoint} ({cause}) and model {repo} is not in the cache at {}", cache.display())]
    OfflineNotCached {
        repo: String,
        endpoint: String,
        cause: String,
        cache: PathBuf,
    },

    #[error("cannot reach {endpoint} ({cause}) and the cached copy of {repo} is incomplete: missing {}", missing.join(", "))]
    OfflineIncomplete {
        repo: String,
        endpoint: String,
        cause: String,
        missing: Vec<String>,
    },

    #[error(
        "download of {file} stopped at {done} of {total} bytes ({reason}); run it again to resume"
    )]
    Interrupted {
        file: String,
        done: u64,
        total: u64,
        reason: String,
    },

    #[error("download cancelled; run it again to resume")]
    Cancelled,

    #[error("network error while {context}: {detail}")]
    Network {
        context: String,
        /// The error and its causes, e.g. "connection closed before message completed".
        detail: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("the hub answered HTTP {status} for {url}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Http {
        url: String,
        status: u16,
        message: Option<String>,
    },

    #[error("unexpected answer from {url}: {reason}")]
    Protocol { url: String, reason: String },

    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HubError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HubError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl HubError {
    pub(crate) fn network(context: impl Into<String>, source: reqwest::Error) -> Self {
        HubError::Network {
            context: context.into(),
            detail: error_chain(&source),
            source,
        }
    }
}

/// An error and its causes on one line; reqwest's own message alone
/// ("error sending request") hides the useful part ("connection refused").
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn gated_message(repo: &str, page: &str, had_token: bool) -> String {
    let token_state = if had_token {
        "the Hugging Face token given has no access to it"
    } else {
        "no Hugging Face token was found"
    };
    format!(
        "model {repo} is gated and {token_state}. Accept its licence on {page} (logged in to \
         Hugging Face), then give Tandem an access token: set HF_TOKEN, run \
         `huggingface-cli login`, or paste it into the app's token field"
    )
}

fn no_safetensors_message(repo: &str, pickle_files: &[String]) -> String {
    if pickle_files.is_empty() {
        format!("model {repo} has no safetensors weights (model.safetensors or model.safetensors.index.json)")
    } else {
        format!(
            "model {repo} only has PyTorch pickle weights ({}); Tandem loads only .safetensors \
             and never loads pickle files, which can run code. Look for a safetensors \
             conversion of this model",
            pickle_files.join(", ")
        )
    }
}

/// Bytes in binary units, e.g. "1.5 GiB" (the unit `du -h` and file managers on
/// Linux use). The one formatter of sizes for messages, tables and the CLI.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_a_readable_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn gated_message_says_where_and_how() {
        let err = HubError::Gated {
            repo: "meta/llama".into(),
            page: "https://huggingface.co/meta/llama".into(),
            had_token: false,
            status: 401,
        };
        let text = err.to_string();
        assert!(text.contains("https://huggingface.co/meta/llama"), "{text}");
        assert!(text.contains("HF_TOKEN"), "{text}");
        assert!(text.contains("huggingface-cli login"), "{text}");
        assert!(text.contains("no Hugging Face token"), "{text}");
    }

    #[test]
    fn disk_space_message_has_both_numbers() {
        let err = HubError::InsufficientDiskSpace {
            path: "/cache".into(),
            needed: 2048,
            available: 1024,
        };
        let text = err.to_string();
        assert!(
            text.contains("2048 bytes") && text.contains("1024 bytes"),
            "{text}"
        );
    }
}
