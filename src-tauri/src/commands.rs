//! The commands the UI invokes (names and payloads: ui/src/ipc.ts, docs/ipc.md). Anything
//! slow — downloads, loading, generating, the save dialog — runs off the UI thread:
//! downloads on the async runtime, the rest on blocking worker threads.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tandem_engine::compare::{CompareRequest as EngineCompareRequest, Comparison};
use tandem_engine::export::{atomic::write_atomically, csv::write_csv, html, jsonl::write_log};
use tandem_engine::record::RunRecord as EngineRecord;
use tandem_engine::{
    BackendKind, GenerateRequest, GenerationEvent, HistoryEntry as EngineEntry, PairSpec,
    Precision, RunEvent as EngineEvent,
};
use tandem_hub::{CancelToken, DownloadEvent, DownloadOptions};
use tandem_model::Tokenizer;
use tandem_pairs::{doctor_models_async, DoctorOptions, Verdict, DEFAULT_CONTEXT_LEN};
use tauri::ipc::Channel;
use tauri::{AppHandle, State};

use crate::convert::{self, comparison_record, lane_of, run_record, step_vocab, LaneDecoder};
use crate::error::{AppError, AppResult};
use crate::hardware;
use crate::ipc::*;
use crate::state::{lock, AppState};

type AppStateRef<'a> = State<'a, Arc<AppState>>;

/// Runs blocking work on a worker thread.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    tauri::async_runtime::spawn_blocking(job)
        .await
        .map_err(|e| AppError::internal(format!("a worker thread failed: {e}")))?
}

// ---- The computer and the catalog ----------------------------------------------------

#[tauri::command]
pub async fn app_info(state: AppStateRef<'_>) -> AppResult<AppInfo> {
    let state = state.inner().clone();
    // nvidia-smi and the memory probe take a moment: not on the UI thread.
    blocking(move || {
        let mut backends = vec![BackendKind::Cpu];
        if cfg!(feature = "cuda") {
            backends.push(BackendKind::Cuda);
        }
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            backends,
            hardware: hardware::hardware(),
            hub_endpoint: state.hub_env.endpoint.clone(),
            cache_dir: state.hub_env.hub_cache.display().to_string(),
            has_token: state.has_token(),
            history_dir: state.data_dir.join("runs").display().to_string(),
            notices: state.notices.clone(),
        })
    })
    .await
}

#[tauri::command]
pub fn catalog(state: AppStateRef<'_>) -> CatalogInfo {
    CatalogInfo {
        about: state.catalog.about.clone(),
        pairs: state.catalog.pairs().to_vec(),
        custom: lock(&state.custom).clone(),
    }
}

#[tauri::command]
pub async fn local_models(state: AppStateRef<'_>) -> AppResult<LocalModels> {
    let state = state.inner().clone();
    blocking(move || {
        let client = state.hub_client()?;
        let cached = client.list_cached_models()?;
        let models: Vec<LocalModel> = cached
            .iter()
            .map(|m| LocalModel {
                repo_id: m.repo_id.clone(),
                dir: m.dir.display().to_string(),
                size_on_disk: m.size_on_disk,
                partial_bytes: m.partial_bytes,
                complete: m.partial_bytes == 0 && complete_snapshot(m).is_some(),
            })
            .collect();
        let cache_dir = client.cache_dir().to_path_buf();
        Ok(LocalModels {
            used_bytes: models.iter().map(|m| m.size_on_disk).sum(),
            free_bytes: hardware::free_space(&cache_dir),
            cache_dir: cache_dir.display().to_string(),
            models,
        })
    })
    .await
}

fn snapshot_dir(model_dir: &Path, commit: Option<&str>) -> Option<PathBuf> {
    Some(model_dir.join("snapshots").join(commit?))
}

/// A snapshot Tandem can load: configs, tokenizer and weights.
fn is_complete(dir: &Path) -> bool {
    let has = |name: &str| dir.join(name).is_file();
    let weights = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
        })
        .unwrap_or(false);
    has("config.json") && has("tokenizer.json") && weights
}

