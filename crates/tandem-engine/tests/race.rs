//! Races, sessions, suites and exports on the tiny transformers fixtures (which share one
//! tokenizer, so any of them can draft for another).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tandem_engine::export::export_comparison;
use tandem_engine::export::jsonl::load_log;
use tandem_engine::suite::parse_suite;
use tandem_engine::{
    run_comparison, CompareRequest, GammaPolicy, GenerateRequest, GreedyCheck, LoadedModel,
    LoadedPair, ModelSpec, RaceEvent, RunEvent, RunHistory, RunMode, Session, SpeedupBasis,
    TokenOrigin,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn pair() -> LoadedPair {
    let load = |name: &str| LoadedModel::load(&ModelSpec::new(fixture(name))).unwrap();
    LoadedPair::new(load("qwen2-bias"), Some(load("llama-gqa"))).unwrap()
}

const PROMPT: &str = "The model reads 42 tokens, then writes! The model reads";

fn nasd() -> RunMode {
    RunMode::Nasd {
        ngram_n: 4,
        filler_top_k: None,
    }
}

fn race_request(tokens: usize) -> CompareRequest {
    let mut request = GenerateRequest::new(PROMPT, RunMode::Plain);
    request.max_new_tokens = tokens;
    request.ignore_eos = true;
    request.gamma = GammaPolicy::Fixed(3);
    CompareRequest::new(request, vec![RunMode::Plain, RunMode::Speculative, nasd()])
}

#[test]
fn a_greedy_race_gives_identical_outputs_and_consistent_figures() {
    let mut pair = pair();
    let mut events = Vec::new();
    let comparison = run_comparison(
        &mut pair,
        &race_request(24),
        None,
        &mut |event| {
            events.push(match event {
                RaceEvent::WarmUp => "warm-up".to_string(),
                RaceEvent::RunStarted { mode, .. } => format!("start {}", mode.label()),
                RaceEvent::Decode { .. } => "decode".to_string(),
                RaceEvent::RunFinished { record } => format!("end {}", record.label()),
            })
        },
        None,
    )
    .unwrap();
    events.dedup();
    assert_eq!(
        events,
        [
            "warm-up",
            "start plain",
            "decode",
            "end plain",
            "start speculative",
            "decode",
            "end speculative",
            "start nasd",
            "decode",
            "end nasd"
        ]
    );
    assert_eq!(comparison.greedy_check(), GreedyCheck::Identical);
    let labels: Vec<&str> = comparison.runs.iter().map(|r| r.label()).collect();
    assert_eq!(labels, ["plain", "speculative", "nasd"]);
    let plain = comparison.runs[0].summary().clone();
    for (run, stats) in comparison.runs.iter().zip(comparison.stats()) {
        let s = run.summary();
        assert_eq!(s.new_tokens, 24);
        assert_eq!(run.outcome.tokens, comparison.runs[0].outcome.tokens);
        assert_eq!(
            run.header.comparison_id.as_deref(),
            Some(comparison.id.as_str())
        );
        // Figures follow from the recorded times and counts.
        assert_eq!(stats.speedup_basis, Some(SpeedupBasis::WallTime));
        assert_eq!(stats.speedup, Some(plain.wall_ms / s.wall_ms));
        assert!((stats.tokens_per_second - 24.0 / (s.wall_ms / 1e3)).abs() < 1e-9);
        // The text shown piece by piece is the output text.
        let shown: String = run.pieces().map(|p| p.text.as_str()).collect();
        assert_eq!(shown, run.outcome.text);
    }
    assert!(
        comparison.runs[0].header.draft.is_none(),
        "plain used no draft"
    );
    assert_eq!(
        comparison.runs[1].header.draft.as_ref().unwrap().name,
        "llama-gqa"
    );
    assert!(comparison.runs[0].header.gamma_policy.is_none());
    let spec = comparison.runs[1].summary();
    assert!(spec.drafted > 0 && spec.draft_forwards > 0);
    assert!(matches!(
        comparison.runs[2].header.mode,
        RunMode::Nasd { .. }
    ));
    assert!(!comparison.runs[0]
        .outcome
        .origins
        .contains(&TokenOrigin::NgramHit));
}

#[test]
fn a_speculative_race_without_a_draft_is_refused_before_running() {
    let load = |name: &str| LoadedModel::load(&ModelSpec::new(fixture(name))).unwrap();
    let mut alone = LoadedPair::new(load("qwen2-bias"), None).unwrap();
    let mut ran = false;
    let err = run_comparison(
        &mut alone,
        &race_request(4),
        None,
        &mut |_| ran = true,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("draft"), "{err}");
    assert!(!ran);
}

#[test]
fn exports_read_back_and_the_report_shows_every_run() {
    let mut pair = pair();
    let comparison = run_comparison(&mut pair, &race_request(12), None, &mut |_| {}, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = export_comparison(dir.path(), &comparison).unwrap();
    assert_eq!(files.logs.len(), 3);
    for (path, run) in files.logs.iter().zip(&comparison.runs) {
        assert_eq!(
            &load_log(path).unwrap(),
            run,
            "a log reads back to the same record"
        );
    }
    let csv = std::fs::read_to_string(&files.csv).unwrap();
    assert_eq!(csv.lines().count(), 4, "a header and one row per run");
    let html = std::fs::read_to_string(&files.html).unwrap();
    for run in &comparison.runs {
        assert!(html.contains(run.run_id()));
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "no temporaries left: {names:?}"
    );
}

#[test]
fn a_session_saves_history_answers_while_running_and_cancels() {
    let data = tempfile::tempdir().unwrap();
    let session = Session::new(Some(RunHistory::new(data.path())));
    session.install(pair()).unwrap();

    // A race: every run lands in the history under the race's id.
    let comparison = session.compare(&race_request(8), &mut |_| {}).unwrap();
    let history = session.list_history().unwrap();
    assert_eq!(history.len(), 3);
    assert!(history
        .iter()
        .all(|e| e.comparison_id.as_deref() == Some(comparison.id.as_str())));

    // A long generation on a worker thread, paused at its first step while this thread
    // (the UI) reads the history and the pair, then cancels it.
    let mut request = GenerateRequest::new(PROMPT, RunMode::Plain);
    request.max_new_tokens = 200;
    request.ignore_eos = true;
    let (to_ui, from_worker) = mpsc::channel();
    let (to_worker, from_ui) = mpsc::channel::<()>();
    let (session_ref, request_ref) = (&session, &request);
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let mut paused = false;
            session_ref.generate(request_ref, &mut |event| {
                if let RunEvent::Decode { .. } = &event {
                    if !paused {
                        paused = true;
                        to_ui.send(()).unwrap();
                        from_ui.recv().unwrap();
                    }
                }
            })
        });
        from_worker.recv().unwrap();
        assert!(session.is_busy());
        assert!(matches!(
            session.generate(&request, &mut |_| {}),
            Err(tandem_engine::EngineError::Busy)
        ));
        assert_eq!(
            session.list_history().unwrap().len(),
            3,
            "history is readable during a run"
        );
        assert_eq!(session.pair_info().unwrap().target.name, "qwen2-bias");
        assert!(session.cancel());
        to_worker.send(()).unwrap();
        let record = worker.join().unwrap().unwrap();
        assert!(record.summary().cancelled);
        assert!(record.summary().new_tokens < 200);
    });
    assert!(!session.is_busy());
    assert_eq!(
        session.list_history().unwrap().len(),
        4,
        "the cancelled run is kept too"
    );
}

