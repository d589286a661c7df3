//! Checks model ids, revisions and etags before they become URL segments or
//! names in the cache (folders, `refs/{revision}`, `blobs/{etag}`).

use crate::HubError;

/// Accepts what the hub accepts (`huggingface_hub.validate_repo_id`):
/// `name` or `org/name`, each part of `[A-Za-z0-9_.-]`, no `--` or `..`
/// (they would clash with the `models--org--name` folder scheme or escape it).
pub(crate) fn validate_repo_id(repo: &str) -> Result<(), HubError> {
    let invalid = || HubError::InvalidRepoId {
        repo: repo.to_string(),
    };
    if repo.is_empty() || repo.len() > 96 || repo.contains("--") || repo.contains("..") {
        return Err(invalid());
    }
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 2 {
        return Err(invalid());
    }
    for part in parts {
        let chars_ok = part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let edges_ok = !part.starts_with(['-', '.']) && !part.ends_with(['-', '.']);
        if part.is_empty() || !chars_ok || !edges_ok {
            return Err(invalid());
        }
    }
    Ok(())
}

/// Longest revision accepted. Git allows longer names, but no real branch,
/// tag or `refs/pr/N` comes close, and the name becomes a path under `refs/`.
const MAX_REVISION_LEN: usize = 255;

/// Longest etag accepted (a sha256 is 64 hex digits); it names a blob file.
const MAX_ETAG_LEN: usize = 128;

/// Accepts what git accepts as a ref name (`git check-ref-format`), which
/// includes commit hashes, so that `refs/{revision}` stays inside `refs/`:
/// no `..`, no leading, trailing or doubled `/`, no component starting with
/// `.` or ending with `.lock`, no control characters, spaces or `~^:?*[\`,
/// no `@{`, not `@` alone, not ending with `.`.
pub(crate) fn validate_revision(revision: &str) -> Result<(), HubError> {
    let invalid = |reason: String| {
        Err(HubError::InvalidRevision {
            revision: revision.to_string(),
            reason: format!("{reason}; expected a branch, tag or commit hash"),
        })
    };
    if revision.is_empty() {
        return invalid("it is empty".into());
    }
    if revision.len() > MAX_REVISION_LEN {
        return invalid(format!("it is longer than {MAX_REVISION_LEN} bytes"));
    }
    let forbidden = |c: char| {
        c.is_control() || c.is_whitespace() || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    };
    if let Some(c) = revision.chars().find(|c| forbidden(*c)) {
        return invalid(format!("{c:?} is not allowed in a git ref"));
    }
    if revision.contains("..") {
        return invalid("\"..\" is not allowed in a git ref".into());
    }
    if revision == "@" || revision.contains("@{") {
        return invalid("\"@\" alone and \"@{\" are not allowed in a git ref".into());
    }
    if revision.ends_with('.') {
        return invalid("a git ref cannot end with '.'".into());
    }
    for component in revision.split('/') {
        if component.is_empty() {
            return invalid(
                "a git ref has no empty parts (leading, trailing or doubled '/')".into(),
            );
        }
        if component.starts_with('.') {
            return invalid(format!("part {component:?} starts with '.'"));
        }
        if component.ends_with(".lock") {
            return invalid(format!("part {component:?} ends with \".lock\""));
        }
    }
    Ok(())
}

/// Whether an etag (unquoted) can name a blob: `[0-9A-Za-z_-]{1,128}`, the
/// shape of the hub's sha256 and git sha1 etags and of mirrors' own.
pub(crate) fn is_valid_etag(etag: &str) -> bool {
    (1..=MAX_ETAG_LEN).contains(&etag.len())
        && etag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether `revision` is a full commit hash rather than a branch or tag.
pub(crate) fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hub_style_ids() {
        for ok in ["gpt2", "Qwen/Qwen2.5-0.5B-Instruct", "a_b/c.d-e"] {
            assert!(validate_repo_id(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_ids_that_could_escape_the_cache() {
        for bad in [
            "", "a/b/c", "../x", "a/..", "org--x/y", "a b/c", "/abs", "org/", "-a/b", "a/b.",
        ] {
            assert!(validate_repo_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn revisions_are_git_ref_names() {
        for ok in [
            "main",
            "v1.0",
            "refs/pr/1",
            "release/2024-01_b",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(validate_revision(ok).is_ok(), "{ok:?}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "../../x",
            "a/../b",
            "/etc/passwd",
            "main/",
            "a//b",
            ".hidden",
            "a/.b",
            "main.lock",
            "a.",
            "a b",
            "a\tb",
            "a:b",
            "C:\\x",
            "a\\b",
            "a~1",
            "a^",
            "a?",
            "a*",
            "a[",
            "@",
            "a@{1}",
            "a\u{7f}",
            long.as_str(),
        ] {
            let err = validate_revision(bad).expect_err(bad);
            let text = err.to_string();
            assert!(text.contains("invalid revision"), "{text}");
        }
    }

    #[test]
    fn etags_that_can_name_a_blob() {
        assert!(is_valid_etag(&"a".repeat(64)));
        assert!(is_valid_etag("abc-DEF_123"));
        for bad in ["", "a/b", "..", "a.b", "a:b", "a b", "a\\b", "é"] {
            assert!(!is_valid_etag(bad), "{bad:?}");
        }
        assert!(is_valid_etag(&"a".repeat(128)));
        assert!(!is_valid_etag(&"a".repeat(129)));
    }

    #[test]
    fn commit_hashes_are_40_hex() {
        assert!(is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit_hash("main"));
        assert!(!is_commit_hash("0123456789abcdef0123456789abcdef0123456z"));
    }
}
