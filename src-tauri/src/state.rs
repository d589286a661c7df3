//! What the app holds between commands: the engine session (models, runs, history), hub
//! settings, running downloads, custom pairs and the loaded pair's tokenizer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tandem_engine::export::atomic::write_atomically;
use tandem_engine::{RunHistory, Session};
use tandem_hub::{CancelToken, HubClient, HubEnv};
use tandem_model::Tokenizer;
use tandem_pairs::Catalog;

use crate::error::{AppError, AppResult};
use crate::ipc::{CustomPair, LoadedPair};

pub struct AppState {
    pub session: Arc<Session>,
    /// History and custom pairs live here: `TANDEM_DATA_DIR`, else the engine's default.
    pub data_dir: PathBuf,
    pub hub_env: HubEnv,
    /// A token typed into the app; wins over `HF_TOKEN` and the token file.
    pub token: Mutex<Option<String>>,
    pub downloads: Mutex<HashMap<String, CancelToken>>,
    pub loaded: Mutex<Option<LoadedPair>>,
    /// The loaded target's tokenizer, for token texts while a run holds the models.
    pub tokenizer: Mutex<Option<Arc<Tokenizer>>>,
    /// Tokenizers of models runs in the history used, by folder.
    pub tokenizers: Mutex<HashMap<PathBuf, Option<Arc<Tokenizer>>>>,
    pub catalog: Catalog,
    pub custom: Mutex<Vec<CustomPair>>,
    /// What went wrong while starting (a custom pairs file that could not be read), for
    /// the app to tell the user once it shows.
    pub notices: Vec<String>,
}

impl AppState {
    /// Reads the environment: `TANDEM_DATA_DIR`, `TANDEM_CATALOG` (a catalog.json to use
    /// instead of the built-in one) and the Hugging Face variables (`HF_ENDPOINT`,
    /// `HF_HOME`, `HF_TOKEN`…).
    pub fn from_env() -> AppResult<Self> {
        let data_dir = std::env::var_os("TANDEM_DATA_DIR")
            .map(PathBuf::from)
            .or_else(tandem_engine::default_data_dir)
            .unwrap_or_else(|| PathBuf::from(".tandem"));
        let catalog = match std::env::var_os("TANDEM_CATALOG") {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    AppError::new("io", format!("reading {}: {e}", Path::new(&path).display()))
                })?;
                Catalog::from_json(&text).map_err(AppError::from)?
            }
            None => Catalog::builtin(),
        };
        let (custom, custom_notice) = load_custom_pairs(&data_dir);
        Ok(Self {
            session: Arc::new(Session::new(Some(RunHistory::new(&data_dir)))),
            data_dir,
            hub_env: HubEnv::from_process(),
            token: Mutex::new(None),
            downloads: Mutex::new(HashMap::new()),
            loaded: Mutex::new(None),
            tokenizer: Mutex::new(None),
            tokenizers: Mutex::new(HashMap::new()),
            catalog,
            custom: Mutex::new(custom),
            notices: custom_notice.into_iter().collect(),
        })
    }

    pub fn history(&self) -> AppResult<&RunHistory> {
        self.session
            .history()
            .ok_or_else(|| AppError::internal("this session keeps no history"))
    }

    pub fn hub_client(&self) -> AppResult<HubClient> {
        let mut builder = HubClient::builder();
        if let Some(token) = lock(&self.token).clone() {
            builder = builder.token(token);
        }
        Ok(builder.build()?)
    }

    pub fn has_token(&self) -> bool {
        lock(&self.token).is_some() || self.hub_env.token().is_some()
    }

    pub fn save_custom(&self, pairs: &[CustomPair]) -> AppResult<()> {
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            AppError::new("io", format!("creating {}: {e}", self.data_dir.display()))
        })?;
        let path = self.data_dir.join(CUSTOM_PAIRS_FILE);
        let text =
            serde_json::to_string_pretty(pairs).map_err(|e| AppError::internal(e.to_string()))?;
        // A crash or a full disk mid-write leaves the old list, never half a file.
        write_atomically(&path, |w| w.write_all(text.as_bytes()))
            .map_err(|e| AppError::new("io", format!("writing {}: {e}", path.display())))
    }

    /// The tokenizer in a model folder, loaded once.
    pub fn tokenizer_for(&self, dir: &Path) -> Option<Arc<Tokenizer>> {
        if let Some(loaded) = lock(&self.tokenizer).clone() {
            if lock(&self.loaded)
                .as_ref()
                .is_some_and(|l| Path::new(&l.target.dir) == dir)
            {
                return Some(loaded);
            }
        }
        lock(&self.tokenizers)
            .entry(dir.to_path_buf())
            .or_insert_with(|| Tokenizer::from_dir(dir).ok().map(Arc::new))
            .clone()
    }
}

/// The custom pairs the user added, in the data folder.
const CUSTOM_PAIRS_FILE: &str = "custom_pairs.json";

/// The saved custom pairs, and a notice for the user when the file was there but could
/// not be used. A file that does not parse is moved aside (`custom_pairs.json.broken-…`)
/// rather than left to be overwritten by the next save: the user's pairs stay on disk.
fn load_custom_pairs(data_dir: &Path) -> (Vec<CustomPair>, Option<String>) {
    let path = data_dir.join(CUSTOM_PAIRS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), None),
        Err(e) => {
            let notice = format!(
                "Your custom pairs could not be read from {}: {e}. They are not shown until it can be read.",
                path.display()
            );
            return (Vec::new(), Some(notice));
        }
    };
    let error = match serde_json::from_str(&text) {
        Ok(pairs) => return (pairs, None),
        Err(e) => e,
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = path.with_file_name(format!("{CUSTOM_PAIRS_FILE}.broken-{stamp}"));
    let notice = match std::fs::rename(&path, &aside) {
        Ok(()) => format!(
            "Your custom pairs file {} was damaged ({error}). It was moved to {} and the list starts empty; add the pairs again.",
            path.display(),
            aside.display()
        ),
        Err(e) => format!(
            "Your custom pairs file {} is damaged ({error}) and could not be moved aside ({e}). Adding a pair will replace it.",
            path.display()
        ),
    };
    (Vec::new(), Some(notice))
}

/// Locks a mutex, recovering from poisoning (the data is plain and stays usable).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_custom_pairs_file_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CUSTOM_PAIRS_FILE);
        std::fs::write(&path, "[{\"id\": \"custom-1\", trunc").unwrap();
        let (pairs, notice) = load_custom_pairs(dir.path());
        assert!(pairs.is_empty());
        let notice = notice.expect("the user is told");
        assert!(
            notice.contains("custom_pairs.json") && notice.contains("moved to"),
            "{notice}"
        );
        assert!(
            !path.exists(),
            "the damaged file is out of the way of the next save"
        );
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].starts_with("custom_pairs.json.broken-"), "{kept:?}");
        let moved = std::fs::read_to_string(dir.path().join(&kept[0])).unwrap();
        assert!(
            moved.contains("custom-1"),
            "nothing of the user's file is lost"
        );
    }

    #[test]
    fn no_file_is_no_pairs_and_no_notice() {
        let dir = tempfile::tempdir().unwrap();
        let (pairs, notice) = load_custom_pairs(dir.path());
        assert!(pairs.is_empty() && notice.is_none());
    }
}
