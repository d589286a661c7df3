//! Checking a download against its etag. The hub's etag for an LFS file (the
//! weights) is the sha256 of its content; for a small git-stored file it is
//! the git blob sha1 (`sha1("blob {len}\0" + content)`).

use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What a finished file must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpectedHash {
    Sha256(String),
    GitSha1(String),
    /// An etag of another shape (a mirror's own); only the size is checked.
    SizeOnly,
}

impl ExpectedHash {
    pub(crate) fn from_etag(etag: &str) -> Self {
        let is_hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
        match etag.len() {
            64 if is_hex => ExpectedHash::Sha256(etag.to_ascii_lowercase()),
            40 if is_hex => ExpectedHash::GitSha1(etag.to_ascii_lowercase()),
            _ => ExpectedHash::SizeOnly,
        }
    }

    pub(crate) fn hex(&self) -> Option<&str> {
        match self {
            ExpectedHash::Sha256(hex) | ExpectedHash::GitSha1(hex) => Some(hex),
            ExpectedHash::SizeOnly => None,
        }
    }
}

/// The etag as sent (`"abc"` or `W/"abc"`), reduced to the bare value that
/// names the blob in the cache, as `huggingface_hub` does.
pub(crate) fn normalize_etag(raw: &str) -> String {
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// Hashes a file as its bytes arrive, so verifying needs no second read.
pub(crate) enum ContentHasher {
    Sha256(Sha256),
    GitSha1(Sha1),
    SizeOnly,
}

impl ContentHasher {
    pub(crate) fn new(expected: &ExpectedHash, total_size: u64) -> Self {
        match expected {
            ExpectedHash::Sha256(_) => ContentHasher::Sha256(Sha256::new()),
            ExpectedHash::GitSha1(_) => {
                let mut sha1 = Sha1::new();
                sha1.update(format!("blob {total_size}\0").as_bytes());
                ContentHasher::GitSha1(sha1)
            }
            ExpectedHash::SizeOnly => ContentHasher::SizeOnly,
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            ContentHasher::Sha256(hasher) => hasher.update(bytes),
            ContentHasher::GitSha1(hasher) => hasher.update(bytes),
            ContentHasher::SizeOnly => {}
        }
    }

    /// Lowercase hex digest, or `None` when only the size is checked.
    pub(crate) fn finish(self) -> Option<String> {
        match self {
            ContentHasher::Sha256(hasher) => Some(format!("{:x}", hasher.finalize())),
            ContentHasher::GitSha1(hasher) => Some(format!("{:x}", hasher.finalize())),
            ContentHasher::SizeOnly => None,
        }
    }

    /// Feeds the first `len` bytes of a partial download (blocking I/O: call
    /// it from `spawn_blocking`), so a resumed transfer still hashes it all.
    pub(crate) fn update_from_file(&mut self, path: &Path, len: u64) -> std::io::Result<()> {
        if matches!(self, ContentHasher::SizeOnly) {
            return Ok(());
        }
        let mut reader = std::fs::File::open(path)?.take(len);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.update(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_shapes() {
        let sha256 = "A".repeat(64);
        assert_eq!(
            ExpectedHash::from_etag(&sha256),
            ExpectedHash::Sha256("a".repeat(64))
        );
        assert!(matches!(
            ExpectedHash::from_etag(&"b".repeat(40)),
            ExpectedHash::GitSha1(_)
        ));
        assert_eq!(ExpectedHash::from_etag("xyz-1"), ExpectedHash::SizeOnly);
    }

    #[test]
    fn etags_lose_quotes_and_weak_marker() {
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag(" abc "), "abc");
    }

    #[test]
    fn git_blob_sha1_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let expected = ExpectedHash::from_etag("ce013625030ba8dba906f756967f9e9ca394464a");
        let mut hasher = ContentHasher::new(&expected, 6);
        hasher.update(b"hello\n");
        assert_eq!(hasher.finish().as_deref(), expected.hex());
    }

    #[test]
    fn sha256_of_prefix_plus_stream_equals_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial");
        std::fs::write(&path, b"hello world").unwrap();
        let expected = ExpectedHash::Sha256("0".repeat(64));
        let mut resumed = ContentHasher::new(&expected, 11);
        resumed.update_from_file(&path, 6).unwrap();
        resumed.update(b"world");
        assert_eq!(
            resumed.finish().unwrap(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
