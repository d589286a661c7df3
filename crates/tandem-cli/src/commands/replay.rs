//! `tandem replay`: print a run log (a file, or a run id from the history) the way
//! `generate` showed the run: what ran, the text coloured by token origin, the summary.
//! No model is needed, so a log someone shared can be read anywhere.

use std::io::Write;
use std::path::{Path, PathBuf};

use tandem_engine::compare::gamma_label;
use tandem_engine::export::jsonl::load_log;
use tandem_engine::{GammaPolicy, ModelProvenance, RunHistory, RunRecord};

use super::compare::color_enabled;
use super::generate::{describe_summary, legend, print_piece, ColorArg};
use super::table::render_table;
use super::terminal_text::{first_chars, printable, Lines};

#[derive(clap::Args)]
pub struct Args {
    /// Run logs (.jsonl) or run ids from the history.
    #[arg(required_unless_present = "list")]
    logs: Vec<String>,
    /// List the runs in the history instead, newest first.
    #[arg(long)]
    list: bool,
    /// Data folder of the history (default: $TANDEM_DATA_DIR, $XDG_DATA_HOME/tandem or
    /// ~/.local/share/tandem).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    color: ColorArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let history = match &args.data_dir {
        Some(dir) => Some(RunHistory::new(dir)),
        None => RunHistory::open_default(),
    };
    if args.list {
        return list(history.as_ref());
    }
    let color = color_enabled(args.color);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (i, log) in args.logs.iter().enumerate() {
        let record = open(log, history.as_ref())?;
        if i > 0 {
            writeln!(out)?;
        }
        print_record(&mut out, &record, color)?;
    }
    Ok(())
}

/// A path if it exists, else a run id in the history.
fn open(log: &str, history: Option<&RunHistory>) -> anyhow::Result<RunRecord> {
    let path = Path::new(log);
    if path.exists() {
        return Ok(load_log(path)?);
    }
    match history {
        Some(history) => Ok(history.load(log)?),
        None => anyhow::bail!("{log}: no such file, and no history to look the run id up in"),
    }
}

fn list(history: Option<&RunHistory>) -> anyhow::Result<()> {
    let Some(history) = history else {
        anyhow::bail!("no data folder: pass --data-dir or set TANDEM_DATA_DIR")
    };
    let entries = history.list()?;
    if entries.is_empty() {
        println!("no runs in {}", history.runs_dir().display());
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let prompt: String = e
                .prompt
                .chars()
                .take(40)
                .collect::<String>()
                .replace('\n', " ");
            let field = |text: &str| printable(text, Lines::Escape).into_owned();
            vec![
                field(&e.run_id),
                field(&e.target),
                e.draft.as_deref().map_or_else(|| "-".into(), field),
                e.new_tokens.to_string(),
                format!("{:.1}", e.tokens_per_second),
                field(&prompt),
            ]
        })
        .collect();
    println!(
        "{}",
        render_table(
            &["RUN", "TARGET", "DRAFT", "TOKENS", "TOK/S", "PROMPT"],
            &rows
        )
    );
    Ok(())
}

/// What a log says of a model, on one line (every field from the log escaped: a log is
/// a file someone else may have written).
fn model_line(p: &ModelProvenance) -> String {
    let mut line = p.label();
    if let Some(rev) = &p.revision {
        line += &format!(" @ {rev}");
    }
    if let Some(sha) = &p.config_sha256 {
        line += &format!(" (config sha256 {}…)", first_chars(sha, 12));
    }
    printable(&line, Lines::Escape).into_owned()
}

pub fn print_record(out: &mut impl Write, record: &RunRecord, color: bool) -> anyhow::Result<()> {
    let h = &record.header;
    let field = |text: &str| printable(text, Lines::Escape).into_owned();
    writeln!(
        out,
        "run {} ({}), {}",
        field(&h.run_id),
        h.mode.label(),
        field(&h.created_at)
    )?;
    writeln!(out, "target: {}", model_line(&h.target))?;
    if let Some(draft) = &h.draft {
        writeln!(out, "draft:  {}", model_line(draft))?;
    }
    let sampling = if h.sampling.is_greedy() {
        "greedy".to_string()
    } else {
        format!(
            "temperature {} top-k {:?} top-p {:?} seed {}",
            h.sampling.temperature, h.sampling.top_k, h.sampling.top_p, h.sampling.seed
        )
    };
    let gamma = h
        .gamma_policy
        .as_ref()
        .map(gamma_label)
        .unwrap_or_else(|| "-".into());
    writeln!(
        out,
        "{} on {}; {sampling}; {gamma}; up to {} new tokens{}; Tandem {}",
        field(&h.backend),
        field(&h.device),
        h.max_new_tokens,
        if h.ignore_eos { " (EOS ignored)" } else { "" },
        field(&h.tandem_version)
    )?;
    writeln!(out, "prompt: {}", printable(&h.prompt, Lines::Keep))?;
    if color && h.gamma_policy.is_some() {
        writeln!(out, "{}", legend())?;
    }
    writeln!(out)?;
    for piece in record.pieces() {
        print_piece(out, piece, color);
    }
    writeln!(out)?;
    let policy = h.gamma_policy.clone().unwrap_or(GammaPolicy::Fixed(0));
    write!(
        out,
        "{}",
        describe_summary(h.mode.label(), &policy, record.summary())
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's golden log with its placeholders filled in, then `edit`ed.
    fn log_with(edit: impl Fn(&mut serde_json::Value, usize)) -> RunRecord {
        let golden = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tandem-engine/tests/golden/speculative-run.jsonl"
        );
        let text = std::fs::read_to_string(golden).unwrap();
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            fill_placeholders(&mut value);
            edit(&mut value, i);
            lines.push(value.to_string());
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.jsonl");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        load_log(&path).unwrap()
    }

    /// `"<wall_ms>"` → 1.0, `"<run_id>"` → "run-x": what a real log holds there.
    fn fill_placeholders(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if v.as_str().is_some_and(|s| s.starts_with('<')) {
                        let numeric = key.ends_with("_ms") || key == "tokens_per_second";
                        *v = if numeric {
                            serde_json::json!(1.0)
                        } else {
                            serde_json::json!(format!("{key}-x"))
                        };
                    } else {
                        fill_placeholders(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(fill_placeholders),
            _ => {}
        }
    }

    #[test]
    fn a_hostile_log_prints_no_escape_sequence_and_does_not_panic() {
        let osc52 = "\u{1b}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\u{7}";
        let record = log_with(|value, line| {
            if line == 0 {
                value["prompt"] = serde_json::json!(format!("hi{osc52}there\nsecond line"));
                value["device"] = serde_json::json!("\u{1b}[2J\u{1b}[Hcpu");
                value["target"]["name"] = serde_json::json!("evil\u{1b}]0;pwned\u{7}");
                // A hash that is not hex: slicing it by bytes split a character.
                value["target"]["config_sha256"] = serde_json::json!("é".repeat(20));
            } else if let Some(pieces) = value["pieces"].as_array_mut() {
                for piece in pieces {
                    piece["text"] = serde_json::json!(format!("tok{osc52}"));
                }
            }
        });
        let mut out = Vec::new();
        print_record(&mut out, &record, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains(['\u{1b}', '\u{7}']),
            "raw control characters printed: {text:?}"
        );
        assert!(text.contains("\\u{1b}]52;c;"), "{text}");
        assert!(text.contains("(config sha256 éééééééééééé…)"), "{text}");
        assert!(text.contains("second line"), "the prompt keeps its lines");
    }
}