/// The GGUF files LM Studio and Ollama keep (and GGUFs in the Hugging Face cache), for
/// the Models view's "from other apps" list; the cache's safetensors repos are
/// `local_models`' already.
#[tauri::command]
pub async fn local_files() -> AppResult<Vec<LocalFile>> {
    blocking(|| {
        let found = tandem_pairs::find_local_models(&tandem_pairs::ModelFolders::from_env());
        Ok(found
            .into_iter()
            .filter(|m| m.format == "gguf")
            .map(|m| LocalFile {
                source: m.source,
                name: m.name,
                path: m.path.display().to_string(),
                size_bytes: m.size_bytes,
                architecture: m.architecture,
                precision: m.precision,
                problem: m.problem,
            })
            .collect())
    })
    .await
}

/// The snapshot of a cached model to load: the one `refs/main` names when it is
/// complete, else the newest complete one (a cache where a ref was moved by a
/// config-only check, by an older Tandem or another tool, still loads).
fn complete_snapshot(model: &tandem_hub::CachedModel) -> Option<PathBuf> {
    if let Some(main) = snapshot_dir(&model.dir, model.main_commit()).filter(|d| is_complete(d)) {
        return Some(main);
    }
    model
        .snapshots
        .iter()
        .filter_map(|s| snapshot_dir(&model.dir, Some(&s.commit)))
        .filter(|d| is_complete(d))
        .max_by_key(|d| std::fs::metadata(d).and_then(|m| m.modified()).ok())
}

/// The folder of a downloaded model: a folder path as is, else the cache's snapshot of the repo.
fn model_dir(state: &AppState, model: &str) -> AppResult<PathBuf> {
    let path = Path::new(model);
    if path.is_dir() || tandem_model::formats::gguf::is_gguf_file(path) {
        return Ok(path.to_path_buf());
    }
    let client = state.hub_client()?;
    let cached = client.list_cached_models()?;
    let found = cached
        .iter()
        .find(|m| m.repo_id.eq_ignore_ascii_case(model))
        .ok_or_else(|| {
            AppError::new("not_found", format!("model {model} is not downloaded yet"))
        })?;
    complete_snapshot(found).ok_or_else(|| {
        AppError::new(
            "not_found",
            format!("the download of {model} is not complete yet"),
        )
    })
}

// ---- Downloads --------------------------------------------------------------------------

#[tauri::command]
pub async fn download_model(
    state: AppStateRef<'_>,
    repo: String,
    on_event: Channel<DownloadEvent>,
) -> AppResult<DownloadDone> {
    let state = state.inner().clone();
    let client = state.hub_client()?;
    let cancel = CancelToken::new();
    let key = download_key(&repo);
    {
        let mut downloads = lock(&state.downloads);
        if downloads.contains_key(&key) {
            return Err(AppError::new(
                "busy",
                format!("{repo} is already downloading"),
            ));
        }
        downloads.insert(key.clone(), cancel.clone());
    }
    let options = DownloadOptions::new()
        .cancel_token(cancel)
        .on_event(move |event| {
            let _ = on_event.send(event);
        });
    let result = client.download_model(&repo, options).await;
    lock(&state.downloads).remove(&key);
    let snapshot = result?;
    Ok(DownloadDone {
        repo: snapshot.repo_id,
        snapshot_dir: snapshot.dir.display().to_string(),
    })
}

#[tauri::command]
pub fn cancel_download(state: AppStateRef<'_>, repo: String) {
    if let Some(cancel) = lock(&state.downloads).get(&download_key(&repo)) {
        cancel.cancel();
    }
}

/// Downloads are keyed as `model_dir` matches repo ids: the hub's ids ignore case.
fn download_key(repo: &str) -> String {
    repo.to_ascii_lowercase()
}

