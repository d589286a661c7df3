//! `HubClient`: plans what a model needs, skips what the cache already has,
//! fetches the rest, and falls back to the cache when the hub is unreachable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::cache::RepoCache;
use crate::disk::ensure_free_space;
use crate::file_plan::{
    plan_files, shards_from_index, FileSet, OPTIONAL_CONFIG_FILES, REQUIRED_CONFIG_FILES,
    SAFETENSORS_INDEX, SINGLE_SAFETENSORS,
};
use crate::http::{FileMetadata, HubHttp, InfoFailure};
use crate::inventory::{list_cached_models, remove_model};
use crate::lock::lock_blob;
use crate::progress::{DownloadEvent, EventSink, PlannedFile, ProgressReporter};
use crate::repo_id::{is_commit_hash, is_valid_etag, validate_repo_id, validate_revision};
use crate::transfer::{download_blob, BlobJob, RetryPolicy};
use crate::{CachedModel, CancelToken, HubEnv, HubError};

const DEFAULT_REVISION: &str = "main";

/// Talks to one hub endpoint and stores into one cache folder.
#[derive(Debug, Clone)]
pub struct HubClient {
    http: HubHttp,
    hub_cache: PathBuf,
    offline: bool,
    retry: RetryPolicy,
    progress_interval: Duration,
}

/// Settings for a [`HubClient`]; unset ones come from the environment
/// (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN`, `HF_HUB_OFFLINE`).
#[derive(Debug, Clone)]
pub struct HubClientBuilder {
    env: HubEnv,
    endpoint: Option<String>,
    cache_dir: Option<PathBuf>,
    /// `Some(None)`: send no token even if the environment has one.
    token: Option<Option<String>>,
    offline: Option<bool>,
    max_retries: u32,
    retry_delay: Duration,
    progress_interval: Duration,
}

impl Default for HubClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HubClientBuilder {
    /// Defaults from the process environment.
    pub fn new() -> Self {
        Self::with_env(HubEnv::from_process())
    }

    /// Defaults from an explicit [`HubEnv`] (tests, or an app with its own settings).
    pub fn with_env(env: HubEnv) -> Self {
        HubClientBuilder {
            env,
            endpoint: None,
            cache_dir: None,
            token: None,
            offline: None,
            max_retries: 3,
            retry_delay: Duration::from_millis(500),
            progress_interval: Duration::from_millis(100),
        }
    }

    /// The hub's base URL, e.g. `https://huggingface.co` or a mirror.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into().trim_end_matches('/').to_string());
        self
    }

    /// The hub cache folder (what `HF_HUB_CACHE` names).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// A token typed into the app; wins over `HF_TOKEN` and the token file.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into().trim().to_string();
        self.token = Some(Some(token).filter(|t| !t.is_empty()));
        self
    }

    /// Send no token at all.
    pub fn anonymous(mut self) -> Self {
        self.token = Some(None);
        self
    }

    /// Never touch the network; use only complete cached snapshots.
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = Some(offline);
        self
    }

    /// Ranged retries per file after a dropped connection (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Wait before the first retry; doubles for each next one (default 500 ms).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Least time between two `Progress` events of a file (default 100 ms).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    pub fn build(self) -> Result<HubClient, HubError> {
        let endpoint = self.endpoint.unwrap_or_else(|| self.env.endpoint.clone());
        let token = match self.token {
            Some(explicit) => explicit,
            None => self.env.token(),
        };
        Ok(HubClient {
            http: HubHttp::new(&endpoint, token)?,
            hub_cache: self.cache_dir.unwrap_or(self.env.hub_cache),
            offline: self.offline.unwrap_or(self.env.offline),
            retry: RetryPolicy {
                max_retries: self.max_retries,
                first_delay: self.retry_delay,
            },
            progress_interval: self.progress_interval,
        })
    }
}

/// Per-call settings: revision, where events go, and the cancel token.
#[derive(Debug, Clone, Default)]
pub struct DownloadOptions {
    /// Branch, tag or commit; `main` when unset.
    pub revision: Option<String>,
    pub events: EventSink,
    pub cancel: CancelToken,
}

impl DownloadOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }

    pub fn on_event(mut self, callback: impl Fn(DownloadEvent) + Send + Sync + 'static) -> Self {
        self.events = EventSink::new(callback);
        self
    }

    pub fn events(mut self, sink: EventSink) -> Self {
        self.events = sink;
        self
    }

    pub fn cancel_token(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }
}

