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
//! Folder names come from `hf-hub`'s `Repo`; revisions are checked as git
//! refs and ref files' contents as commit hashes before either becomes a path.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use hf_hub::{Repo, RepoType};

use crate::repo_id::{is_commit_hash, validate_revision};
use crate::HubError;

pub(crate) const INCOMPLETE_SUFFIX: &str = ".incomplete";
/// A ref holds a 40-digit commit hash and maybe a newline.
const MAX_REF_BYTES: u64 = 128;
/// Bounds on walking `refs/` (branches with `/` make folders).
const MAX_REF_DEPTH: usize = 8;
const MAX_REFS_SCANNED: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct RepoCache {
    hub_cache: PathBuf,
    folder_name: String,
}

impl RepoCache {
    pub(crate) fn new(hub_cache: &Path, repo_id: &str) -> Self {
        let folder_name = Repo::new(repo_id.to_string(), RepoType::Model).folder_name();
        RepoCache {
            hub_cache: hub_cache.to_path_buf(),
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

    fn ref_path(&self, revision: &str) -> Result<PathBuf, HubError> {
        validate_revision(revision)?;
        let mut path = self.dir().join("refs");
        path.extend(revision.split('/'));
        Ok(path)
    }

    /// The commit `refs/{revision}` points to, if the ref exists. The file's
    /// text becomes a folder name, so anything but a commit hash is an error.
    pub(crate) fn read_ref(&self, revision: &str) -> Result<Option<String>, HubError> {
        let path = self.ref_path(revision)?;
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(HubError::io("reading the ref", path, err)),
        };
        // A commit hash and a newline; more is not a ref, and is not read.
        let mut bytes = Vec::new();
        file.take(MAX_REF_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|err| HubError::io("reading the ref", &path, err))?;
        let text = String::from_utf8_lossy(&bytes);
        let commit = text.trim();
        if commit.is_empty() {
            return Ok(None);
        }
        if !is_commit_hash(commit) {
            return Err(HubError::BadRef {
                content: commit.chars().take(80).collect(),
                path,
            });
        }
        Ok(Some(commit.to_string()))
    }

    /// Points `refs/{revision}` at `commit`. Written under a temporary name
    /// and renamed, as `huggingface_hub` does, so a reader never sees a
    /// half-written ref.
    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        let path = self.ref_path(revision)?;
        if !is_commit_hash(commit) {
            return Err(HubError::BadRef {
                path,
                content: commit.chars().take(80).collect(),
            });
        }
        let parent = path.parent().expect("refs have a parent");
        std::fs::create_dir_all(parent)
            .map_err(|err| HubError::io("creating the refs folder", parent, err))?;
        let temp = temporary_sibling(&path);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .and_then(|mut file| file.write_all(commit.as_bytes()))
            .and_then(|()| std::fs::rename(&temp, &path));
        written.map_err(|err| {
            let _ = std::fs::remove_file(&temp);
            HubError::io("writing the ref", &path, err)
        })
    }

    /// Commit-named snapshot folders, newest (last modified) first.
    pub(crate) fn snapshots_newest_first(&self) -> Vec<String> {
        let root = self.dir().join("snapshots");
        let mut found: Vec<(SystemTime, String)> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let meta = entry.metadata().ok()?;
                (is_commit_hash(&name) && meta.is_dir())
                    .then(|| (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), name))
            })
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        found.into_iter().map(|(_, commit)| commit).collect()
    }

    /// The commits that refs other than `revision` point to (read leniently:
    /// an unreadable ref just claims nothing).
    pub(crate) fn commits_of_other_refs(&self, revision: &str) -> BTreeSet<String> {
        let refs = self.dir().join("refs");
        let mut commits = BTreeSet::new();
        let mut pending = vec![(refs, String::new(), 0)];
        let mut seen = 0;
        while let Some((dir, prefix, depth)) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                seen += 1;
                if seen > MAX_REFS_SCANNED {
                    return commits;
                }
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let name = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() && depth < MAX_REF_DEPTH {
                    pending.push((entry.path(), name, depth + 1));
                } else if kind.is_file() && name != revision {
                    if let Ok(Some(commit)) = self.read_ref(&name) {
                        commits.insert(commit);
                    }
                }
            }
        }
        commits
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
    ///
    /// Another process (a second Tandem, a Python tool) may link the same
    /// file at the same moment, so the pointer is built under a name of its
    /// own and renamed over `{file}`: the rename replaces atomically, and the
    /// pointer path itself is never opened for writing, which would write
    /// through the other's symlink into the shared blob.
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
        // From snapshots/{commit}/{dirs…}/file up to the repo folder.
        let depth = file.split('/').count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(etag);
        if std::fs::read_link(&pointer).is_ok_and(|existing| existing == target) {
            return Ok(());
        }

        let temp = temporary_sibling(&pointer);
        let made = make_symlink(&target, &temp).or_else(|symlink_err| {
            if symlink_err.kind() == ErrorKind::AlreadyExists {
                return Err(symlink_err);
            }
            std::fs::hard_link(&blob, &temp).or_else(|link_err| {
                if link_err.kind() == ErrorKind::AlreadyExists {
                    return Err(link_err);
                }
                copy_new(&blob, &temp)
            })
        });
        let placed = made.and_then(|()| std::fs::rename(&temp, &pointer));
        placed.map_err(|err| {
            let _ = std::fs::remove_file(&temp);
            HubError::io("linking the blob into the snapshot", &pointer, err)
        })
    }
}

