//! The session: what the desktop app (and the CLI) hold. It owns the loaded pair, runs
//! generations, races and suites on it, streams their events, saves every run to the
//! history, and can be cancelled from another thread.
//!
//! `Session` is `Send + Sync`: the app keeps it in shared state, runs a generation on a
//! worker thread, and meanwhile answers the UI (history, pair info, cancel) from other
//! threads. The models sit behind their own lock, held for a whole run; everything the
//! UI asks for while a run is going lives outside that lock. A second run while one is
//! going is refused ([`EngineError::Busy`]) rather than queued: the UI decides.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use serde::{Deserialize, Serialize};
use tandem_decode::GenerationEvent;
use tandem_model::tokenizer::ChatOptions;
use tandem_model::{ChatMessage, ChatTemplate};

use crate::compare::{run_comparison, CompareRequest, Comparison, RaceEvent};
use crate::error::{EngineError, Result};
use crate::history::{HistoryEntry, RunHistory};
use crate::pair::{LoadedPair, PairInfo, PairSpec};
use crate::predict::{predict, PredictRequest, Prediction};
use crate::record::{run_recorded, RunContext, RunRecord};
use crate::run::{ChatKey, ChatPrompts, GenerateRequest, RunMode};
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
    ///
    /// The current pair is dropped before the new one loads: holding both would need the
    /// memory of two pairs at once, so a pair the recommender says fits would not. The
    /// price: when the new pair fails to load, no pair is loaded.
    pub fn load(&self, spec: &PairSpec) -> Result<PairInfo> {
        let mut slot = lock(&self.pair);
        *lock(&self.info) = None;
        drop(slot.take());
        let loaded = LoadedPair::load(spec)?;
        let info = loaded.info();
        *slot = Some(loaded);
        *lock(&self.info) = Some(info.clone());
        Ok(info)
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
        self.with_pair_for(&[request], |pair, cancel| {
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
        self.with_pair_for(&[&request.request], |pair, cancel| {
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
        let item_requests: Vec<GenerateRequest> = items
            .iter()
            .map(|item| GenerateRequest {
                prompt: item.prompt.clone(),
                ..request.request.clone()
            })
            .collect();
        let item_requests: Vec<&GenerateRequest> = item_requests.iter().collect();
        self.with_pair_for(&item_requests, |pair, cancel| {
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
        let alpha_requests: Vec<GenerateRequest> = request
            .alpha_prompts
            .iter()
            .map(|prompt| GenerateRequest {
                chat: request.chat,
                enable_thinking: request.enable_thinking,
                ..GenerateRequest::new(prompt.clone(), RunMode::Speculative)
            })
            .collect();
        let alpha_requests: Vec<&GenerateRequest> = alpha_requests.iter().collect();
        self.with_pair_for(&alpha_requests, |pair, _| predict(pair, request))
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

    /// [`Self::with_pair`] for a job that runs `requests`: their chat prompts are rendered
    /// first, without the models. A chat template is code from the model's repo; however
    /// long it runs (fuel bounds it) it must not hold the model lock, which load, unload
    /// and the next run wait on. A template error ends the job before it starts.
    fn with_pair_for<T>(
        &self,
        requests: &[&GenerateRequest],
        job: impl FnOnce(&mut LoadedPair, Arc<AtomicBool>) -> Result<T>,
    ) -> Result<T> {
        let prompts = self.render_chat_prompts(requests)?;
        self.with_pair(|pair, cancel| {
            // Only if the pair was not swapped while the prompts rendered.
            pair.target.chat_prompts =
                prompts.filter(|p| pair.target.tokenizer.chat_template() == Some(&p.template));
            let result = job(pair, cancel);
            pair.target.chat_prompts = None;
            result
        })
    }

    /// Renders the chat prompts of `requests` with a copy of the target's template, taken
    /// under the model lock and rendered after it is released. `None` when there is
    /// nothing to render (no chat request, no pair or no template: the job reports those).
    fn render_chat_prompts(&self, requests: &[&GenerateRequest]) -> Result<Option<ChatPrompts>> {
        let prompts: BTreeSet<ChatKey> = requests
            .iter()
            .filter(|r| r.chat)
            .map(|r| r.chat_key())
            .collect();
        if prompts.is_empty() {
            return Ok(None);
        }
        let template = match self.pair.try_lock() {
            Ok(guard) => target_template(&guard),
            Err(TryLockError::WouldBlock) => return Err(EngineError::Busy),
            Err(TryLockError::Poisoned(poisoned)) => target_template(&poisoned.into_inner()),
        };
        let Some(template) = template else {
            return Ok(None);
        };
        let rendered = prompts
            .into_iter()
            .map(|(prompt, enable_thinking)| {
                let text = template.render_with(
                    &[ChatMessage::new("user", prompt.as_str())],
                    true,
                    &ChatOptions::thinking(enable_thinking),
                )?;
                Ok(((prompt, enable_thinking), text))
            })
            .collect::<Result<_>>()?;
        Ok(Some(ChatPrompts { template, rendered }))
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

fn target_template(pair: &Option<LoadedPair>) -> Option<ChatTemplate> {
    pair.as_ref()?.target.tokenizer.chat_template().cloned()
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

    use tandem_model::test_models::fixture_dir;

    #[test]
    fn switching_pairs_releases_the_old_pair_before_loading_the_new() {
        let session = Session::new(None);
        session
            .load(&PairSpec::new(fixture_dir("qwen2-bias")))
            .unwrap();
        // Nothing of the old pair may be held while the new one loads. Seen from outside:
        // when the new pair cannot load, the old one is already gone (before, both pairs
        // were in memory at once and a failed switch kept the old one).
        let missing = PairSpec::new(fixture_dir("no-such-model"));
        assert!(session.load(&missing).is_err());
        assert!(session.pair_info().is_none());
        assert!(lock(&session.pair).is_none(), "the old models were freed");
        let info = session
            .load(&PairSpec::new(fixture_dir("qwen2-bias")))
            .unwrap();
        assert_eq!(
            session.pair_info().unwrap().target.vocab_size,
            info.target.vocab_size
        );
    }

    /// A copy of a fixture whose chat template never ends (minijinja's fuel stops it).
    fn fixture_with_endless_template() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture_dir("qwen2-bias")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
        let config = dir.path().join("tokenizer_config.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        json["chat_template"] = serde_json::json!(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        );
        std::fs::write(&config, json.to_string()).unwrap();
        dir
    }

    #[test]
    fn chat_prompts_are_rendered_before_the_models_are_taken() {
        let session = Session::new(None);
        session
            .load(&PairSpec::new(fixture_dir("qwen2-bias")))
            .unwrap();
        let mut request = GenerateRequest::new("hi", RunMode::Plain);
        request.chat = true;
        let seen = session
            .with_pair_for(&[&request], |pair, _| {
                let expected = pair
                    .target
                    .tokenizer
                    .apply_chat_template(&[tandem_model::ChatMessage::new("user", "hi")], true)?;
                // Rendered already, so prompt_text does not run the template again.
                let prompts = pair.target.chat_prompts.as_ref().expect("rendered");
                assert_eq!(
                    prompts.rendered.get(&("hi".to_string(), None)),
                    Some(&expected)
                );
                crate::run::prompt_text(&pair.target, &request)
            })
            .unwrap();
        assert!(seen.contains("hi"), "{seen}");
        // Not kept past the job.
        assert!(lock(&session.pair)
            .as_ref()
            .unwrap()
            .target
            .chat_prompts
            .is_none());
    }

    #[test]
    fn a_runaway_chat_template_fails_before_the_run_starts() {
        let dir = fixture_with_endless_template();
        let session = Session::new(None);
        session.load(&PairSpec::new(dir.path())).unwrap();
        let mut request = GenerateRequest::new("hi", RunMode::Plain);
        request.chat = true;
        let mut events = Vec::new();
        let err = session
            .generate(&request, &mut |event| events.push(event))
            .unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
        // The template ran before the models were taken: no run was started.
        assert!(events.is_empty(), "{events:?}");
        assert!(!session.is_busy());
        // Without the chat template the models still run.
        request.chat = false;
        request.max_new_tokens = 2;
        session.generate(&request, &mut |_| {}).unwrap();
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