/// A model's files in the cache, ready to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelSnapshot {
    pub repo_id: String,
    pub revision: String,
    pub commit: String,
    /// `…/models--{org}--{name}/snapshots/{commit}`.
    pub dir: PathBuf,
    /// Repo-relative names of the files Tandem needs, all present in `dir`.
    pub files: Vec<String>,
    /// True when the hub was not asked (offline) and the cache was trusted.
    pub from_cache_only: bool,
    /// Bytes transferred by this call.
    pub downloaded_bytes: u64,
}

impl ModelSnapshot {
    pub fn path(&self, file: &str) -> PathBuf {
        let mut path = self.dir.clone();
        path.extend(file.split('/'));
        path
    }

    /// The `.safetensors` weight files (one, or the shards).
    pub fn weight_files(&self) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter(|file| file.ends_with(".safetensors"))
            .map(|file| self.path(file))
            .collect()
    }
}

/// A file of the plan and what it needs.
#[derive(Debug)]
struct PreparedFile {
    file: String,
    size: u64,
    state: FileState,
}

#[derive(Debug)]
enum FileState {
    /// Linked in the snapshot with the right size: nothing to do.
    InSnapshot,
    /// The blob is complete (fetched for another commit, or by another
    /// tool); only the snapshot link is missing.
    BlobPresent(FileMetadata),
    /// Bytes to transfer; `partial` of them are already on disk.
    Download { meta: FileMetadata, partial: u64 },
}

impl HubClient {
    /// A client configured from the process environment.
    pub fn from_env() -> Result<Self, HubError> {
        HubClientBuilder::new().build()
    }

    pub fn builder() -> HubClientBuilder {
        HubClientBuilder::new()
    }

    pub fn endpoint(&self) -> &str {
        self.http.endpoint()
    }

    pub fn cache_dir(&self) -> &Path {
        &self.hub_cache
    }

    /// Configs, tokenizer and safetensors weights of `repo` (e.g.
    /// `Qwen/Qwen2.5-0.5B-Instruct`), downloaded into or found in the cache.
    pub async fn download_model(
        &self,
        repo: &str,
        options: DownloadOptions,
    ) -> Result<ModelSnapshot, HubError> {
        self.fetch(repo, options, FileSet::Model).await
    }

    /// Only `config.json`, `tokenizer.json`, `tokenizer_config.json` and,
    /// when the repo has them, `generation_config.json` and
    /// `chat_template.jinja`: enough to judge a model before its weights.
    pub async fn fetch_config_files(
        &self,
        repo: &str,
        options: DownloadOptions,
    ) -> Result<ModelSnapshot, HubError> {
        self.fetch(repo, options, FileSet::ConfigOnly).await
    }

    /// Every model in the cache folder, including ones Python tools fetched.
    pub fn list_cached_models(&self) -> Result<Vec<CachedModel>, HubError> {
        list_cached_models(&self.hub_cache)
    }

    /// Deletes `repo`'s `models--*` folder; `Ok(false)` if it was not cached.
    pub fn remove_model(&self, repo: &str) -> Result<bool, HubError> {
        remove_model(&self.hub_cache, repo)
    }

