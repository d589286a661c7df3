//! The fixture repos a [`MockHub`](super::MockHub) serves: built in code or
//! loaded from a folder tree.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Stored in LFS on the real hub, and so redirected to the CDN here.
const LFS_EXTENSIONS: [&str; 7] = [
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".gguf",
    ".onnx",
    ".msgpack",
];
/// The hub requires LFS for files from this size on.
const LFS_MIN_SIZE: usize = 10 * 1024 * 1024;
/// In a repo folder, marks the repo gated; its text is the token granted access.
const GATED_MARKER: &str = ".gated";

/// One file of a mock repo, with the hashes the hub would report.
#[derive(Debug, Clone)]
pub(crate) struct MockFile {
    pub data: Arc<Vec<u8>>,
    pub lfs: bool,
    pub sha256: String,
    pub git_sha1: String,
}

impl MockFile {
    fn new(data: Vec<u8>, force_lfs: bool) -> Self {
        let lfs = force_lfs || data.len() >= LFS_MIN_SIZE;
        let sha256 = format!("{:x}", Sha256::digest(&data));
        let git_sha1 = git_blob_sha1(&data);
        MockFile {
            data: Arc::new(data),
            lfs,
            sha256,
            git_sha1,
        }
    }

    /// What the hub reports: the sha256 for LFS files, else the git blob id.
    pub(crate) fn etag(&self) -> &str {
        if self.lfs {
            &self.sha256
        } else {
            &self.git_sha1
        }
    }

    /// The LFS pointer file git stores in place of an LFS file.
    pub(crate) fn pointer_text(&self) -> String {
        format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
            self.sha256,
            self.data.len()
        )
    }

    /// The git blob id of the LFS pointer file, which the hub sends as the
    /// plain `ETag` of an LFS file (the real etag is in `X-Linked-Etag`).
    pub(crate) fn pointer_git_sha1(&self) -> String {
        git_blob_sha1(self.pointer_text().as_bytes())
    }
}

fn git_blob_sha1(data: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", data.len()).as_bytes());
    hasher.update(data);
    format!("{:x}", hasher.finalize())
}

/// Who may download a repo's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    Public,
    /// Resolve requests need `Authorization: Bearer {token}` with this token
    /// (`None`: nobody has access).
    Gated {
        granted_token: Option<String>,
    },
}

/// A model repo of the mock hub.
#[derive(Debug, Clone)]
pub struct MockRepo {
    pub(crate) id: String,
    pub(crate) files: BTreeMap<String, MockFile>,
    pub(crate) access: Access,
    commit: Option<String>,
}

impl MockRepo {
    pub fn new(id: impl Into<String>) -> Self {
        MockRepo {
            id: id.into(),
            files: BTreeMap::new(),
            access: Access::Public,
            commit: None,
        }
    }

    /// Adds a file; LFS (CDN-redirected, sha256 etag) when its extension is
    /// one the hub keeps in LFS (`.safetensors`, `.bin`, …) or it is ≥ 10 MiB.
    pub fn file(mut self, name: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        let name = name.into();
        let force_lfs = LFS_EXTENSIONS.iter().any(|ext| name.ends_with(ext));
        self.files
            .insert(name, MockFile::new(data.into(), force_lfs));
        self
    }

    /// Makes resolve requests need `granted_token` (`None`: nobody gets in).
    pub fn gated(mut self, granted_token: Option<&str>) -> Self {
        self.access = Access::Gated {
            granted_token: granted_token.map(str::to_string),
        };
        self
    }

    /// Fixes the commit hash instead of deriving it from the contents.
    pub fn with_commit(mut self, commit: impl Into<String>) -> Self {
        self.commit = Some(commit.into());
        self
    }

