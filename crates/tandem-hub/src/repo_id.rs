//! Checks model ids before they become URL segments or cache folder names.

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
    fn commit_hashes_are_40_hex() {
        assert!(is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit_hash("main"));
        assert!(!is_commit_hash("0123456789abcdef0123456789abcdef0123456z"));
    }
}
