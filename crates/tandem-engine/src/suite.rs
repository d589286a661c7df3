//! Benchmark suites: a JSON Lines file of prompts, each raced in every mode, summed up
//! by category.
//!
//! A suite line: `{"id": "code-1", "category": "code", "prompt": "…", "max_tokens": 48}`.
//! Blank lines are skipped. Ids must be unique.
//!
//! Category figures pool the runs rather than averaging ratios, so a long prompt weighs
//! by its tokens: α = Σ accepted / Σ judged, τ = Σ tokens / Σ target forwards, and
//! speedup = (Σ tokens / Σ time of the mode) / (Σ tokens / Σ time of plain).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::compare::{run_comparison, warm_up, CompareRequest, Comparison, RaceEvent};
use crate::error::{EngineError, Result};
use crate::ids;
use crate::pair::LoadedPair;
use crate::record::{RunRecord, SuiteItemRef};

/// One prompt of a suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuiteItem {
    pub id: String,
    pub category: String,
    pub prompt: String,
    #[serde(alias = "max_new_tokens")]
    pub max_tokens: usize,
}

/// Parses a suite file's text; `source` names it in errors.
pub fn parse_suite(text: &str, source: &str) -> Result<Vec<SuiteItem>> {
    let bad = |line: usize, reason: String| EngineError::BadFile {
        path: source.to_string(),
        reason: format!("line {line}: {reason}"),
    };
    let mut items: Vec<SuiteItem> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item: SuiteItem =
            serde_json::from_str(line).map_err(|e| bad(index + 1, e.to_string()))?;
        if item.max_tokens == 0 || item.prompt.trim().is_empty() {
            return Err(bad(index + 1, "needs a prompt and max_tokens >= 1".into()));
        }
        if items.iter().any(|i| i.id == item.id) {
            return Err(bad(index + 1, format!("id `{}` appears twice", item.id)));
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(EngineError::BadFile {
            path: source.to_string(),
            reason: "no prompts".into(),
        });
    }
    Ok(items)
}

pub fn load_suite(path: &std::path::Path) -> Result<Vec<SuiteItem>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
    parse_suite(&text, &path.display().to_string())
}

/// A suite's races, in suite order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    pub id: String,
    pub results: Vec<SuiteResult>,
    pub cancelled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuiteResult {
    pub item: SuiteItem,
    pub comparison: Comparison,
}

/// Pooled figures of one mode over one category (or `all`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryRow {
    pub category: String,
    pub mode: String,
    pub prompts: usize,
    pub new_tokens: usize,
    pub wall_ms: f64,
    pub tokens_per_second: f64,
    pub alpha: Option<f64>,
    pub tau: f64,
    /// Against plain over the same prompts; `None` without plain runs.
    pub speedup: Option<f64>,
}

/// What a suite reports while it runs.
pub enum SuiteEvent<'a> {
    /// Starting prompt `index` (0-based) of `total`.
    Item {
        index: usize,
        total: usize,
        item: &'a SuiteItem,
    },
    Race(RaceEvent<'a>),
}

/// Races every prompt. The warm-up runs once, before the first prompt; `request.request`
/// gives the settings, its prompt and budget replaced by each item's (the budget capped
/// at `max_tokens_cap` when set).
pub fn run_suite(
    pair: &mut LoadedPair,
    items: &[SuiteItem],
    request: &CompareRequest,
    max_tokens_cap: Option<usize>,
    on_event: &mut dyn FnMut(SuiteEvent<'_>),
    cancel: Option<Arc<AtomicBool>>,
) -> Result<SuiteReport> {
    // Each item sets its own token budget (checked when its race starts): the shared
    // request's is a placeholder.
    let mut shared = request.clone();
    shared.request.max_new_tokens = 1;
    crate::compare::check_request(pair, &shared)?;
    let mut report = SuiteReport {
        id: ids::new_id("suite", None),
        results: Vec::new(),
        cancelled: false,
    };
    if let Some(first) = items.first() {
        let mut warm = request.request.clone();
        warm.prompt = first.prompt.clone();
        on_event(SuiteEvent::Race(RaceEvent::WarmUp));
        warm_up(pair, &warm, &request.modes, request.warmup_tokens)?;
    }
    for (index, item) in items.iter().enumerate() {
        if cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
            report.cancelled = true;
            break;
        }
        on_event(SuiteEvent::Item {
            index,
            total: items.len(),
            item,
        });
        let mut race = request.clone();
        race.warmup_tokens = 0;
        race.request.prompt = item.prompt.clone();
        race.request.max_new_tokens =
            max_tokens_cap.map_or(item.max_tokens, |cap| item.max_tokens.min(cap));
        let suite_item = SuiteItemRef {
            id: item.id.clone(),
            category: item.category.clone(),
        };
        let comparison = run_comparison(
            pair,
            &race,
            Some(suite_item),
            &mut |event| on_event(SuiteEvent::Race(event)),
            cancel.clone(),
        )?;
        report.cancelled |= comparison.cancelled;
        report.results.push(SuiteResult {
            item: item.clone(),
            comparison,
        });
    }
    Ok(report)
}