#[test]
fn a_two_prompt_suite_runs_every_mode_and_sums_up_by_category() {
    let suite = r#"{"id":"sum-1","category":"summarisation","prompt":"Summarise: the model reads 42 tokens, then writes. The model reads","max_tokens":10}
{"id":"code-1","category":"code","prompt":"fn main() { let x = 42; println!(x); } fn","max_tokens":12}
"#;
    let items = parse_suite(suite, "two.jsonl").unwrap();
    let data = tempfile::tempdir().unwrap();
    let session = Session::new(Some(RunHistory::new(data.path())));
    session.install(pair()).unwrap();
    let mut request = race_request(0);
    request.request.ignore_eos = true;
    let mut items_seen = Vec::new();
    let report = session
        .run_suite(&items, &request, Some(64), &mut |event| {
            if let RunEvent::SuiteItem { id, .. } = event {
                items_seen.push(id)
            }
        })
        .unwrap();
    assert_eq!(items_seen, ["sum-1", "code-1"]);
    assert_eq!(report.results.len(), 2);
    for result in &report.results {
        assert_eq!(result.comparison.runs.len(), 3);
        assert_eq!(result.comparison.greedy_check(), GreedyCheck::Identical);
        for run in &result.comparison.runs {
            assert_eq!(run.summary().new_tokens, result.item.max_tokens);
            assert_eq!(run.header.suite_item.as_ref().unwrap().id, result.item.id);
        }
    }
    let rows = report.category_table();
    let labels: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.category.as_str(), r.mode.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("summarisation", "plain"),
            ("summarisation", "speculative"),
            ("summarisation", "nasd"),
            ("code", "plain"),
            ("code", "speculative"),
            ("code", "nasd"),
            ("all", "plain"),
            ("all", "speculative"),
            ("all", "nasd"),
        ]
    );
    assert_eq!(rows[6].new_tokens, 22);
    assert_eq!(rows[0].speedup, Some(1.0));
    assert!(rows[7].alpha.is_some() && rows[6].alpha.is_none());
    assert_eq!(session.list_history().unwrap().len(), 6);
}
