//! A "model argument" (what a user types or picks): a local folder or a hub
//! repo id, and turning one into a local folder, fetching what is missing.

use std::path::{Path, PathBuf};

use tandem_hub::{BlockingHubClient, DownloadOptions, HubClient};

use crate::doctor::{doctor, DoctorOptions, Verdict};
use crate::error::PairsError;

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelArg {
    Folder(PathBuf),
    /// A hub repo id such as `Qwen/Qwen2.5-0.5B-Instruct`.
    Repo(String),
}

impl ModelArg {
    /// An existing file or folder wins, so a local `org/name` folder is used
    /// as is; text that can only be a path (`./m`, `/m`, `~/m`, `a/b/c`,
    /// `C:\m`) is a folder even when missing, to get "no such folder" rather
    /// than a confusing hub error. Anything else is a repo id.
    pub fn parse(arg: &str) -> ModelArg {
        let path = Path::new(arg);
        let path_like = arg.starts_with(['.', '/', '~'])
            || arg.contains('\\')
            || arg.contains(':')
            || arg.ends_with('/')
            || arg.matches('/').count() > 1;
        if path.exists() || path_like {
            ModelArg::Folder(path.to_path_buf())
        } else {
            ModelArg::Repo(arg.to_string())
        }
    }
}

/// The folder holding the whole model (configs, tokenizer, weights): a
/// local folder as is, or a repo downloaded into (or found in) the cache.
/// This is what a command that loads the model uses.
pub fn resolve_model_dir(
    client: &BlockingHubClient,
    arg: &str,
    options: DownloadOptions,
) -> Result<PathBuf, PairsError> {
    client.block_on(resolve_model_dir_async(client.client(), arg, options))
}

/// [`resolve_model_dir`] for async callers (the desktop app).
pub async fn resolve_model_dir_async(
    client: &HubClient,
    arg: &str,
    options: DownloadOptions,
) -> Result<PathBuf, PairsError> {
    match ModelArg::parse(arg) {
        ModelArg::Folder(path) => existing_folder(path),
        ModelArg::Repo(repo) => client
            .download_model(&repo, options)
            .await
            .map(|snapshot| snapshot.dir)
            .map_err(|source| PairsError::hub(repo, source)),
    }
}

/// A folder with at least the model's configs and tokenizer: a local folder
/// as is (the doctor reports what it lacks), or a repo's config files only.
pub fn fetch_model_configs(
    client: &BlockingHubClient,
    arg: &str,
    options: DownloadOptions,
) -> Result<PathBuf, PairsError> {
    client.block_on(fetch_model_configs_async(client.client(), arg, options))
}

/// [`fetch_model_configs`] for async callers.
pub async fn fetch_model_configs_async(
    client: &HubClient,
    arg: &str,
    options: DownloadOptions,
) -> Result<PathBuf, PairsError> {
    match ModelArg::parse(arg) {
        ModelArg::Folder(path) => config_folder(path),
        ModelArg::Repo(repo) => client
            .fetch_config_files(&repo, options)
            .await
            .map(|snapshot| snapshot.dir)
            .map_err(|source| PairsError::hub(repo, source)),
    }
}

/// Runs the doctor on two model arguments, fetching only the config files
/// of repos (kilobytes, not the weights).
pub fn doctor_models(
    client: &BlockingHubClient,
    draft: &str,
    target: &str,
    options: &DoctorOptions,
) -> Result<Verdict, PairsError> {
    client.block_on(doctor_models_async(client.client(), draft, target, options))
}

/// [`doctor_models`] for async callers.
pub async fn doctor_models_async(
    client: &HubClient,
    draft: &str,
    target: &str,
    options: &DoctorOptions,
) -> Result<Verdict, PairsError> {
    let draft_dir = fetch_model_configs_async(client, draft, DownloadOptions::new()).await?;
    let target_dir = fetch_model_configs_async(client, target, DownloadOptions::new()).await?;
    Ok(doctor(&draft_dir, &target_dir, options))
}

fn existing_folder(path: PathBuf) -> Result<PathBuf, PairsError> {
    if path.is_dir() || tandem_model::formats::gguf::is_gguf_file(&path) {
        Ok(path)
    } else if path.exists() {
        Err(PairsError::NotAFolder { path })
    } else {
        Err(PairsError::MissingFolder { path })
    }
}

/// A local folder for the doctor: a missing one is passed on (the doctor lists
/// the files it lacks), but a file is refused here, before `config.json` is
/// joined onto it.
fn config_folder(path: PathBuf) -> Result<PathBuf, PairsError> {
    if path.exists() && !path.is_dir() && !tandem_model::formats::gguf::is_gguf_file(&path) {
        Err(PairsError::NotAFolder { path })
    } else {
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_not_taken_for_a_model_folder() {
        // Tests run in the crate's folder, which has `Cargo.toml`.
        let file = PathBuf::from("Cargo.toml");
        assert_eq!(
            ModelArg::parse("Cargo.toml"),
            ModelArg::Folder(file.clone())
        );
        let err = existing_folder(file.clone()).unwrap_err();
        assert!(matches!(err, PairsError::NotAFolder { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("Cargo.toml is a file, not a model folder")
                && text.contains("config.json"),
            "{text}"
        );
        let err = config_folder(file).unwrap_err();
        assert!(matches!(err, PairsError::NotAFolder { .. }), "{err}");
        // A missing folder still goes to the doctor, which lists what is missing.
        assert!(config_folder(PathBuf::from("/nonexistent/tandem")).is_ok());
    }

    #[test]
    fn repo_ids_and_paths_are_told_apart() {
        let repo = |s: &str| ModelArg::Repo(s.to_string());
        let folder = |s: &str| ModelArg::Folder(PathBuf::from(s));
        assert_eq!(
            ModelArg::parse("Qwen/Qwen2.5-0.5B-Instruct"),
            repo("Qwen/Qwen2.5-0.5B-Instruct")
        );
        assert_eq!(ModelArg::parse("gpt2"), repo("gpt2"));
        for path in ["./m", "/nonexistent/m", "~/m", "a/b/c", "m/", "C:\\m"] {
            assert_eq!(ModelArg::parse(path), folder(path), "{path}");
        }
        // An existing folder wins even when it reads like a repo id (tests
        // run in the crate's folder, which has `src`).
        assert_eq!(ModelArg::parse("src"), folder("src"));
    }
}
