//! What the app holds between commands: the engine session (models, runs, history), hub
//! settings, running downloads, custom pairs and the loaded pair's tokenizer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
        let custom = std::fs::read_to_string(data_dir.join("custom_pairs.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
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
        let path = self.data_dir.join("custom_pairs.json");
        let text =
            serde_json::to_string_pretty(pairs).map_err(|e| AppError::internal(e.to_string()))?;
        std::fs::write(&path, text)
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

/// Locks a mutex, recovering from poisoning (the data is plain and stays usable).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
