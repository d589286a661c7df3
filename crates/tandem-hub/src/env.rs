//! Where the hub and the cache are, read from the same environment variables
//! `huggingface_hub` (Python) reads, so both tools share one cache and token.

use std::path::{Path, PathBuf};

/// The public Hugging Face hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Hub settings resolved from environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubEnv {
    /// `HF_ENDPOINT`, without a trailing slash.
    pub endpoint: String,
    /// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
    pub hf_home: PathBuf,
    /// `HF_HUB_CACHE` (or the legacy `HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`.
    pub hub_cache: PathBuf,
    /// `HF_TOKEN_PATH`, else `$HF_HOME/token` (what `huggingface-cli login` writes).
    pub token_path: PathBuf,
    /// `HF_TOKEN` (or the legacy `HUGGING_FACE_HUB_TOKEN`); wins over the token file.
    pub token_from_env: Option<String>,
    /// `HF_HUB_OFFLINE` set to a true value: never touch the network.
    pub offline: bool,
}

impl HubEnv {
    /// Resolves from the process environment and the user's home directory.
    pub fn from_process() -> Self {
        Self::resolve(|name| std::env::var(name).ok(), dirs::home_dir().as_deref())
    }

    /// Resolves from an explicit variable lookup, so callers (and tests) need
    /// not mutate the process environment. Empty values count as unset.
    pub fn resolve(var: impl Fn(&str) -> Option<String>, home: Option<&Path>) -> Self {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let home_dir = home
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let expand = |value: String| expand_tilde(&value, &home_dir);

        let hf_home = match var("HF_HOME") {
            Some(dir) => expand(dir),
            None => {
                let cache_home = var("XDG_CACHE_HOME")
                    .map(expand)
                    .unwrap_or_else(|| home_dir.join(".cache"));
                cache_home.join("huggingface")
            }
        };
        let hub_cache = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(expand)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token_path = var("HF_TOKEN_PATH")
            .map(expand)
            .unwrap_or_else(|| hf_home.join("token"));
        let endpoint = var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim()
            .trim_end_matches('/')
            .to_string();
        let token_from_env = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .map(|token| token.trim().to_string());
        let offline = var("HF_HUB_OFFLINE").is_some_and(|value| is_true(&value));

        Self {
            endpoint,
            hf_home,
            hub_cache,
            token_path,
            token_from_env,
            offline,
        }
    }

    /// The token to send: `HF_TOKEN` first, then the token file.
    pub fn token(&self) -> Option<String> {
        self.token_from_env
            .clone()
            .or_else(|| self.token_from_file())
    }

    /// The token saved by `huggingface-cli login` (or at `HF_TOKEN_PATH`).
    pub fn token_from_file(&self) -> Option<String> {
        if self.token_path == self.hf_home.join("token") {
            // hf-hub finds the token file next to the `hub` folder of a cache.
            hf_hub::Cache::new(self.hf_home.join("hub")).token()
        } else {
            let text = std::fs::read_to_string(&self.token_path).ok()?;
            Some(text.trim().to_string()).filter(|token| !token.is_empty())
        }
    }
}

fn expand_tilde(value: &str, home: &Path) -> PathBuf {
    match value.strip_prefix('~') {
        Some("") => home.to_path_buf(),
        Some(rest) if rest.starts_with('/') || rest.starts_with('\\') => home.join(&rest[1..]),
        _ => PathBuf::from(value),
    }
}

/// The values `huggingface_hub` accepts as true for boolean variables.
fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> HubEnv {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubEnv::resolve(|name| map.get(name).cloned(), Some(Path::new("/home/ada")))
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let env = resolve(&[]);
        assert_eq!(env.endpoint, "https://huggingface.co");
        assert_eq!(env.hf_home, PathBuf::from("/home/ada/.cache/huggingface"));
        assert_eq!(
            env.hub_cache,
            PathBuf::from("/home/ada/.cache/huggingface/hub")
        );
        assert_eq!(
            env.token_path,
            PathBuf::from("/home/ada/.cache/huggingface/token")
        );
        assert_eq!(env.token_from_env, None);
        assert!(!env.offline);
    }

    #[test]
    fn hf_home_moves_cache_and_token() {
        let env = resolve(&[("HF_HOME", "/data/hf")]);
        assert_eq!(env.hub_cache, PathBuf::from("/data/hf/hub"));
        assert_eq!(env.token_path, PathBuf::from("/data/hf/token"));
    }

    #[test]
    fn hub_cache_overrides_hf_home_for_models_only() {
        let env = resolve(&[("HF_HOME", "/data/hf"), ("HF_HUB_CACHE", "/fast/models")]);
        assert_eq!(env.hub_cache, PathBuf::from("/fast/models"));
        assert_eq!(env.token_path, PathBuf::from("/data/hf/token"));

        let legacy = resolve(&[("HUGGINGFACE_HUB_CACHE", "/old/cache")]);
        assert_eq!(legacy.hub_cache, PathBuf::from("/old/cache"));
    }

    #[test]
    fn xdg_cache_home_is_used_without_hf_home() {
        let env = resolve(&[("XDG_CACHE_HOME", "/xdg")]);
        assert_eq!(env.hub_cache, PathBuf::from("/xdg/huggingface/hub"));
    }

    #[test]
    fn tilde_expands_to_home() {
        let env = resolve(&[("HF_HOME", "~/hf")]);
        assert_eq!(env.hf_home, PathBuf::from("/home/ada/hf"));
    }

    #[test]
    fn endpoint_loses_trailing_slash_and_empty_means_default() {
        assert_eq!(
            resolve(&[("HF_ENDPOINT", "http://127.0.0.1:9000/")]).endpoint,
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            resolve(&[("HF_ENDPOINT", "")]).endpoint,
            "https://huggingface.co"
        );
    }

    #[test]
    fn token_env_and_offline_flag() {
        let env = resolve(&[("HF_TOKEN", " hf_abc \n"), ("HF_HUB_OFFLINE", "yes")]);
        assert_eq!(env.token_from_env.as_deref(), Some("hf_abc"));
        assert!(env.offline);
        let legacy = resolve(&[
            ("HUGGING_FACE_HUB_TOKEN", "hf_old"),
            ("HF_HUB_OFFLINE", "0"),
        ]);
        assert_eq!(legacy.token_from_env.as_deref(), Some("hf_old"));
        assert!(!legacy.offline);
    }

    #[test]
    fn token_file_is_read_when_no_env_token() {
        let home = tempfile::tempdir().unwrap();
        let hf_home = home.path().join("hf");
        std::fs::create_dir_all(&hf_home).unwrap();
        std::fs::write(hf_home.join("token"), "hf_from_file\n").unwrap();
        let hf_home_str = hf_home.to_str().unwrap().to_string();
        let env = HubEnv::resolve(
            |name| (name == "HF_HOME").then(|| hf_home_str.clone()),
            Some(home.path()),
        );
        assert_eq!(env.token().as_deref(), Some("hf_from_file"));

        let custom = home.path().join("my-token");
        std::fs::write(&custom, "hf_custom").unwrap();
        let custom_str = custom.to_str().unwrap().to_string();
        let env = HubEnv::resolve(
            |name| match name {
                "HF_TOKEN_PATH" => Some(custom_str.clone()),
                _ => None,
            },
            Some(home.path()),
        );
        assert_eq!(env.token().as_deref(), Some("hf_custom"));

        let with_env = HubEnv {
            token_from_env: Some("hf_env".into()),
            ..env
        };
        assert_eq!(with_env.token().as_deref(), Some("hf_env"));
    }
}
