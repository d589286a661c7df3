//! File names that come from a model repo — a hub listing, a shard index's
//! `weight_map` — are untrusted: joined onto a folder, `../x` or `/etc/x` would
//! leave it. Downloads (tandem-hub) and local loading (tandem-model) both check
//! names with [`is_safe_relative_path`]; it lives in this dependency-free crate
//! because neither of those crates depends on the other.

/// A repo-relative path that stays inside the folder it is joined to: not empty,
/// `/`-separated parts that are neither empty, `.` nor `..`, no leading `/`, and no
/// `\` or `:` (a Windows separator, drive or stream).
pub fn is_safe_relative_path(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains(':')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        for good in [
            "a.json",
            "a/b.json",
            "model-00001-of-00002.safetensors",
            "a/.b/c..d",
        ] {
            assert!(is_safe_relative_path(good), "{good:?}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "./a",
            "a//b",
            "a/",
            "c:\\x",
            "C:x",
            "a\\b",
            "\\\\server\\share",
        ] {
            assert!(!is_safe_relative_path(bad), "{bad:?}");
        }
    }
}
