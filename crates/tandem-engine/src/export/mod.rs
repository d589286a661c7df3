//! Writing races out: a JSON Lines log per run, a CSV row per run, and an HTML report.
//! Every file is written atomically, so an interrupted export leaves whole files only.

pub mod atomic;
pub mod csv;
pub mod html;
pub mod jsonl;
pub mod svg;

use std::path::{Path, PathBuf};

use crate::compare::Comparison;
use crate::error::{EngineError, Result};
use atomic::write_atomically;
use html::{render_html, Report, SummaryTable};

/// The files one export wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportedFiles {
    pub logs: Vec<PathBuf>,
    pub csv: PathBuf,
    pub html: PathBuf,
}

/// Writes `RUN_ID.jsonl` for every run, then `NAME.csv` and `NAME.html` over all of
/// them, into `dir` (created if missing).
pub fn export_races(
    dir: &Path,
    name: &str,
    title: &str,
    comparisons: &[Comparison],
    summary: Option<SummaryTable>,
) -> Result<ExportedFiles> {
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    let mut files = ExportedFiles::default();
    for run in comparisons.iter().flat_map(|c| &c.runs) {
        let path = dir.join(format!("{}.jsonl", run.run_id()));
        jsonl::save_log(run, &path)?;
        files.logs.push(path);
    }
    files.csv = dir.join(format!("{name}.csv"));
    write_file(&files.csv, |w| csv::write_csv(comparisons, w))?;
    files.html = dir.join(format!("{name}.html"));
    let html = render_html(&Report {
        title: title.to_string(),
        comparisons,
        summary,
        collapse_races: comparisons.len() > 1,
    });
    write_file(&files.html, |w| w.write_all(html.as_bytes()))?;
    Ok(files)
}

/// Exports one race under its own id.
pub fn export_comparison(dir: &Path, comparison: &Comparison) -> Result<ExportedFiles> {
    let title = match comparison.runs.first() {
        Some(run) => format!("Tandem race: {}", run.header.target.label()),
        None => "Tandem race".to_string(),
    };
    export_races(
        dir,
        &comparison.id,
        &title,
        std::slice::from_ref(comparison),
        None,
    )
}

fn write_file(
    path: &Path,
    body: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    write_atomically(path, body)
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}
