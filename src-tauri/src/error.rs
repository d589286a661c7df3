//! What a failed command rejects with: a code the UI turns into a friendly sentence with
//! the fix (ui/src/lib/errors.ts), and the crate's own precise message as detail.

use serde::Serialize;
use tandem_engine::EngineError;
use tandem_hub::HubError;
use tandem_pairs::PairsError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppError {
    pub code: &'static str,
    pub message: String,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<EngineError> for AppError {
    fn from(error: EngineError) -> Self {
        let message = error.to_string();
        let code = match &error {
            EngineError::Busy => "busy",
            EngineError::NotLoaded => "no_model_loaded",
            EngineError::IncompatibleDraft(_) => "incompatible_pair",
            EngineError::InvalidRequest(m) if m.contains("draft") => "needs_draft",
            EngineError::InvalidRequest(_) | EngineError::BackendUnavailable(_) => {
                "invalid_request"
            }
            EngineError::Io { .. } | EngineError::BadFile { .. } => "io",
            EngineError::Model(model) => model_code(model),
            EngineError::Decode(tandem_decode::DecodeError::EmptyPrompt) => "invalid_request",
            _ => "internal",
        };
        Self::new(code, message)
    }
}

fn model_code(error: &tandem_model::ModelError) -> &'static str {
    use tandem_model::ModelError as M;
    match error {
        M::UnsupportedArchitecture { .. } | M::UnsupportedRope { .. } => "unsupported_model",
        M::MissingFolder(_) | M::MissingFile { .. } => "not_found",
        M::NotAFolder(_) => "invalid_request",
        M::Io { .. } => "io",
        M::ContextOverflow { .. } | M::InvalidArgument(_) => "invalid_request",
        _ => "internal",
    }
}

impl From<HubError> for AppError {
    fn from(error: HubError) -> Self {
        let code = match &error {
            HubError::Gated { .. } => "gated",
            HubError::InvalidRepoId { .. }
            | HubError::RepoNotFound { .. }
            | HubError::RevisionNotFound { .. }
            | HubError::FileNotFound { .. } => "not_found",
            HubError::Network { .. }
            | HubError::OfflineNotCached { .. }
            | HubError::OfflineIncomplete { .. }
            | HubError::Interrupted { .. } => "network",
            HubError::Http { status, .. } if *status >= 500 => "network",
            HubError::InsufficientDiskSpace { .. } => "disk_full",
            HubError::Cancelled => "cancelled",
            HubError::NoSafetensors { .. }
            | HubError::MissingFiles { .. }
            | HubError::BadIndex { .. } => "unsupported_model",
            HubError::InvalidRevision { .. } => "invalid_request",
            HubError::Io { .. } | HubError::BadRef { .. } => "io",
            _ => "internal",
        };
        Self::new(code, error.to_string())
    }
}

impl From<PairsError> for AppError {
    fn from(error: PairsError) -> Self {
        match error {
            PairsError::Hub { source, .. } => (*source).into(),
            PairsError::MissingFolder { .. } => Self::new("not_found", error.to_string()),
            PairsError::NotAFolder { .. } => Self::new("invalid_request", error.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<tauri::Error> for AppError {
    fn from(error: tauri::Error) -> Self {
        Self::internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_for_the_ui() {
        assert_eq!(AppError::from(EngineError::Busy).code, "busy");
        assert_eq!(
            AppError::from(EngineError::NotLoaded).code,
            "no_model_loaded"
        );
        assert_eq!(
            AppError::from(EngineError::InvalidRequest(
                "speculative decoding needs a draft model".into()
            ))
            .code,
            "needs_draft"
        );
        // A request over a bound is the user's to fix, not a missing draft.
        let mut request =
            tandem_engine::GenerateRequest::new(String::from("hi"), tandem_engine::RunMode::Plain);
        request.gamma = tandem_engine::GammaPolicy::Fixed(10_000);
        let bound = tandem_engine::limits::check_generate(&request).unwrap_err();
        let error = AppError::from(bound);
        assert_eq!(error.code, "invalid_request");
        assert!(error.message.contains("10000"), "{}", error.message);
        assert_eq!(AppError::from(HubError::Cancelled).code, "cancelled");
        let gated = HubError::Gated {
            repo: "a/b".into(),
            page: "https://huggingface.co/a/b".into(),
            had_token: false,
            status: 401,
        };
        let error = AppError::from(gated);
        assert_eq!(error.code, "gated");
        assert!(error.message.contains("a/b"));
        let json = serde_json::to_value(AppError::new("io", "disk")).unwrap();
        assert_eq!(json, serde_json::json!({"code": "io", "message": "disk"}));
    }
}