    async fn fetch(
        &self,
        repo: &str,
        options: DownloadOptions,
        set: FileSet,
    ) -> Result<ModelSnapshot, HubError> {
        validate_repo_id(repo)?;
        let revision = options
            .revision
            .clone()
            .unwrap_or_else(|| DEFAULT_REVISION.to_string());
        // It becomes a path under refs/ and a URL segment.
        validate_revision(&revision)?;
        let cache = RepoCache::new(&self.hub_cache, repo);
        if self.offline {
            let cause = "HF_HUB_OFFLINE is set".to_string();
            return self.cached_snapshot(&cache, repo, &revision, set, &options.events, cause);
        }
        let info = match self.http.repo_info(repo, &revision).await {
            Ok(info) => info,
            Err(InfoFailure::Unreachable(cause)) => {
                return self.cached_snapshot(&cache, repo, &revision, set, &options.events, cause);
            }
            Err(InfoFailure::Hub(err)) => return Err(err),
        };
        let commit = info.sha;
        if !is_commit_hash(&commit) {
            return Err(HubError::Protocol {
                url: self.http.info_url(repo, &revision).to_string(),
                reason: format!("{commit:?} is not a commit hash"),
            });
        }
        let sizes: BTreeMap<String, Option<u64>> = info
            .siblings
            .into_iter()
            .map(|sibling| (sibling.rfilename, sibling.size))
            .collect();
        let listing: BTreeSet<String> = sizes.keys().cloned().collect();
        let plan = plan_files(repo, set, &listing)?;
        let mut files = plan.files;
        if let Some(index) = plan.sharded_index {
            let shards = self
                .read_shard_list(&cache, repo, &commit, &index, &sizes, &options.cancel)
                .await?;
            if let Some(absent) = shards.iter().find(|shard| !listing.contains(*shard)) {
                return Err(HubError::BadIndex {
                    repo: repo.to_string(),
                    reason: format!("it lists {absent}, which the repo does not have"),
                });
            }
            files.extend(shards);
        }

        let mut prepared = Vec::with_capacity(files.len());
        for file in files {
            let known_size = sizes.get(&file).copied().flatten();
            prepared.push(
                self.prepare(&cache, repo, &commit, file, known_size)
                    .await?,
            );
        }
        let remaining: u64 = prepared
            .iter()
            .map(|p| match &p.state {
                FileState::Download { partial, .. } => p.size - partial,
                _ => 0,
            })
            .sum();
        ensure_free_space(&cache.dir(), remaining)?;

        let planned: Vec<PlannedFile> = prepared
            .iter()
            .map(|p| PlannedFile {
                file: p.file.clone(),
                size: p.size,
                cached: !matches!(p.state, FileState::Download { .. }),
            })
            .collect();
        let total_bytes = planned.iter().map(|p| p.size).sum();
        let cached_bytes = planned.iter().filter(|p| p.cached).map(|p| p.size).sum();
        options.events.emit(DownloadEvent::Started {
            repo: repo.to_string(),
            revision: revision.clone(),
            commit: commit.clone(),
            files: planned,
            total_bytes,
            cached_bytes,
        });
        let mut reporter = ProgressReporter::new(
            options.events.clone(),
            self.progress_interval,
            total_bytes,
            cached_bytes,
        );
        let mut names = Vec::with_capacity(prepared.len());
        for file in prepared {
            self.complete(&cache, repo, &commit, &file, &mut reporter, &options.cancel)
                .await?;
            names.push(file.file);
        }

        // The ref moves only once the snapshot is complete, so an offline
        // fallback never lands on a half-downloaded commit; and never for a
        // config-only fetch (the doctor's "Check"), whose snapshot has no
        // weights: after an upstream commit that touched only a README it
        // would make a complete model look incomplete to every reader of the
        // cache (this app's model list, offline runs, Python tools).
        if set == FileSet::Model && revision != commit {
            cache.write_ref(&revision, &commit)?;
        }
        let snapshot = ModelSnapshot {
            repo_id: repo.to_string(),
            revision,
            dir: cache.snapshot_dir(&commit),
            commit,
            files: names,
            from_cache_only: false,
            downloaded_bytes: reporter.downloaded(),
        };
        options.events.emit(DownloadEvent::Done {
            repo: repo.to_string(),
            commit: snapshot.commit.clone(),
            snapshot_dir: snapshot.dir.clone(),
            downloaded_bytes: snapshot.downloaded_bytes,
            elapsed_secs: reporter.elapsed().as_secs_f64(),
        });
        Ok(snapshot)
    }

    /// Works out what `file` needs: nothing when the snapshot already has it
    /// (no request at all), else a HEAD for its etag and size.
    async fn prepare(
        &self,
        cache: &RepoCache,
        repo: &str,
        commit: &str,
        file: String,
        known_size: Option<u64>,
    ) -> Result<PreparedFile, HubError> {
        if cache.snapshot_has(commit, &file, known_size) {
            let size = std::fs::metadata(cache.snapshot_file(commit, &file))
                .map(|meta| meta.len())
                .unwrap_or_default();
            return Ok(PreparedFile {
                file,
                size,
                state: FileState::InSnapshot,
            });
        }
        let meta = self.http.file_metadata(repo, commit, &file).await?;
        if !is_valid_etag(&meta.etag) {
            let shown: String = meta.etag.chars().take(140).collect();
            return Err(HubError::Protocol {
                url: self.http.resolve_url(repo, commit, &file).to_string(),
                reason: format!(
                    "etag {shown:?} cannot name a blob (expected 1 to 128 of A-Z, a-z, 0-9, '-', '_')"
                ),
            });
        }
        let size = meta.size;
        let state = if file_len(&cache.blob_path(&meta.etag)) == Some(size) {
            FileState::BlobPresent(meta)
        } else {
            let partial = file_len(&cache.partial_path(&meta.etag))
                .filter(|len| *len <= size)
                .unwrap_or(0);
            FileState::Download { meta, partial }
        };
        Ok(PreparedFile { file, size, state })
    }