/// How long a delete waits for a cancelled download to stop writing (a chunk in flight
/// finishes or fails within the client's read timeout).
const DOWNLOAD_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until no download runs under `key` (its task removes it when it returns).
fn wait_for_download_to_stop(
    downloads: &std::sync::Mutex<HashMap<String, CancelToken>>,
    key: &str,
    limit: std::time::Duration,
) -> AppResult<()> {
    let start = Instant::now();
    while lock(downloads).contains_key(key) {
        if start.elapsed() > limit {
            return Err(AppError::new(
                "busy",
                format!(
                    "the download of {key} is still stopping; try deleting it again in a moment"
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// Whether the loaded pair uses the model `repo`, whose cache folder is `repo_dir`: by
/// folder (a pair loaded from the cache lives under it), and by id as `model_dir`
/// resolves ids (ignoring case).
fn loaded_uses(loaded: &LoadedPair, repo: &str, repo_dir: Option<&Path>) -> bool {
    let uses = |m: &LoadedModelInfo| {
        m.name.eq_ignore_ascii_case(repo)
            || repo_dir.is_some_and(|dir| Path::new(&m.dir).starts_with(dir))
    };
    uses(&loaded.target) || loaded.draft.as_ref().is_some_and(uses)
}

#[tauri::command]
pub async fn delete_model(state: AppStateRef<'_>, repo: String) -> AppResult<bool> {
    let state = state.inner().clone();
    let key = download_key(&repo);
    if let Some(cancel) = lock(&state.downloads).get(&key) {
        cancel.cancel();
    }
    blocking(move || {
        // Deleting under a running download would race its writes (a blob renamed into
        // place after the folder went): wait for it to stop first.
        wait_for_download_to_stop(&state.downloads, &key, DOWNLOAD_STOP_WAIT)?;
        let client = state.hub_client()?;
        let repo_dir = client
            .list_cached_models()?
            .into_iter()
            .find(|m| m.repo_id.eq_ignore_ascii_case(&repo))
            .map(|m| m.dir);
        let uses_it = lock(&state.loaded)
            .as_ref()
            .is_some_and(|l| loaded_uses(l, &repo, repo_dir.as_deref()));
        if uses_it {
            state.session.unload();
            *lock(&state.loaded) = None;
            *lock(&state.tokenizer) = None;
        }
        Ok(client.remove_model(&repo)?)
    })
    .await
}

#[tauri::command]
pub fn set_hub_token(state: AppStateRef<'_>, token: Option<String>) -> bool {
    *lock(&state.token) = token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    state.has_token()
}

// ---- Pairs --------------------------------------------------------------------------------

fn parse_precision(text: &str) -> AppResult<Precision> {
    text.parse().map_err(|_| {
        AppError::new(
            "invalid_request",
            format!("unknown precision {text:?}: use f32 or int8"),
        )
    })
}

#[tauri::command]
pub async fn doctor_pair(
    state: AppStateRef<'_>,
    draft: String,
    target: String,
    precision: String,
) -> AppResult<Verdict> {
    let client = state.hub_client()?;
    let options = DoctorOptions {
        precision: parse_precision(&precision)?,
        context_len: DEFAULT_CONTEXT_LEN,
    };
    Ok(doctor_models_async(&client, draft.trim(), target.trim(), &options).await?)
}

#[tauri::command]
pub async fn add_custom_pair(
    state: AppStateRef<'_>,
    draft: String,
    target: String,
) -> AppResult<CustomPair> {
    let (draft, target) = (draft.trim().to_string(), target.trim().to_string());
    let client = state.hub_client()?;
    let verdict = doctor_models_async(&client, &draft, &target, &DoctorOptions::default()).await?;
    let mut custom = lock(&state.custom);
    let pair = CustomPair {
        id: format!(
            "custom-{}",
            custom.iter().map(|p| id_number(&p.id)).max().unwrap_or(0) + 1
        ),
        draft,
        target,
        verdict: Some(verdict),
    };
    custom.push(pair.clone());
    state.save_custom(&custom)?;
    Ok(pair)
}

fn id_number(id: &str) -> u64 {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tauri::command]
pub fn remove_custom_pair(state: AppStateRef<'_>, id: String) -> AppResult<()> {
    let mut custom = lock(&state.custom);
    custom.retain(|p| p.id != id);
    state.save_custom(&custom)
}

#[tauri::command]
pub async fn load_pair(state: AppStateRef<'_>, request: LoadRequest) -> AppResult<LoadedPair> {
    let state = state.inner().clone();
    blocking(move || {
        let precision = parse_precision(&request.precision)?;
        let target_dir = model_dir(&state, &request.target)?;
        let draft_dir = request
            .draft
            .as_deref()
            .map(|d| model_dir(&state, d))
            .transpose()?;
        let mut spec = PairSpec::new(&target_dir);
        spec.draft = draft_dir.clone();
        spec.backend = request.backend;
        spec.target_precision = precision;
        spec.draft_precision = precision;
        // The session frees the current pair before loading the new one: so does the app.
        *lock(&state.loaded) = None;
        *lock(&state.tokenizer) = None;
        let info = state.session.load(&spec)?;
        let model_info = |name: &str, dir: &Path, vocab_size: usize| LoadedModelInfo {
            name: name.to_string(),
            dir: dir.display().to_string(),
            architecture: architecture(dir),
            vocab_size,
            load_ms: info.load_ms,
        };
        let loaded = LoadedPair {
            target: model_info(&request.target, &target_dir, info.target.vocab_size),
            draft: match (&request.draft, &draft_dir, &info.draft) {
                (Some(name), Some(dir), Some(p)) => Some(model_info(name, dir, p.vocab_size)),
                _ => None,
            },
            precision: precision.to_string(),
            backend: info.backend,
        };
        *lock(&state.tokenizer) = Tokenizer::from_dir(&target_dir).ok().map(Arc::new);
        *lock(&state.loaded) = Some(loaded.clone());
        Ok(loaded)
    })
    .await
}

/// The chat template of a downloaded model (a repo id or a path), read without its
/// tokenizer: whether it has a thinking switch, and its default.
#[tauri::command]
pub async fn chat_template_info(
    state: AppStateRef<'_>,
    model: String,
) -> AppResult<ChatTemplateInfo> {
    let state = state.inner().clone();
    blocking(move || {
        let dir = model_dir(&state, model.trim())?;
        Ok(template_info(&dir))
    })
    .await
}

/// A template that cannot be read offers nothing (loading the model reports why).
fn template_info(dir: &Path) -> ChatTemplateInfo {
    let template = tandem_model::ChatTemplate::from_dir(dir).ok().flatten();
    ChatTemplateInfo {
        has_template: template.is_some(),
        thinking_default: template.as_ref().and_then(|t| t.thinking_default()),
    }
}

fn architecture(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["architectures"][0].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[tauri::command]
pub fn loaded_pair(state: AppStateRef<'_>) -> Option<LoadedPair> {
    lock(&state.loaded).clone()
}

// ---- Runs and races ---------------------------------------------------------------------

/// Turns the engine's events into the UI's: per-token text, step end times, vocabulary.
struct Translator<'t> {
    channel: Channel<RunEvent>,
    tokenizer: Option<&'t Tokenizer>,
    prompt: String,
    lanes: HashMap<String, LiveLane<'t>>,
}

struct LiveLane<'t> {
    lane: Lane,
    start: Instant,
    decoder: LaneDecoder<'t>,
    elapsed: Vec<f64>,
    text: String,
}

impl<'t> Translator<'t> {
    fn new(channel: Channel<RunEvent>, tokenizer: Option<&'t Tokenizer>, prompt: &str) -> Self {
        Self {
            channel,
            tokenizer,
            prompt: prompt.to_string(),
            lanes: HashMap::new(),
        }
    }

    fn handle(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::Started { run_id, mode, .. } => {
                let live = LiveLane {
                    lane: lane_of(&mode),
                    start: Instant::now(),
                    decoder: LaneDecoder::new(self.tokenizer),
                    elapsed: Vec::new(),
                    text: String::new(),
                };
                self.lanes.insert(run_id, live);
            }
            EngineEvent::Decode {
                run_id,
                event,
                pieces,
            } => {
                let Some(live) = self.lanes.get_mut(&run_id) else {
                    return;
                };
                let ui = match event {
                    GenerationEvent::Started {
                        prompt_len,
                        max_new_tokens,
                        ..
                    } => {
                        live.start = Instant::now();
                        RunEvent::Started {
                            run_id,
                            lane: live.lane,
                            prompt_text: self.prompt.clone(),
                            prompt_len,
                            max_new_tokens,
                        }
                    }
                    GenerationEvent::Step(trace) => {
                        let elapsed_ms = live.start.elapsed().as_secs_f64() * 1e3;
                        live.elapsed.push(elapsed_ms);
                        let tokens = live.decoder.step(&trace, &pieces);
                        live.text.extend(tokens.iter().map(|t| t.text.as_str()));
                        let mut vocab = BTreeMap::new();
                        step_vocab(&trace, self.tokenizer, &mut vocab);
                        RunEvent::Step {
                            lane: live.lane,
                            step: StepRecord {
                                trace,
                                tokens,
                                elapsed_ms,
                            },
                            vocab,
                        }
                    }
                    GenerationEvent::Finished(summary) => {
                        let tail = (!pieces.is_empty()).then(|| tandem_engine::TextPiece {
                            text: pieces.iter().map(|p| p.text.as_str()).collect(),
                            origin: pieces[pieces.len() - 1].origin,
                        });
                        let mut text = live.text.clone();
                        if let Some(t) = &tail {
                            text.push_str(&t.text);
                        }
                        RunEvent::Finished {
                            lane: live.lane,
                            summary,
                            text,
                            tail,
                        }
                    }
                };
                let _ = self.channel.send(ui);
            }
            EngineEvent::Finished { .. } | EngineEvent::WarmUp | EngineEvent::SuiteItem { .. } => {}
        }
    }

    fn elapsed(&self, run_id: &str) -> Option<&[f64]> {
        self.lanes.get(run_id).map(|l| l.elapsed.as_slice())
    }
}

#[tauri::command]
pub async fn start_run(
    state: AppStateRef<'_>,
    request: GenerateRequest,
    on_event: Channel<RunEvent>,
) -> AppResult<RunRecord> {
    // Refused at the door, with the field named, before the run takes the models.
    tandem_engine::limits::check_generate(&request)?;
    let state = state.inner().clone();
    blocking(move || {
        let tokenizer = lock(&state.tokenizer).clone();
        let mut translator = Translator::new(on_event, tokenizer.as_deref(), &request.prompt);
        let record = state
            .session
            .generate(&request, &mut |e: EngineEvent| translator.handle(e))?;
        Ok(run_record(
            &record,
            tokenizer.as_deref(),
            translator.elapsed(record.run_id()),
        ))
    })
    .await
}

#[tauri::command]
pub async fn start_compare(
    state: AppStateRef<'_>,
    request: CompareRequest,
    on_event: Channel<RunEvent>,
) -> AppResult<ComparisonRecord> {
    if request.lanes.is_empty() {
        return Err(AppError::new(
            "invalid_request",
            "choose at least one mode to race",
        ));
    }
    let modes = request
        .lanes
        .iter()
        .map(|&l| convert::mode_of(l, &request.request))
        .collect();
    let engine_request = EngineCompareRequest::new(request.request.clone(), modes);
    tandem_engine::limits::check_compare(&engine_request)?;
    let state = state.inner().clone();
    blocking(move || {
        let tokenizer = lock(&state.tokenizer).clone();
        let mut translator =
            Translator::new(on_event, tokenizer.as_deref(), &request.request.prompt);
        let comparison = state
            .session
            .compare(&engine_request, &mut |e: EngineEvent| translator.handle(e))?;
        let runs = comparison
            .runs
            .iter()
            .map(|r| run_record(r, tokenizer.as_deref(), translator.elapsed(r.run_id())))
            .collect();
        Ok(comparison_record(&comparison, runs))
    })
    .await
}

#[tauri::command]
pub fn cancel_run(state: AppStateRef<'_>) {
    state.session.cancel();
}

// ---- History and export ---------------------------------------------------------------

/// History entries grouped into runs and races, newest first.
fn grouped_history(entries: &[EngineEntry]) -> Vec<HistoryEntry> {
    let mut out: Vec<HistoryEntry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for entry in entries {
        let lane = HistoryLane {
            lane: lane_from_label(&entry.mode),
            new_tokens: entry.new_tokens,
            tokens_per_second: entry.tokens_per_second,
            alpha: summary_alpha(&entry.path),
        };
        match &entry.comparison_id {
            Some(cid) if index.contains_key(cid) => {
                let group = &mut out[index[cid]];
                group.lanes.push(lane);
                group.lanes.sort_by_key(|l| l.lane);
                if group.draft.is_none() {
                    group.draft.clone_from(&entry.draft);
                }
                if entry.created_at < group.created_at {
                    group.created_at.clone_from(&entry.created_at);
                }
            }
            cid => {
                if let Some(cid) = cid {
                    index.insert(cid.clone(), out.len());
                }
                out.push(HistoryEntry {
                    id: cid.clone().unwrap_or_else(|| entry.run_id.clone()),
                    kind: if cid.is_some() { "comparison" } else { "run" },
                    created_at: entry.created_at.clone(),
                    title: convert::title_of(&entry.prompt),
                    target: entry.target.clone(),
                    draft: entry.draft.clone(),
                    lanes: vec![lane],
                });
            }
        }
    }
    out
}

fn lane_from_label(label: &str) -> Lane {
    match label {
        "speculative" => Lane::Speculative,
        "nasd" => Lane::Nasd,
        _ => Lane::Plain,
    }
}

/// α from a log's last line (its summary), read from the end of the file.
fn summary_alpha(path: &Path) -> Option<f64> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let take = len.min(64 * 1024);
    file.seek(SeekFrom::Start(len - take)).ok()?;
    let mut tail = String::new();
    file.take(take).read_to_string(&mut tail).ok()?;
    let last = tail.trim_end().rsplit('\n').next()?;
    let value: serde_json::Value = serde_json::from_str(last).ok()?;
    value["summary"]["alpha"].as_f64()
}

/// The records a history id names: one run, or every run of a race (in the order they ran).
fn records_of(state: &AppState, id: &str) -> AppResult<(Vec<EngineRecord>, bool)> {
    let history = state.history()?;
    let entries = history.list()?;
    let mut members: Vec<&EngineEntry> = entries
        .iter()
        .filter(|e| e.comparison_id.as_deref() == Some(id))
        .collect();
    if members.is_empty() {
        return Ok((vec![history.load(id)?], false));
    }
    members.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    let runs = members
        .iter()
        .map(|e| history.load(&e.run_id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((runs, true))
}

fn ui_runs(state: &AppState, records: &[EngineRecord]) -> Vec<RunRecord> {
    records
        .iter()
        .map(|r| {
            let tokenizer = state.tokenizer_for(&r.header.target.path);
            run_record(r, tokenizer.as_deref(), None)
        })
        .collect()
}

#[tauri::command]
pub async fn list_history(state: AppStateRef<'_>) -> AppResult<Vec<HistoryEntry>> {
    let state = state.inner().clone();
    blocking(move || Ok(grouped_history(&state.history()?.list()?))).await
}

#[tauri::command]
pub async fn get_history_entry(state: AppStateRef<'_>, id: String) -> AppResult<HistoryItem> {
    let state = state.inner().clone();
    blocking(move || {
        let (records, is_race) = records_of(&state, &id)?;
        let runs = ui_runs(&state, &records);
        if is_race {
            let comparison = Comparison {
                id: id.clone(),
                runs: records,
                cancelled: false,
            };
            Ok(HistoryItem::Comparison {
                comparison: comparison_record(&comparison, runs),
            })
        } else {
            let run = runs
                .into_iter()
                .next()
                .ok_or_else(|| AppError::internal("empty record"))?;
            Ok(HistoryItem::Run { run: Box::new(run) })
        }
    })
    .await
}

#[tauri::command]
pub async fn delete_history_entry(state: AppStateRef<'_>, id: String) -> AppResult<()> {
    let state = state.inner().clone();
    blocking(move || {
        let history = state.history()?;
        let (records, _) = records_of(&state, &id)?;
        for record in records {
            history.delete(record.run_id())?;
        }
        Ok(())
    })
    .await
}

/// Writes a run's or a race's log. JSONL holds each run's log (header, steps, summary)
/// one after the other; CSV has a row per run; HTML is the report with the coloured text
/// and charts.
fn write_export(
    path: &Path,
    id: &str,
    format: ExportFormat,
    records: Vec<EngineRecord>,
) -> AppResult<()> {
    let title = format!(
        "Tandem: {}",
        records
            .first()
            .map(|r| convert::title_of(&r.header.prompt))
            .unwrap_or_default()
    );
    let comparison = Comparison {
        id: id.to_string(),
        runs: records,
        cancelled: false,
    };
    let comparisons = std::slice::from_ref(&comparison);
    let result = match format {
        ExportFormat::Jsonl => write_atomically(path, |w| {
            comparison
                .runs
                .iter()
                .try_for_each(|r| write_log(r, &mut *w))
        }),
        ExportFormat::Csv => write_atomically(path, |w| write_csv(comparisons, w)),
        ExportFormat::Html => {
            let page = html::render_html(&html::Report {
                title,
                comparisons,
                summary: None,
                collapse_races: false,
            });
            write_atomically(path, |w| w.write_all(page.as_bytes()))
        }
    };
    result.map_err(|e| AppError::new("io", format!("writing {}: {e}", path.display())))
}

#[tauri::command]
pub async fn export_log(
    app: AppHandle,
    state: AppStateRef<'_>,
    id: String,
    format: ExportFormat,
) -> AppResult<Option<String>> {
    let state = state.inner().clone();
    blocking(move || {
        let (records, _) = records_of(&state, &id)?;
        let file_name = format!("tandem-{id}.{}", format.extension());
        // Tests answer the save dialog through the environment.
        let path = match std::env::var_os("TANDEM_EXPORT_DIR") {
            Some(dir) => Some(PathBuf::from(dir).join(&file_name)),
            None => ask_where_to_save(&app, &file_name, format)?,
        };
        let Some(path) = path else { return Ok(None) };
        write_export(&path, &id, format, records)?;
        Ok(Some(path.display().to_string()))
    })
    .await
}

/// Asks for a GGUF file to use as a model (the path, or `None` when the dialog was
/// closed). The file is checked: a file that is not GGUF is an error naming it.
#[tauri::command]
pub async fn pick_model_file(app: AppHandle) -> AppResult<Option<String>> {
    blocking(move || {
        use tauri_plugin_dialog::DialogExt;
        let picked = app
            .dialog()
            .file()
            .set_title("Open a GGUF model file")
            .add_filter("GGUF model", &["gguf"])
            .blocking_pick_file();
        let Some(picked) = picked else {
            return Ok(None);
        };
        let path = picked
            .into_path()
            .map_err(|e| AppError::internal(format!("the chosen path is not usable: {e}")))?;
        if !tandem_model::formats::gguf::is_gguf_file(&path) {
            return Err(AppError::new(
                "invalid_request",
                format!("{} is not a GGUF file", path.display()),
            ));
        }
        Ok(Some(path.display().to_string()))
    })
    .await
}

fn ask_where_to_save(
    app: &AppHandle,
    file_name: &str,
    format: ExportFormat,
) -> AppResult<Option<PathBuf>> {
    use tauri_plugin_dialog::DialogExt;
    let (label, ext) = match format {
        ExportFormat::Jsonl => ("JSON Lines log", "jsonl"),
        ExportFormat::Csv => ("CSV table", "csv"),
        ExportFormat::Html => ("HTML report", "html"),
    };
    let picked = app
        .dialog()
        .file()
        .set_title("Export the run log")
        .set_file_name(file_name)
        .add_filter(label, &[ext])
        .blocking_save_file();
    picked
        .map(|p| {
            p.into_path()
                .map_err(|e| AppError::internal(format!("the chosen path is not usable: {e}")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_whose_main_ref_moved_to_an_incomplete_snapshot_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = |commit: &str, complete: bool| {
            let d = dir.path().join("snapshots").join(commit);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("config.json"), "{}").unwrap();
            if complete {
                std::fs::write(d.join("tokenizer.json"), "{}").unwrap();
                std::fs::write(d.join("model.safetensors"), "x").unwrap();
            }
            tandem_hub::CachedSnapshot {
                commit: commit.into(),
                refs: if complete {
                    vec![]
                } else {
                    vec!["main".into()]
                },
                files: vec![],
            }
        };
        let model = tandem_hub::CachedModel {
            repo_id: "org/m".into(),
            dir: dir.path().to_path_buf(),
            size_on_disk: 0,
            partial_bytes: 0,
            // refs/main names a config-only snapshot (a README commit upstream).
            snapshots: vec![snapshot("new", false), snapshot("old", true)],
        };
        assert_eq!(
            complete_snapshot(&model),
            Some(dir.path().join("snapshots/old"))
        );
    }

    #[test]
    fn a_delete_waits_for_the_cancelled_download_to_stop() {
        let downloads = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let key = download_key("Org/Model");
        lock(&downloads).insert(key.clone(), CancelToken::new());
        let task = {
            let downloads = downloads.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(150));
                lock(&downloads).remove(&key);
            })
        };
        let start = Instant::now();
        wait_for_download_to_stop(&downloads, &key, std::time::Duration::from_secs(10)).unwrap();
        assert!(start.elapsed() >= std::time::Duration::from_millis(150));
        task.join().unwrap();
        // One that never stops is an error, not a delete under its feet.
        lock(&downloads).insert(key.clone(), CancelToken::new());
        let err = wait_for_download_to_stop(&downloads, &key, std::time::Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(err.code, "busy");
    }

    #[test]
    fn the_loaded_check_resolves_names_as_model_dir_does() {
        let info = |name: &str, dir: &str| LoadedModelInfo {
            name: name.into(),
            dir: dir.into(),
            architecture: String::new(),
            vocab_size: 0,
            load_ms: 0.0,
        };
        let cache = Path::new("/hf/hub/models--Qwen--Qwen2.5-0.5B");
        let pair = LoadedPair {
            target: info("/some/folder", "/some/folder"),
            draft: Some(info(
                "qwen/qwen2.5-0.5b",
                "/hf/hub/models--Qwen--Qwen2.5-0.5B/snapshots/abc",
            )),
            precision: "f32".into(),
            backend: BackendKind::Cpu,
        };
        // Another spelling of the id, and the folder under the repo's cache entry.
        assert!(loaded_uses(&pair, "Qwen/Qwen2.5-0.5B", None));
        assert!(loaded_uses(&pair, "Qwen/Qwen2.5-0.5B-Other", Some(cache)));
        assert!(!loaded_uses(&pair, "Qwen/Qwen2.5-1.5B", None));
        assert_eq!(
            download_key("Qwen/Qwen2.5-0.5B"),
            download_key("qwen/QWEN2.5-0.5b")
        );
    }

    fn entry(run: &str, cmp: Option<&str>, mode: &str) -> EngineEntry {
        EngineEntry {
            run_id: run.into(),
            comparison_id: cmp.map(str::to_string),
            created_at: format!("2026-01-01T00:00:0{}Z", run.len() % 10),
            mode: mode.into(),
            target: "t".into(),
            draft: (mode == "speculative").then(|| "d".to_string()),
            prompt: "Hello\nthere".into(),
            new_tokens: 10,
            tokens_per_second: 20.0,
            path: PathBuf::from("/nonexistent.jsonl"),
        }
    }

    #[test]
    fn races_are_grouped_and_single_runs_stay_alone() {
        let entries = [
            entry("run-3-nasd", None, "nasd"),
            entry("run-2-speculative", Some("cmp-1"), "speculative"),
            entry("run-1-plain", Some("cmp-1"), "plain"),
        ];
        let grouped = grouped_history(&entries);
        assert_eq!(grouped.len(), 2);
        assert_eq!(
            (grouped[0].id.as_str(), grouped[0].kind),
            ("run-3-nasd", "run")
        );
        assert_eq!(
            (grouped[1].id.as_str(), grouped[1].kind),
            ("cmp-1", "comparison")
        );
        let lanes: Vec<Lane> = grouped[1].lanes.iter().map(|l| l.lane).collect();
        assert_eq!(lanes, [Lane::Plain, Lane::Speculative]);
        assert_eq!(grouped[1].draft.as_deref(), Some("d"));
        assert_eq!(grouped[1].title, "Hello there");
    }

    #[test]
    fn the_thinking_switch_is_read_from_the_template_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = tandem_model::test_models::fixture_dir("qwen2-bias");
        for file in ["config.json", "tokenizer_config.json"] {
            std::fs::copy(fixture.join(file), dir.path().join(file)).unwrap();
        }
        // ChatML without a switch; no tokenizer.json needed.
        assert_eq!(
            template_info(dir.path()),
            ChatTemplateInfo {
                has_template: true,
                thinking_default: None
            }
        );
        std::fs::write(
            dir.path().join("chat_template.jinja"),
            "{{ messages[0].content }}{% if add_generation_prompt %}<|im_start|>assistant\n\
             {% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}",
        )
        .unwrap();
        assert_eq!(template_info(dir.path()).thinking_default, Some(true));
        assert_eq!(
            template_info(&dir.path().join("missing")),
            ChatTemplateInfo {
                has_template: false,
                thinking_default: None
            }
        );
    }

    #[test]
    fn a_rerun_from_the_history_keeps_the_thinking_switch() {
        // The engine's golden log, its measured times (placeholders there) set to 1.
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/tandem-engine/tests/golden/speculative-run.jsonl");
        let mut text = std::fs::read_to_string(golden).unwrap();
        for timing in [
            "draft_ms",
            "verify_ms",
            "model_ms",
            "wall_ms",
            "time_to_first_token_ms",
            "tokens_per_second",
        ] {
            text = text.replace(&format!("\"<{timing}>\""), "1.0");
        }
        let mut record = tandem_engine::export::jsonl::read_log(text.as_bytes(), "golden").unwrap();
        assert_eq!(convert::request_of(&record).enable_thinking, None);
        record.header.chat = true;
        record.header.enable_thinking = Some(false);
        let request = convert::request_of(&record);
        assert!(request.chat);
        assert_eq!(request.enable_thinking, Some(false));
    }

    #[test]
    fn alpha_comes_from_the_last_line() {
        let dir = std::env::temp_dir().join(format!("tandem-app-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.jsonl");
        std::fs::write(
            &path,
            "{\"type\":\"header\"}\n{\"type\":\"summary\",\"summary\":{\"alpha\":0.75}}\n",
        )
        .unwrap();
        assert_eq!(summary_alpha(&path), Some(0.75));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