/// A name beside `path` that no other writer uses at the same time (this
/// process's id and a counter), for building a file before renaming it.
fn temporary_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{count}.tmp", std::process::id()))
}

/// Copies `from` into a file that must not exist yet (never through an
/// existing file or symlink).
fn copy_new(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut source = std::fs::File::open(from)?;
    let mut dest = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    std::io::copy(&mut source, &mut dest)?;
    dest.sync_all()
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

        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(cache.read_ref("main").unwrap(), None);
        cache.write_ref("main", commit).unwrap();
        assert_eq!(cache.read_ref("main").unwrap().as_deref(), Some(commit));
        cache.write_ref("refs/pr/1", commit).unwrap();
        assert_eq!(
            cache.read_ref("refs/pr/1").unwrap().as_deref(),
            Some(commit)
        );
    }

    #[test]
    fn refs_stay_inside_refs_and_hold_commit_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RepoCache::new(&dir.path().join("hub"), "org/name");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        // A file the escaping revision would reach.
        std::fs::write(dir.path().join("escape"), commit).unwrap();
        for bad in ["../../../escape", "/abs", "a//b", ".x", "x.lock", ""] {
            assert!(
                matches!(cache.read_ref(bad), Err(HubError::InvalidRevision { .. })),
                "{bad:?}"
            );
            assert!(
                matches!(
                    cache.write_ref(bad, commit),
                    Err(HubError::InvalidRevision { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(!dir.path().join("abs").exists());

        let refs = cache.dir().join("refs");
        std::fs::create_dir_all(&refs).unwrap();
        std::fs::write(refs.join("main"), "../../../../outside\n").unwrap();
        let err = cache.read_ref("main").unwrap_err();
        assert!(matches!(err, HubError::BadRef { .. }), "{err:?}");
        assert!(err.to_string().contains("refs/main"), "{err}");
        // A huge ref file is neither read whole nor accepted.
        std::fs::write(refs.join("main"), "a".repeat(1 << 20)).unwrap();
        assert!(matches!(
            cache.read_ref("main"),
            Err(HubError::BadRef { content, .. }) if content.len() <= 80
        ));
        assert!(matches!(
            cache.write_ref("main", "../x"),
            Err(HubError::BadRef { .. })
        ));
    }

    /// Two downloads of one repo link the same file at once; neither may
    /// write through the other's fresh symlink into a shared blob. (Two
    /// blobs, so that most calls replace a pointer rather than keep it.)
    #[cfg(unix)]
    #[test]
    fn concurrent_links_never_touch_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RepoCache::new(dir.path(), "org/name");
        let contents: Vec<Vec<u8>> = (0..2u8)
            .map(|seed| (0..64 * 1024).map(|i| (i % 251) as u8 ^ seed).collect())
            .collect();
        for (etag, data) in ["e0", "e1"].iter().zip(&contents) {
            let blob = cache.blob_path(etag);
            std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
            std::fs::write(&blob, data).unwrap();
        }
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let cache = &cache;
                scope.spawn(move || {
                    for round in 0..400 {
                        let etag = if (round + thread) % 2 == 0 {
                            "e0"
                        } else {
                            "e1"
                        };
                        cache.link_snapshot("c1", "config.json", etag).unwrap();
                    }
                });
            }
        });
        for (etag, data) in ["e0", "e1"].iter().zip(&contents) {
            let after = std::fs::read(cache.blob_path(etag)).unwrap();
            assert!(
                &after == data,
                "blob {etag} changed: {} bytes instead of {}",
                after.len(),
                data.len()
            );
        }
        let link = std::fs::read_link(cache.snapshot_file("c1", "config.json")).unwrap();
        assert!(
            [
                PathBuf::from("../../blobs/e0"),
                PathBuf::from("../../blobs/e1")
            ]
            .contains(&link),
            "{link:?}"
        );
        // No temporary names left behind.
        let names: Vec<_> = std::fs::read_dir(cache.snapshot_dir("c1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
    }
}
