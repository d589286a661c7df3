//! What models the cache holds (ours and those fetched by Python tools), and
//! removing one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cache::{RepoCache, INCOMPLETE_SUFFIX};
use crate::repo_id::validate_repo_id;
use crate::HubError;

const MODEL_FOLDER_PREFIX: &str = "models--";

/// One `models--{org}--{name}` folder of the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedModel {
    pub repo_id: String,
    pub dir: PathBuf,
    /// Bytes the folder takes: blobs (partials included) and copied files.
    pub size_on_disk: u64,
    /// Bytes of unfinished downloads (`.incomplete` partials) among them.
    pub partial_bytes: u64,
    pub snapshots: Vec<CachedSnapshot>,
}

/// One `snapshots/{commit}` folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedSnapshot {
    pub commit: String,
    /// Refs pointing here, e.g. `["main"]`.
    pub refs: Vec<String>,
    /// Repo-relative paths present in the snapshot.
    pub files: Vec<String>,
}

impl CachedModel {
    /// The commit `refs/main` points to.
    pub fn main_commit(&self) -> Option<&str> {
        self.snapshots
            .iter()
            .find(|snapshot| snapshot.refs.iter().any(|r| r == "main"))
            .map(|snapshot| snapshot.commit.as_str())
    }
}

pub(crate) fn list_cached_models(hub_cache: &Path) -> Result<Vec<CachedModel>, HubError> {
    let entries = match std::fs::read_dir(hub_cache) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(HubError::io("listing the cache", hub_cache, err)),
    };
    let mut models = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(folder) = name.strip_prefix(MODEL_FOLDER_PREFIX) else {
            continue;
        };
        if !entry.path().is_dir() {
            continue;
        }
        models.push(describe_model(&entry.path(), folder.replace("--", "/")));
    }
    models.sort_by(|a, b| a.repo_id.cmp(&b.repo_id));
    Ok(models)
}

fn describe_model(dir: &Path, repo_id: String) -> CachedModel {
    let mut refs_by_commit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ref_name in relative_files(&dir.join("refs")) {
        let commit = std::fs::read_to_string(dir.join("refs").join(&ref_name)).unwrap_or_default();
        refs_by_commit
            .entry(commit.trim().to_string())
            .or_default()
            .push(ref_name);
    }

    let mut size_on_disk = 0;
    let mut partial_bytes = 0;
    for blob in relative_files(&dir.join("blobs")) {
        let len = file_len(&dir.join("blobs").join(&blob));
        size_on_disk += len;
        if blob.ends_with(INCOMPLETE_SUFFIX) {
            partial_bytes += len;
        }
    }

    let mut snapshots = Vec::new();
    let snapshot_root = dir.join("snapshots");
    let commits = std::fs::read_dir(&snapshot_root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned());
    for commit in commits {
        let snapshot_dir = snapshot_root.join(&commit);
        let files = relative_files(&snapshot_dir);
        // Snapshot files that are copies, not links, take space of their own.
        size_on_disk += files
            .iter()
            .map(|file| file_len(&snapshot_dir.join(file)))
            .sum::<u64>();
        snapshots.push(CachedSnapshot {
            refs: refs_by_commit.remove(&commit).unwrap_or_default(),
            commit,
            files,
        });
    }
    snapshots.sort_by(|a, b| a.commit.cmp(&b.commit));
    CachedModel {
        repo_id,
        dir: dir.to_path_buf(),
        size_on_disk,
        partial_bytes,
        snapshots,
    }
}

/// Size of a regular file; 0 for symlinks (their target is counted once,
/// in `blobs/`).
fn file_len(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|meta| meta.is_file())
        .map_or(0, |meta| meta.len())
}

/// Files and symlinks under `root`, as sorted `/`-separated relative paths.
fn relative_files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push((entry.path(), relative)),
                Ok(_) => found.push(relative),
                Err(_) => {}
            }
        }
    }
    found.sort();
    found
}

/// Deletes the model's folder (and its lock folder). `Ok(false)` when it
/// was not cached.
pub(crate) fn remove_model(hub_cache: &Path, repo: &str) -> Result<bool, HubError> {
    validate_repo_id(repo)?;
    let cache = RepoCache::new(hub_cache, repo);
    let dir = cache.dir();
    let existed = dir.exists();
    if existed {
        std::fs::remove_dir_all(&dir).map_err(|err| HubError::io("deleting", &dir, err))?;
    }
    if let Some(locks) = cache.lock_path("x").parent() {
        // Best effort: a lock folder left behind is harmless.
        let _ = std::fs::remove_dir_all(locks);
    }
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn lists_python_style_cache_entries() {
        let hub = tempfile::tempdir().unwrap();
        let model = hub.path().join("models--org--m");
        std::fs::create_dir_all(model.join("blobs")).unwrap();
        std::fs::create_dir_all(model.join("refs")).unwrap();
        std::fs::create_dir_all(model.join("snapshots/c1")).unwrap();
        std::fs::write(model.join("blobs/e1"), b"12345").unwrap();
        std::fs::write(model.join("blobs/e2.incomplete"), b"12").unwrap();
        std::fs::write(model.join("refs/main"), "c1").unwrap();
        std::os::unix::fs::symlink("../../blobs/e1", model.join("snapshots/c1/config.json"))
            .unwrap();
        std::fs::create_dir_all(hub.path().join("datasets--org--d")).unwrap();

        let models = list_cached_models(hub.path()).unwrap();
        assert_eq!(models.len(), 1);
        let m = &models[0];
        assert_eq!(m.repo_id, "org/m");
        assert_eq!(m.size_on_disk, 7);
        assert_eq!(m.partial_bytes, 2);
        assert_eq!(m.main_commit(), Some("c1"));
        assert_eq!(m.snapshots[0].files, vec!["config.json"]);

        assert!(remove_model(hub.path(), "org/m").unwrap());
        assert!(!remove_model(hub.path(), "org/m").unwrap());
        assert!(list_cached_models(hub.path()).unwrap().is_empty());
    }

    #[test]
    fn missing_cache_lists_nothing() {
        let hub = tempfile::tempdir().unwrap();
        assert!(list_cached_models(&hub.path().join("nope"))
            .unwrap()
            .is_empty());
    }
}
