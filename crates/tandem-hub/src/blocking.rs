//! A blocking face of [`HubClient`] for the CLI, which has no async runtime.

use std::path::Path;

use crate::{CachedModel, DownloadOptions, HubClient, HubError, ModelSnapshot};

/// Runs [`HubClient`] calls on a private single-threaded tokio runtime.
/// Do not call it from inside an async runtime (tokio panics on nesting).
#[derive(Debug)]
pub struct BlockingHubClient {
    client: HubClient,
    runtime: tokio::runtime::Runtime,
}

impl BlockingHubClient {
    pub fn new(client: HubClient) -> Result<Self, HubError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| HubError::io("starting the download runtime", ".", err))?;
        Ok(BlockingHubClient { client, runtime })
    }

    /// A client configured from the process environment.
    pub fn from_env() -> Result<Self, HubError> {
        Self::new(HubClient::from_env()?)
    }

    pub fn client(&self) -> &HubClient {
        &self.client
    }

    /// Runs an async job over [`client`](Self::client) to completion, so async helpers
    /// built on [`HubClient`] serve blocking callers too.
    pub fn block_on<F: std::future::Future>(&self, job: F) -> F::Output {
        self.runtime.block_on(job)
    }

    pub fn cache_dir(&self) -> &Path {
        self.client.cache_dir()
    }

    /// See [`HubClient::download_model`]. Cancel from another thread with
    /// the options' [`CancelToken`](crate::CancelToken).
    pub fn download_model(
        &self,
        repo: &str,
        options: DownloadOptions,
    ) -> Result<ModelSnapshot, HubError> {
        self.block_on(self.client.download_model(repo, options))
    }

    /// See [`HubClient::fetch_config_files`].
    pub fn fetch_config_files(
        &self,
        repo: &str,
        options: DownloadOptions,
    ) -> Result<ModelSnapshot, HubError> {
        self.block_on(self.client.fetch_config_files(repo, options))
    }

    pub fn list_cached_models(&self) -> Result<Vec<CachedModel>, HubError> {
        self.client.list_cached_models()
    }

    pub fn remove_model(&self, repo: &str) -> Result<bool, HubError> {
        self.client.remove_model(repo)
    }
}