impl SuiteReport {
    pub fn comparisons(&self) -> Vec<Comparison> {
        self.results.iter().map(|r| r.comparison.clone()).collect()
    }

    /// One row per (category, mode) in suite order of first appearance, then `all`.
    pub fn category_table(&self) -> Vec<CategoryRow> {
        let mut categories: Vec<String> = Vec::new();
        for r in &self.results {
            if !categories.contains(&r.item.category) {
                categories.push(r.item.category.clone());
            }
        }
        let mut rows = Vec::new();
        for category in categories.iter().map(Some).chain([None]) {
            let runs: Vec<&RunRecord> = self
                .results
                .iter()
                .filter(|r| category.is_none_or(|c| &r.item.category == c))
                .flat_map(|r| &r.comparison.runs)
                .collect();
            rows.extend(pool(category.map_or("all", |c| c.as_str()), &runs));
        }
        rows
    }
}

/// Pools runs by mode, in order of first appearance.
fn pool(category: &str, runs: &[&RunRecord]) -> Vec<CategoryRow> {
    #[derive(Default)]
    struct Sums {
        prompts: usize,
        tokens: usize,
        wall_ms: f64,
        drafted: usize,
        accepted: usize,
        target_forwards: usize,
    }
    let mut order: Vec<&'static str> = Vec::new();
    let mut sums: BTreeMap<&'static str, Sums> = BTreeMap::new();
    for run in runs {
        let label = run.label();
        if !order.contains(&label) {
            order.push(label);
        }
        let s = run.summary();
        let sum = sums.entry(label).or_default();
        sum.prompts += 1;
        sum.tokens += s.new_tokens;
        sum.wall_ms += s.wall_ms;
        sum.drafted += s.drafted;
        sum.accepted += s.accepted;
        sum.target_forwards += s.target_forwards;
    }
    let rate = |tokens: usize, ms: f64| {
        if ms > 0.0 {
            tokens as f64 / (ms / 1e3)
        } else {
            0.0
        }
    };
    let plain_rate = sums
        .get("plain")
        .map(|p| rate(p.tokens, p.wall_ms))
        .filter(|r| *r > 0.0);
    order
        .into_iter()
        .map(|label| {
            let s = &sums[label];
            let tokens_per_second = rate(s.tokens, s.wall_ms);
            CategoryRow {
                category: category.to_string(),
                mode: label.to_string(),
                prompts: s.prompts,
                new_tokens: s.tokens,
                wall_ms: s.wall_ms,
                tokens_per_second,
                alpha: (s.drafted > 0).then(|| s.accepted as f64 / s.drafted as f64),
                tau: if s.target_forwards > 0 {
                    s.tokens as f64 / s.target_forwards as f64
                } else {
                    0.0
                },
                speedup: plain_rate.map(|p| tokens_per_second / p),
            }
        })
        .collect()
}

