//! The history of runs on disk: one JSON Lines log per run (the same format as an
//! export) under the app's data folder, so the desktop app and the CLI share it and a
//! run can be opened later, replayed or sent to someone.
//!
//! The data folder is `$TANDEM_DATA_DIR`, else `$XDG_DATA_HOME/tandem`, else
//! `~/.local/share/tandem`; runs go in its `runs/` folder as `RUN_ID.jsonl`.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::export::jsonl::{load_log, save_log};
use crate::record::RunRecord;

/// The default data folder, from the environment; `None` without a home folder.
pub fn default_data_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("TANDEM_DATA_DIR") {
        return Some(dir);
    }
    if let Some(xdg) = var("XDG_DATA_HOME") {
        return Some(xdg.join("tandem"));
    }
    var("HOME").map(|home| home.join(".local").join("share").join("tandem"))
}

/// A line of the history listing: what a list view shows, read without parsing steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub run_id: String,
    pub comparison_id: Option<String>,
    pub created_at: String,
    pub mode: String,
    pub target: String,
    pub draft: Option<String>,
    pub prompt: String,
    pub new_tokens: usize,
    pub tokens_per_second: f64,
    pub path: PathBuf,
}

/// The runs folder. Cheap to clone; every call goes to the disk, so two processes (the
/// app and the CLI) see each other's runs.
#[derive(Clone, Debug)]
pub struct RunHistory {
    runs_dir: PathBuf,
}

impl RunHistory {
    /// The history under `data_dir` (created on the first save).
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            runs_dir: data_dir.as_ref().join("runs"),
        }
    }

    /// The history in the default data folder.
    pub fn open_default() -> Option<Self> {
        default_data_dir().map(Self::new)
    }

    pub fn runs_dir(&self) -> &Path {
        &self.runs_dir
    }

    pub fn path_of(&self, run_id: &str) -> PathBuf {
        self.runs_dir.join(format!("{run_id}.jsonl"))
    }

    pub fn save(&self, record: &RunRecord) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.runs_dir)
            .map_err(|e| EngineError::io(format!("creating {}", self.runs_dir.display()), e))?;
        let path = self.path_of(record.run_id());
        save_log(record, &path)?;
        Ok(path)
    }

    pub fn load(&self, run_id: &str) -> Result<RunRecord> {
        if !is_plain_id(run_id) {
            return Err(EngineError::InvalidRequest(format!(
                "`{run_id}` is not a run id"
            )));
        }
        load_log(&self.path_of(run_id))
    }

    pub fn delete(&self, run_id: &str) -> Result<()> {
        if !is_plain_id(run_id) {
            return Err(EngineError::InvalidRequest(format!(
                "`{run_id}` is not a run id"
            )));
        }
        let path = self.path_of(run_id);
        std::fs::remove_file(&path)
            .map_err(|e| EngineError::io(format!("deleting {}", path.display()), e))
    }

    /// Every readable run, newest first (ids sort by time). Unreadable files are skipped:
    /// one bad file must not hide the rest.
    pub fn list(&self) -> Result<Vec<HistoryEntry>> {
        let entries = match std::fs::read_dir(&self.runs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(EngineError::io(
                    format!("listing {}", self.runs_dir.display()),
                    e,
                ))
            }
        };
        let mut list: Vec<HistoryEntry> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .filter_map(|p| entry_of(&p))
            .collect();
        list.sort_by(|a, b| b.run_id.cmp(&a.run_id));
        Ok(list)
    }
}

/// Ids name files: refuse anything that could step outside the runs folder.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Reads a log's header and summary lines only.
fn entry_of(path: &Path) -> Option<HistoryEntry> {
    let file = std::fs::File::open(path).ok()?;
    let mut lines = std::io::BufReader::new(file).lines().map_while(|l| l.ok());
    let header: serde_json::Value = serde_json::from_str(&lines.next()?).ok()?;
    let summary: serde_json::Value = serde_json::from_str(&lines.last()?).ok()?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    if header["type"] != "header" || summary["type"] != "summary" {
        return None;
    }
    Some(HistoryEntry {
        run_id: text(&header["run_id"])?,
        comparison_id: text(&header["comparison_id"]),
        created_at: text(&header["created_at"]).unwrap_or_default(),
        mode: text(&header["mode"]["kind"]).unwrap_or_default(),
        target: text(&header["target"]["name"]).unwrap_or_default(),
        draft: text(&header["draft"]["name"]),
        prompt: text(&header["prompt"]).unwrap_or_default(),
        new_tokens: summary["summary"]["new_tokens"].as_u64().unwrap_or(0) as usize,
        tokens_per_second: summary["summary"]["tokens_per_second"]
            .as_f64()
            .unwrap_or(0.0),
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunMode;
    use crate::testing::fake_record;

    #[test]
    fn saved_runs_list_newest_first_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let history = RunHistory::new(dir.path());
        assert!(
            history.list().unwrap().is_empty(),
            "no folder yet: an empty history"
        );
        let older = fake_record("run-20260101-000000-000-plain", RunMode::Plain, 1, 100.0);
        let newer = fake_record(
            "run-20260102-000000-000-speculative",
            RunMode::Speculative,
            1,
            50.0,
        );
        history.save(&older).unwrap();
        history.save(&newer).unwrap();
        std::fs::write(history.runs_dir().join("junk.jsonl"), "not json\n").unwrap();

        let list = history.list().unwrap();
        let ids: Vec<&str> = list.iter().map(|e| e.run_id.as_str()).collect();
        assert_eq!(ids, [newer.run_id(), older.run_id()]);
        assert_eq!(list[0].mode, "speculative");
        assert_eq!(list[0].draft.as_deref(), Some("draft"));
        assert_eq!(list[1].draft, None);
        assert_eq!((list[0].new_tokens, list[0].tokens_per_second), (8, 160.0));

        assert_eq!(history.load(newer.run_id()).unwrap(), newer);
        history.delete(older.run_id()).unwrap();
        assert_eq!(history.list().unwrap().len(), 1);
        assert!(history.load("../etc/passwd").is_err());
    }
}
