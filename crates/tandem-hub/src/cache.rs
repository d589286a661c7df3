//! One model's folder in the Hugging Face cache, laid out exactly as
//! `huggingface_hub` lays it out:
//!
//! ```text
//! {hub_cache}/models--{org}--{name}/
//!     blobs/{etag}                    file contents, named by etag
//!     blobs/{etag}.incomplete         a partial download, resumable
//!     snapshots/{commit}/{file}       relative symlink to ../../blobs/{etag}
//!     refs/{revision}                 the commit hash the revision points to
//! {hub_cache}/.locks/models--{org}--{name}/{etag}.lock
//! ```
//!
//! Folder names and refs go through `hf-hub`'s `Cache`/`Repo`/`CacheRepo`.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::HubError;

pub(crate) const INCOMPLETE_SUFFIX: &str = ".incomplete";

#[derive(Debug, Clone)]
pub(crate) struct RepoCache {
    hub_cache: PathBuf,
    repo_id: String,
    folder_name: String,
}

impl RepoCache {
    pub(crate) fn new(hub_cache: &Path, repo_id: &str) -> Self {
        let folder_name = Repo::new(repo_id.to_string(), RepoType::Model).folder_name();
        RepoCache {
            hub_cache: hub_cache.to_path_buf(),
            repo_id: repo_id.to_string(),
            folder_name,
        }
    }

    pub(crate) fn dir(&self) -> PathBuf {
        self.hub_cache.join(&self.folder_name)
    }

    pub(crate) fn blob_path(&self, etag: &str) -> PathBuf {
        self.dir().join("blobs").join(etag)
    }

    pub(crate) fn partial_path(&self, etag: &str) -> PathBuf {
        self.dir()
            .join("blobs")
            .join(format!("{etag}{INCOMPLETE_SUFFIX}"))
    }

    pub(crate) fn lock_path(&self, etag: &str) -> PathBuf {
        self.hub_cache
            .join(".locks")
            .join(&self.folder_name)
            .join(format!("{etag}.lock"))
    }

    pub(crate) fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.dir().join("snapshots").join(commit)
    }

    pub(crate) fn snapshot_file(&self, commit: &str, file: &str) -> PathBuf {
        let mut path = self.snapshot_dir(commit);
        path.extend(file.split('/'));
        path
    }

    fn hf_cache_repo(&self, revision: &str) -> hf_hub::CacheRepo {
        Cache::new(self.hub_cache.clone()).repo(Repo::with_revision(
            self.repo_id.clone(),
            RepoType::Model,
            revision.to_string(),
        ))
    }

    /// The commit `refs/{revision}` points to, if the ref exists.
    pub(crate) fn read_ref(&self, revision: &str) -> Option<String> {
        let mut path = self.dir().join("refs");
        path.extend(revision.split('/'));
        let commit = std::fs::read_to_string(path).ok()?;
        Some(commit.trim().to_string()).filter(|c| !c.is_empty())
    }

    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        self.hf_cache_repo(revision)
            .create_ref(commit)
            .map_err(|err| HubError::io("writing the ref of", self.dir().join("refs"), err))
    }

    /// Whether the snapshot has `file` resolving to existing content of the
    /// expected size (when known). A dangling symlink counts as missing.
    pub(crate) fn snapshot_has(
        &self,
        commit: &str,
        file: &str,
        expected_size: Option<u64>,
    ) -> bool {
        match std::fs::metadata(self.snapshot_file(commit, file)) {
            Ok(meta) => meta.is_file() && expected_size.is_none_or(|size| meta.len() == size),
            Err(_) => false,
        }
    }

    /// Points `snapshots/{commit}/{file}` at `blobs/{etag}`: a relative
    /// symlink like `huggingface_hub` makes, else a hard link, else a copy
    /// (Windows without symlink rights).
    pub(crate) fn link_snapshot(
        &self,
        commit: &str,
        file: &str,
        etag: &str,
    ) -> Result<(), HubError> {
        let pointer = self.snapshot_file(commit, file);
        let blob = self.blob_path(etag);
        let parent = pointer.parent().expect("snapshot files have a parent");
        std::fs::create_dir_all(parent)
            .map_err(|err| HubError::io("creating snapshot folder", parent, err))?;
        if std::fs::symlink_metadata(&pointer).is_ok() {
            std::fs::remove_file(&pointer)
                .map_err(|err| HubError::io("replacing snapshot file", &pointer, err))?;
        }
        // From snapshots/{commit}/{dirs…}/file up to the repo folder.
        let depth = file.split('/').count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(etag);
        if make_symlink(&target, &pointer).is_ok() {
            return Ok(());
        }
        if std::fs::hard_link(&blob, &pointer).is_ok() {
            return Ok(());
        }
        std::fs::copy(&blob, &pointer)
            .map(|_| ())
            .map_err(|err| HubError::io("copying blob into snapshot", &pointer, err))
    }
}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn make_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn make_symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("no symlinks on this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_hf_layout() {
        let cache = RepoCache::new(Path::new("/c"), "org/name");
        assert_eq!(cache.dir(), PathBuf::from("/c/models--org--name"));
        assert_eq!(
            cache.partial_path("abc"),
            PathBuf::from("/c/models--org--name/blobs/abc.incomplete")
        );
        assert_eq!(
            cache.snapshot_file("c0ffee", "sub/file.json"),
            PathBuf::from("/c/models--org--name/snapshots/c0ffee/sub/file.json")
        );
        assert_eq!(
            cache.lock_path("abc"),
            PathBuf::from("/c/.locks/models--org--name/abc.lock")
        );
    }

    #[cfg(unix)]
    #[test]
    fn snapshot_links_are_relative_and_refs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RepoCache::new(dir.path(), "org/name");
        let blob = cache.blob_path("e1");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, b"data").unwrap();

        cache.link_snapshot("c1", "a/b.json", "e1").unwrap();
        let link = cache.snapshot_file("c1", "a/b.json");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            PathBuf::from("../../../blobs/e1")
        );
        assert!(cache.snapshot_has("c1", "a/b.json", Some(4)));
        assert!(!cache.snapshot_has("c1", "a/b.json", Some(5)));
        // Linking again replaces the old pointer instead of failing.
        cache.link_snapshot("c1", "a/b.json", "e1").unwrap();

        assert_eq!(cache.read_ref("main"), None);
        cache.write_ref("main", "c1").unwrap();
        assert_eq!(cache.read_ref("main").as_deref(), Some("c1"));
    }
}
