//! `tandem bench --suite FILE`: race every prompt of a suite in each mode, then print
//! α, τ and speedup by category and write the run logs, a CSV and an HTML report.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tandem_engine::export::export_races;
use tandem_engine::export::html::SummaryTable;
use tandem_engine::suite::category_cells;
use tandem_engine::{load_suite, GenerationEvent, GreedyCheck, ModeKind, RunEvent};

use super::compare::{
    compare_request, greedy_failure, install_ctrl_c, open_session, pair_spec, PairArgs, RaceArgs,
};
use super::table::render_table;
use super::BackendChoice;

/// The suite options of `tandem bench` (the target is `--model`).
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "With --suite")]
pub struct Options {
    #[command(flatten)]
    pair: PairArgs,
    #[command(flatten)]
    race: RaceArgs,
}

const POOLING_NOTE: &str = "Pooled over the prompts of each category: α = Σ accepted / Σ judged drafts, \
     τ = Σ tokens / Σ target forwards, speedup = (Σ tokens / Σ time) of the mode over that of plain.";

pub fn run(
    suite_file: &Path,
    target: &Path,
    backend: BackendChoice,
    int8: bool,
    options: &Options,
) -> anyhow::Result<()> {
    let items = load_suite(suite_file)?;
    let spec = pair_spec(target, backend, int8, &options.pair);
    // Each item brings its prompt; the base request's is replaced.
    let request = compare_request(&options.race, "", options.pair.draft.is_some())?;
    let session = open_session(&options.race)?;
    eprintln!("loading {} …", target.display());
    session.load(&spec)?;
    super::compare::warn_if_thinking_ignored(&request.request, &spec);
    install_ctrl_c(&session);

    let report = session.run_suite(
        &items,
        &request,
        Some(options.race.max_new_tokens),
        &mut |event| match event {
            RunEvent::WarmUp => eprintln!("warming up …"),
            RunEvent::SuiteItem {
                index,
                total,
                id,
                category,
            } => {
                eprintln!("[{}/{total}] {id} ({category})", index + 1)
            }
            RunEvent::Decode {
                event: GenerationEvent::Finished(s),
                ..
            } => eprintln!(
                "    {:<12} {:>4} tokens  {:>7.1} tokens/s  α {}",
                mode_of(&s.mode),
                s.new_tokens,
                s.tokens_per_second,
                s.alpha.map_or("-".into(), |a| format!("{a:.2}"))
            ),
            _ => {}
        },
    )?;

    let rows = report.category_table();
    let (headers, cells) = category_cells(&rows);
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    println!("{}", render_table(&header_refs, &cells));
    println!("{POOLING_NOTE}");
    if report.cancelled {
        println!("(cancelled: the table covers the prompts that ran)");
    }

    let dir = export_dir(options, &report.id);
    let comparisons = report.comparisons();
    let title = format!(
        "Tandem suite {}: {}",
        suite_file
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        spec_title(&comparisons)
    );
    let files = export_races(
        &dir,
        &report.id,
        &title,
        &comparisons,
        Some(SummaryTable {
            caption: "By category".into(),
            headers,
            rows: cells,
            note: POOLING_NOTE.into(),
        }),
    )?;
    let summary = dir.join(format!("{}-summary.json", report.id));
    let json = serde_json::to_string_pretty(&rows)?;
    tandem_engine::export::atomic::write_atomically(&summary, |w| w.write_all(json.as_bytes()))
        .with_context(|| format!("writing {}", summary.display()))?;
    eprintln!(
        "wrote {} logs, {} and {} in {}",
        files.logs.len(),
        file_name(&files.csv),
        file_name(&files.html),
        dir.display()
    );
    let failures: Vec<String> = comparisons.iter().filter_map(greedy_failure).collect();
    anyhow::ensure!(
        failures.is_empty(),
        "greedy outputs differ from plain (a bug):\n  {}",
        failures.join("\n  ")
    );
    let checks: Vec<GreedyCheck> = comparisons.iter().map(|c| c.greedy_check()).collect();
    if let Some(line) = suite_greedy_line(&checks) {
        println!("{line}");
    }
    Ok(())
}

/// The suite's greedy verdict (divergences are an error before this): identical only
/// when every race compared every output in full; prompts cut short are counted.
fn suite_greedy_line(checks: &[GreedyCheck]) -> Option<String> {
    let incomplete = checks
        .iter()
        .filter(|c| matches!(c, GreedyCheck::Incomplete { .. }))
        .count();
    if incomplete > 0 {
        return Some(format!(
            "greedy: incomplete — {incomplete} of {} prompts were not compared in full \
             (a run cancelled, or plain alone), so identical to plain is not proven for them",
            checks.len()
        ));
    }
    (!checks.is_empty() && checks.iter().all(|c| *c == GreedyCheck::Identical))
        .then(|| "greedy: every output of every prompt is identical to plain ✓".to_string())
}

fn mode_of(mode: &ModeKind) -> &'static str {
    match mode {
        ModeKind::Plain => "plain",
        ModeKind::Speculative => "speculative",
        ModeKind::Nasd { .. } => "nasd",
    }
}

/// `--export DIR`, else `suites/SUITE_ID` in the data folder, else `./SUITE_ID`.
fn export_dir(options: &Options, suite_id: &str) -> PathBuf {
    if let Some(dir) = &options.race.export {
        return dir.clone();
    }
    let data = options
        .race
        .data_dir
        .clone()
        .or_else(tandem_engine::default_data_dir);
    match data {
        Some(data) if !options.race.no_history => data.join("suites").join(suite_id),
        _ => PathBuf::from(suite_id),
    }
}

fn spec_title(comparisons: &[tandem_engine::Comparison]) -> String {
    let Some(run) = comparisons.iter().flat_map(|c| &c.runs).next() else {
        return String::new();
    };
    let draft = comparisons
        .iter()
        .flat_map(|c| &c.runs)
        .find_map(|r| r.header.draft.as_ref());
    match draft {
        Some(d) => format!("{} ← {}", run.header.target.label(), d.label()),
        None => run.header.target.label(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incomplete() -> GreedyCheck {
        GreedyCheck::Incomplete {
            cut_short: vec!["speculative".into()],
            identical: vec![],
        }
    }

    #[test]
    fn the_greedy_summary_owns_up_to_prompts_not_compared_in_full() {
        let all = suite_greedy_line(&[GreedyCheck::Identical, GreedyCheck::Identical]);
        assert_eq!(
            all.as_deref(),
            Some("greedy: every output of every prompt is identical to plain ✓")
        );
        let line = suite_greedy_line(&[GreedyCheck::Identical, incomplete()]).unwrap();
        assert!(
            !line.contains('✓') && !line.contains("every output"),
            "{line}"
        );
        assert!(line.contains("1 of 2 prompts"), "{line}");
        assert!(line.contains("incomplete"), "{line}");
        // Sampled races are not checked, and a suite of none says nothing.
        assert_eq!(suite_greedy_line(&[GreedyCheck::NotGreedy]), None);
        assert_eq!(suite_greedy_line(&[]), None);
    }
}
