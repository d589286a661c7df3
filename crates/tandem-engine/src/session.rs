//! The session: what the desktop app (and the CLI) hold. It owns the loaded pair, runs
//! generations, races and suites on it, streams their events, saves every run to the
//! history, and can be cancelled from another thread.
//!
//! `Session` is `Send + Sync`: the app keeps it in shared state, runs a generation on a
//! worker thread, and meanwhile answers the UI (history, pair info, cancel) from other
//! threads. The models sit behind their own lock, held for a whole run; everything the
//! UI asks for while a run is going lives outside that lock. A second run while one is
//! going is refused ([`EngineError::Busy`]) rather than queued: the UI decides.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use serde::{Deserialize, Serialize};
use tandem_decode::GenerationEvent;

use crate::compare::{run_comparison, CompareRequest, Comparison, RaceEvent};
use crate::error::{EngineError, Result};
use crate::history::{HistoryEntry, RunHistory};
use crate::pair::{LoadedPair, PairInfo, PairSpec};
use crate::predict::{predict, PredictRequest, Prediction};
use crate::record::{run_recorded, RunContext, RunRecord};
use crate::run::{GenerateRequest, RunMode};
use crate::suite::{run_suite, SuiteEvent, SuiteItem, SuiteReport};
use crate::text::TextPiece;

/// What a session reports while it works, as plain data for IPC (`type` tags it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// Warm-up runs before a race (not recorded).
    WarmUp,
    /// A suite moves on to its next prompt.
    SuiteItem {
        index: usize,
        total: usize,
        id: String,
        category: String,
    },
    /// A run starts.
    Started {
        run_id: String,
        comparison_id: Option<String>,
        mode: RunMode,
    },
    /// A decode event of a run, with the text it released, coloured by origin.
    Decode {
        run_id: String,
        event: GenerationEvent,
        pieces: Vec<TextPiece>,
    },
    /// A run ended; `saved_to` is its log in the history.
    Finished {
        run_id: String,
        saved_to: Option<PathBuf>,
    },
}

/// Receives a session's events.
pub type RunEventSink<'a> = dyn FnMut(RunEvent) + 'a;

pub struct Session {
    history: Option<RunHistory>,
    /// The models, held for the length of a run.
    pair: Mutex<Option<LoadedPair>>,
    /// A copy of the pair's description, readable while a run holds `pair`.
    info: Mutex<Option<PairInfo>>,
    /// The running job's cancel flag.
    cancel: CancelHandle,
}

/// Cancels whatever job its session is running; cheap to clone and `'static`, for a
/// Ctrl-C handler or a UI thread that does not hold the session.
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<Mutex<Option<Arc<AtomicBool>>>>);

impl CancelHandle {
    /// Asks the running job to stop after its current step; returns whether one was running.
    pub fn cancel(&self) -> bool {
        match &*lock(&self.0) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    fn is_running(&self) -> bool {
        lock(&self.0).is_some()
    }

    fn set(&self, flag: Option<Arc<AtomicBool>>) {
        *lock(&self.0) = flag;
    }
}

impl Session {
    /// A session saving runs to `history` (`None`: runs are not kept).
    pub fn new(history: Option<RunHistory>) -> Self {
        Self {
            history,
            pair: Mutex::new(None),
            info: Mutex::new(None),
            cancel: CancelHandle::default(),
        }
    }

    /// Loads a pair, replacing the current one. Blocks until a running job ends.
    pub fn load(&self, spec: &PairSpec) -> Result<PairInfo> {
        let loaded = LoadedPair::load(spec)?;
        self.install(loaded)
    }

    /// Installs models loaded elsewhere.
    pub fn install(&self, pair: LoadedPair) -> Result<PairInfo> {
        let info = pair.info();
        *lock(&self.pair) = Some(pair);
        *lock(&self.info) = Some(info.clone());
        Ok(info)
    }

    /// Drops the models. Blocks until a running job ends.
    pub fn unload(&self) {
        *lock(&self.pair) = None;
        *lock(&self.info) = None;
    }

    /// The loaded pair, if any; never waits for a run.
    pub fn pair_info(&self) -> Option<PairInfo> {
        lock(&self.info).clone()
    }

    pub fn history(&self) -> Option<&RunHistory> {
        self.history.as_ref()
    }

    /// The history listing, newest first (empty without a history).
    pub fn list_history(&self) -> Result<Vec<HistoryEntry>> {
        self.history
            .as_ref()
            .map_or(Ok(Vec::new()), RunHistory::list)
    }

    /// Is a job running?
    pub fn is_busy(&self) -> bool {
        self.cancel.is_running()
    }

    /// Asks the running job to stop after its current step; returns whether one was running.
    pub fn cancel(&self) -> bool {
        self.cancel.cancel()
    }

    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// One generation, saved to the history.
    pub fn generate(
        &self,
        request: &GenerateRequest,
        on_event: &mut RunEventSink<'_>,
    ) -> Result<RunRecord> {
        self.with_pair(|pair, cancel| {
            let context = RunContext::new(&request.mode);
            let run_id = context.run_id.clone();
            on_event(RunEvent::Started {
                run_id: run_id.clone(),
                comparison_id: None,
                mode: request.mode.clone(),
            });
            let mut forward = |event: &GenerationEvent, pieces: &[TextPiece]| {
                on_event(decode_event(&run_id, event, pieces));
            };
            let record = run_recorded(pair, request, context, &mut forward, Some(cancel))?;
            let saved_to = self.save(&record)?;
            on_event(RunEvent::Finished { run_id, saved_to });
            Ok(record)
        })
    }