    /// Brings one prepared file into the snapshot, transferring if needed.
    async fn complete(
        &self,
        cache: &RepoCache,
        repo: &str,
        commit: &str,
        prepared: &PreparedFile,
        reporter: &mut ProgressReporter,
        cancel: &CancelToken,
    ) -> Result<(), HubError> {
        let file = &prepared.file;
        let cached_event = || DownloadEvent::FileCached {
            file: file.clone(),
            size: prepared.size,
        };
        let meta = match &prepared.state {
            FileState::InSnapshot => {
                reporter.emit(cached_event());
                return Ok(());
            }
            FileState::BlobPresent(meta) => {
                cache.link_snapshot(commit, file, &meta.etag)?;
                reporter.emit(cached_event());
                return Ok(());
            }
            FileState::Download { meta, .. } => meta,
        };
        let _lock = lock_blob(&cache.lock_path(&meta.etag), cancel).await?;
        if file_len(&cache.blob_path(&meta.etag)) == Some(meta.size) {
            // Another process finished it while we waited for the lock.
            reporter.start_file(file, meta.size);
            reporter.resume_file_at(meta.size);
            reporter.finish_file();
        } else {
            let job = BlobJob {
                repo: repo.to_string(),
                revision: commit.to_string(),
                file: file.clone(),
                url: meta.download_url.clone(),
                etag: meta.etag.clone(),
                size: meta.size,
                blob: cache.blob_path(&meta.etag),
                partial: cache.partial_path(&meta.etag),
            };
            download_blob(&self.http, &job, reporter, cancel, self.retry).await?;
        }
        cache.link_snapshot(commit, file, &meta.etag)
    }

    /// Shard names live inside the index, so the index is fetched (quietly,
    /// it is small) before the download plan can be made.
    async fn read_shard_list(
        &self,
        cache: &RepoCache,
        repo: &str,
        commit: &str,
        index: &str,
        sizes: &BTreeMap<String, Option<u64>>,
        cancel: &CancelToken,
    ) -> Result<Vec<String>, HubError> {
        let known_size = sizes.get(index).copied().flatten();
        let prepared = self
            .prepare(cache, repo, commit, index.to_string(), known_size)
            .await?;
        let mut quiet = ProgressReporter::new(EventSink::none(), Duration::MAX, prepared.size, 0);
        self.complete(cache, repo, commit, &prepared, &mut quiet, cancel)
            .await?;
        let path = cache.snapshot_file(commit, index);
        let bytes = std::fs::read(&path).map_err(|err| HubError::io("reading", &path, err))?;
        shards_from_index(repo, &bytes)
    }

    /// The complete cached snapshot of `revision`, for when the hub cannot
    /// be asked; errors name what is missing.
    fn cached_snapshot(
        &self,
        cache: &RepoCache,
        repo: &str,
        revision: &str,
        set: FileSet,
        events: &EventSink,
        cause: String,
    ) -> Result<ModelSnapshot, HubError> {
        let endpoint = self.http.endpoint().to_string();
        let pinned = is_commit_hash(revision).then(|| revision.to_ascii_lowercase());
        let pointed = match &pinned {
            Some(commit) if cache.snapshot_dir(commit).is_dir() => Some(commit.clone()),
            _ => cache.read_ref(revision)?,
        };
        let mut chosen = None;
        let mut pointed_missing = None;
        if let Some(commit) = &pointed {
            let (files, missing) = self.cached_files(cache, repo, commit, set)?;
            if missing.is_empty() {
                chosen = Some((commit.clone(), files));
            } else {
                pointed_missing = Some(missing);
            }
        }
        // A branch's ref may point at a snapshot without the weights (moved by
        // an older Tandem's config-only fetch, or by a tool that fetched one
        // file of a newer commit), or be missing (config-only fetches write
        // none): the newest complete snapshot that no other ref claims is
        // then this branch's last complete download. A commit hash means
        // exactly that commit.
        if chosen.is_none() && pinned.is_none() {
            let claimed = cache.commits_of_other_refs(revision);
            chosen = cache
                .snapshots_newest_first()
                .into_iter()
                .filter(|commit| Some(commit) != pointed.as_ref() && !claimed.contains(commit))
                .find_map(
                    |commit| match self.cached_files(cache, repo, &commit, set) {
                        Ok((files, missing)) if missing.is_empty() => Some((commit, files)),
                        _ => None,
                    },
                );
        }
        let (commit, files) = match (chosen, pointed_missing) {
            (Some(found), _) => found,
            (None, Some(missing)) => {
                return Err(HubError::OfflineIncomplete {
                    repo: repo.to_string(),
                    endpoint,
                    cause,
                    missing,
                })
            }
            (None, None) => {
                return Err(HubError::OfflineNotCached {
                    repo: repo.to_string(),
                    endpoint,
                    cause,
                    cache: self.hub_cache.clone(),
                })
            }
        };
        let dir = cache.snapshot_dir(&commit);
        events.emit(DownloadEvent::UsingCache {
            repo: repo.to_string(),
            commit: commit.clone(),
            reason: cause,
        });
        events.emit(DownloadEvent::Done {
            repo: repo.to_string(),
            commit: commit.clone(),
            snapshot_dir: dir.clone(),
            downloaded_bytes: 0,
            elapsed_secs: 0.0,
        });
        Ok(ModelSnapshot {
            repo_id: repo.to_string(),
            revision: revision.to_string(),
            commit,
            dir,
            files,
            from_cache_only: true,
            downloaded_bytes: 0,
        })
    }