    /// Every file under `dir` (recursively) becomes a repo file; a `.gated`
    /// file makes the repo gated, its text being the token that has access.
    pub fn from_dir(id: impl Into<String>, dir: &Path) -> io::Result<Self> {
        let mut repo = MockRepo::new(id);
        let mut pending = vec![(dir.to_path_buf(), String::new())];
        while let Some((folder, prefix)) = pending.pop() {
            for entry in std::fs::read_dir(&folder)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let relative = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                if entry.file_type()?.is_dir() {
                    pending.push((entry.path(), relative));
                } else if relative == GATED_MARKER {
                    let token = std::fs::read_to_string(entry.path())?;
                    let token = token.trim();
                    repo = repo.gated((!token.is_empty()).then_some(token));
                } else {
                    repo = repo.file(relative, std::fs::read(entry.path())?);
                }
            }
        }
        Ok(repo)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The repo's commit: fixed, or a sha1 of its file names and etags, so
    /// changing any file moves the commit as a push would.
    pub fn commit(&self) -> String {
        if let Some(commit) = &self.commit {
            return commit.clone();
        }
        let mut hasher = Sha1::new();
        for (name, file) in &self.files {
            hasher.update(name.as_bytes());
            hasher.update(b"\0");
            hasher.update(file.etag().as_bytes());
            hasher.update(b"\n");
        }
        format!("{:x}", hasher.finalize())
    }

    pub fn file_names(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// The etag the hub reports for `file` (and the blob name in the cache).
    pub fn etag(&self, file: &str) -> Option<String> {
        self.files.get(file).map(|f| f.etag().to_string())
    }

    pub fn sha256(&self, file: &str) -> Option<String> {
        self.files.get(file).map(|f| f.sha256.clone())
    }

    pub fn size(&self, file: &str) -> Option<u64> {
        self.files.get(file).map(|f| f.data.len() as u64)
    }

    pub fn data(&self, file: &str) -> Option<&[u8]> {
        self.files.get(file).map(|f| f.data.as_slice())
    }

    pub fn is_lfs(&self, file: &str) -> bool {
        self.files.get(file).is_some_and(|f| f.lfs)
    }
}

/// Loads every `root/{org}/{name}/` folder as repo `org/name`.
pub fn load_repos(root: &Path) -> io::Result<Vec<MockRepo>> {
    let mut repos = Vec::new();
    for org in std::fs::read_dir(root)? {
        let org = org?;
        if !org.file_type()?.is_dir() {
            continue;
        }
        for name in std::fs::read_dir(org.path())? {
            let name = name?;
            if !name.file_type()?.is_dir() {
                continue;
            }
            let id = format!(
                "{}/{}",
                org.file_name().to_string_lossy(),
                name.file_name().to_string_lossy()
            );
            repos.push(MockRepo::from_dir(id, &name.path())?);
        }
    }
    repos.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(repos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfs_by_extension_and_etags_by_kind() {
        let repo = MockRepo::new("o/m")
            .file("config.json", b"hello\n".to_vec())
            .file("model.safetensors", b"weights".to_vec());
        assert!(!repo.is_lfs("config.json"));
        assert_eq!(
            repo.etag("config.json").unwrap(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert!(repo.is_lfs("model.safetensors"));
        assert_eq!(
            repo.etag("model.safetensors"),
            repo.sha256("model.safetensors")
        );
        assert_eq!(repo.commit().len(), 40);
    }

    #[test]
    fn commit_moves_when_a_file_changes() {
        let a = MockRepo::new("o/m").file("config.json", b"1".to_vec());
        let b = MockRepo::new("o/m").file("config.json", b"2".to_vec());
        assert_ne!(a.commit(), b.commit());
        assert_eq!(a.clone().with_commit("c").commit(), "c");
    }

    #[test]
    fn loads_folder_tree_with_gated_marker() {
        let root = tempfile::tempdir().unwrap();
        let repo_dir = root.path().join("org/m");
        std::fs::create_dir_all(repo_dir.join("sub")).unwrap();
        std::fs::write(repo_dir.join("config.json"), b"{}").unwrap();
        std::fs::write(repo_dir.join("sub/x.txt"), b"x").unwrap();
        std::fs::write(repo_dir.join(".gated"), b"hf_ok\n").unwrap();
        let repos = load_repos(root.path()).unwrap();
        assert_eq!(repos.len(), 1);
        assert_eq!(repos[0].id(), "org/m");
        assert_eq!(repos[0].file_names(), vec!["config.json", "sub/x.txt"]);
        assert_eq!(
            repos[0].access,
            Access::Gated {
                granted_token: Some("hf_ok".into())
            }
        );
    }
}