    /// A race of the request's modes, each run saved to the history.
    pub fn compare(
        &self,
        request: &CompareRequest,
        on_event: &mut RunEventSink<'_>,
    ) -> Result<Comparison> {
        self.with_pair(|pair, cancel| {
            let mut saved = Ok(());
            let comparison = run_comparison(
                pair,
                request,
                None,
                &mut |event| self.forward_race(event, on_event, &mut saved),
                Some(cancel),
            )?;
            saved?;
            Ok(comparison)
        })
    }

    /// A benchmark suite, each run saved to the history.
    pub fn run_suite(
        &self,
        items: &[SuiteItem],
        request: &CompareRequest,
        max_tokens_cap: Option<usize>,
        on_event: &mut RunEventSink<'_>,
    ) -> Result<SuiteReport> {
        self.with_pair(|pair, cancel| {
            let mut saved = Ok(());
            let report = run_suite(
                pair,
                items,
                request,
                max_tokens_cap,
                &mut |event| match event {
                    SuiteEvent::Item { index, total, item } => on_event(RunEvent::SuiteItem {
                        index,
                        total,
                        id: item.id.clone(),
                        category: item.category.clone(),
                    }),
                    SuiteEvent::Race(event) => self.forward_race(event, on_event, &mut saved),
                },
                Some(cancel),
            )?;
            saved?;
            Ok(report)
        })
    }

    /// Measures the pair and predicts its speedup for each γ.
    pub fn predict(&self, request: &PredictRequest) -> Result<Prediction> {
        self.with_pair(|pair, _| predict(pair, request))
    }

    /// Turns a race event into a session event, saving finished runs; the first save
    /// error is kept in `saved` (the race goes on: its results are still worth showing).
    fn forward_race(
        &self,
        event: RaceEvent<'_>,
        on_event: &mut RunEventSink<'_>,
        saved: &mut Result<()>,
    ) {
        let event = match event {
            RaceEvent::WarmUp => RunEvent::WarmUp,
            RaceEvent::RunStarted {
                run_id,
                comparison_id,
                mode,
            } => RunEvent::Started {
                run_id: run_id.to_string(),
                comparison_id: Some(comparison_id.to_string()),
                mode: mode.clone(),
            },
            RaceEvent::Decode {
                run_id,
                event,
                pieces,
            } => decode_event(run_id, event, pieces),
            RaceEvent::RunFinished { record } => {
                let saved_to = match self.save(record) {
                    Ok(path) => path,
                    Err(e) => {
                        if saved.is_ok() {
                            *saved = Err(e);
                        }
                        None
                    }
                };
                RunEvent::Finished {
                    run_id: record.run_id().to_string(),
                    saved_to,
                }
            }
        };
        on_event(event);
    }

    fn save(&self, record: &RunRecord) -> Result<Option<PathBuf>> {
        self.history.as_ref().map(|h| h.save(record)).transpose()
    }

    /// Runs `job` with the models and a fresh cancel flag; refuses if a job is running.
    fn with_pair<T>(
        &self,
        job: impl FnOnce(&mut LoadedPair, Arc<AtomicBool>) -> Result<T>,
    ) -> Result<T> {
        let mut guard = match self.pair.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => return Err(EngineError::Busy),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        let pair = guard.as_mut().ok_or(EngineError::NotLoaded)?;
        let flag = Arc::new(AtomicBool::new(false));
        self.cancel.set(Some(flag.clone()));
        let result = job(pair, flag);
        self.cancel.set(None);
        result
    }
}

fn decode_event(run_id: &str, event: &GenerationEvent, pieces: &[TextPiece]) -> RunEvent {
    RunEvent::Decode {
        run_id: run_id.to_string(),
        event: event.clone(),
        pieces: pieces.to_vec(),
    }
}

/// Locks a mutex, recovering from poisoning: a panicked run leaves plain data behind
/// (an id, a flag, the models' caches are reset by the next run), nothing half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Session>();
    }

    #[test]
    fn events_are_tagged_json() {
        let event = RunEvent::Finished {
            run_id: "run-1".into(),
            saved_to: None,
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"type":"finished","run_id":"run-1","saved_to":null}"#
        );
        assert_eq!(serde_json::from_str::<RunEvent>(&json).unwrap(), event);
    }

    #[test]
    fn nothing_runs_without_models() {
        let session = Session::new(None);
        let request = GenerateRequest::new("hi", RunMode::Plain);
        assert!(matches!(
            session.generate(&request, &mut |_| {}),
            Err(EngineError::NotLoaded)
        ));
        assert!(!session.cancel(), "nothing to cancel");
        assert!(session.pair_info().is_none());
        assert!(session.list_history().unwrap().is_empty());
    }
}