/// The category table as text cells: headers and rows.
pub fn category_cells(rows: &[CategoryRow]) -> (Vec<String>, Vec<Vec<String>>) {
    let headers = [
        "category", "mode", "prompts", "tokens", "tokens/s", "α", "τ", "speedup",
    ]
    .map(String::from)
    .to_vec();
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                r.category.clone(),
                r.mode.clone(),
                r.prompts.to_string(),
                r.new_tokens.to_string(),
                format!("{:.1}", r.tokens_per_second),
                r.alpha.map_or("-".into(), |a| format!("{a:.3}")),
                format!("{:.2}", r.tau),
                r.speedup.map_or("-".into(), |x| format!("{x:.2}×")),
            ]
        })
        .collect();
    (headers, cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunMode;
    use crate::testing::fake_record;

    #[test]
    fn suite_files_parse_and_bad_lines_are_named() {
        let text = "{\"id\":\"a\",\"category\":\"code\",\"prompt\":\"p\",\"max_tokens\":8}\n\n\
                    {\"id\":\"b\",\"category\":\"qa\",\"prompt\":\"q\",\"max_new_tokens\":4}\n";
        let items = parse_suite(text, "s.jsonl").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[1].id.as_str(), items[1].max_tokens), ("b", 4));

        let twice = format!(
            "{text}{{\"id\":\"a\",\"category\":\"x\",\"prompt\":\"p\",\"max_tokens\":1}}\n"
        );
        let err = parse_suite(&twice, "s.jsonl").unwrap_err().to_string();
        assert!(err.contains("line 4") && err.contains("twice"), "{err}");
        let err = parse_suite("{\"id\":\"a\"}", "s.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.jsonl: line 1"), "{err}");
        assert!(parse_suite("\n", "s.jsonl").is_err());
    }

    #[test]
    fn the_default_suite_covers_four_categories() {
        let text = include_str!("../../../suites/default.jsonl");
        let items = parse_suite(text, "suites/default.jsonl").unwrap();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        items
            .iter()
            .for_each(|i| *counts.entry(i.category.as_str()).or_default() += 1);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [
                ("code", 5),
                ("open-ended writing", 5),
                ("question answering", 5),
                ("summarisation", 5)
            ]
        );
    }

    #[test]
    fn categories_pool_tokens_and_times() {
        let race = |id: &str, category: &str, plain_ms: f64, spec_ms: f64, cycles: usize| {
            let mut runs = vec![
                fake_record(&format!("{id}-p"), RunMode::Plain, cycles, plain_ms),
                fake_record(&format!("{id}-s"), RunMode::Speculative, cycles, spec_ms),
            ];
            for run in &mut runs {
                run.header.suite_item = Some(SuiteItemRef {
                    id: id.into(),
                    category: category.into(),
                });
            }
            SuiteResult {
                item: SuiteItem {
                    id: id.into(),
                    category: category.into(),
                    prompt: "p".into(),
                    max_tokens: 8 * cycles,
                },
                comparison: Comparison {
                    id: format!("cmp-{id}"),
                    runs,
                    cancelled: false,
                },
            }
        };
        let report = SuiteReport {
            id: "suite-1".into(),
            // code: 8 tokens plain in 400 ms, spec in 100 ms; then 16 tokens, 800 vs 400.
            results: vec![
                race("c1", "code", 400.0, 100.0, 1),
                race("c2", "code", 800.0, 400.0, 2),
                race("q1", "qa", 100.0, 100.0, 1),
            ],
            cancelled: false,
        };
        let rows = report.category_table();
        let labels: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.category.as_str(), r.mode.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("code", "plain"),
                ("code", "speculative"),
                ("qa", "plain"),
                ("qa", "speculative"),
                ("all", "plain"),
                ("all", "speculative")
            ]
        );
        let code_spec = &rows[1];
        assert_eq!((code_spec.prompts, code_spec.new_tokens), (2, 24));
        // Pooled: 24 tokens in 0.5 s = 48 tok/s against 24 in 1.2 s = 20 tok/s.
        assert_eq!(code_spec.tokens_per_second, 48.0);
        assert_eq!(rows[0].tokens_per_second, 20.0);
        assert_eq!(code_spec.speedup, Some(2.4));
        // α: 5 of 7 per cycle, 3 cycles; τ: 24 tokens over 9 forwards.
        assert_eq!(code_spec.alpha, Some(15.0 / 21.0));
        assert_eq!(code_spec.tau, 24.0 / 9.0);
        assert_eq!(rows[3].speedup, Some(1.0));
        assert_eq!(rows[5].new_tokens, 32);
        assert_eq!(rows[4].alpha, None);
        let (headers, cells) = category_cells(&rows);
        assert_eq!(headers.len(), cells[0].len());
        assert_eq!(cells[1][7], "2.40×");
    }
}