    /// The files of `set` that snapshot `commit` has, and those it lacks.
    fn cached_files(
        &self,
        cache: &RepoCache,
        repo: &str,
        commit: &str,
        set: FileSet,
    ) -> Result<(Vec<String>, Vec<String>), HubError> {
        let present = |file: &str| cache.snapshot_has(commit, file, None);
        let mut files = Vec::new();
        let mut missing = Vec::new();
        for file in REQUIRED_CONFIG_FILES {
            if present(file) {
                files.push(file.to_string());
            } else {
                missing.push(file.to_string());
            }
        }
        files.extend(
            OPTIONAL_CONFIG_FILES
                .iter()
                .filter(|file| present(file))
                .map(|file| file.to_string()),
        );
        if set == FileSet::Model {
            if present(SINGLE_SAFETENSORS) {
                files.push(SINGLE_SAFETENSORS.to_string());
            } else if present(SAFETENSORS_INDEX) {
                files.push(SAFETENSORS_INDEX.to_string());
                let path = cache.snapshot_file(commit, SAFETENSORS_INDEX);
                let bytes =
                    std::fs::read(&path).map_err(|err| HubError::io("reading", &path, err))?;
                for shard in shards_from_index(repo, &bytes)? {
                    if present(&shard) {
                        files.push(shard);
                    } else {
                        missing.push(shard);
                    }
                }
            } else {
                missing.push(format!(
                    "{SINGLE_SAFETENSORS} (or {SAFETENSORS_INDEX} and its shards)"
                ));
            }
        }
        Ok((files, missing))
    }
}

fn file_len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|meta| meta.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_in(dir: &Path) -> HubEnv {
        HubEnv::resolve(|_| None, Some(dir))
    }

    #[test]
    fn builder_overrides_environment() {
        let home = tempfile::tempdir().unwrap();
        let env = HubEnv {
            token_from_env: Some("hf_env".into()),
            offline: true,
            ..env_in(home.path())
        };
        let client = HubClientBuilder::with_env(env.clone())
            .endpoint("http://127.0.0.1:9/")
            .cache_dir(home.path().join("c"))
            .offline(false)
            .build()
            .unwrap();
        assert_eq!(client.endpoint(), "http://127.0.0.1:9");
        assert_eq!(client.cache_dir(), home.path().join("c"));
        assert!(!client.offline);
        assert!(client.http.has_token());

        let defaults = HubClientBuilder::with_env(env).anonymous().build().unwrap();
        assert_eq!(defaults.endpoint(), "https://huggingface.co");
        assert_eq!(
            defaults.cache_dir(),
            home.path().join(".cache/huggingface/hub")
        );
        assert!(defaults.offline);
        assert!(!defaults.http.has_token());
    }

    #[tokio::test]
    async fn invalid_repo_ids_never_reach_the_network() {
        let home = tempfile::tempdir().unwrap();
        let client = HubClientBuilder::with_env(env_in(home.path()))
            .endpoint("http://127.0.0.1:9")
            .build()
            .unwrap();
        let err = client
            .download_model("../etc", DownloadOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(err, HubError::InvalidRepoId { .. }));
    }

    /// A desktop app hands downloads to `tokio::spawn`, which needs `Send`.
    #[test]
    fn download_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let home = tempfile::tempdir().unwrap();
        let client = HubClientBuilder::with_env(env_in(home.path()))
            .build()
            .unwrap();
        let future = client.download_model("o/m", DownloadOptions::new());
        assert_send(&future);
    }

    #[test]
    fn snapshot_paths() {
        let snapshot = ModelSnapshot {
            repo_id: "o/m".into(),
            revision: "main".into(),
            commit: "c".into(),
            dir: PathBuf::from("/s"),
            files: vec!["config.json".into(), "model.safetensors".into()],
            from_cache_only: false,
            downloaded_bytes: 0,
        };
        assert_eq!(
            snapshot.weight_files(),
            vec![PathBuf::from("/s/model.safetensors")]
        );
    }
}
