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
            vec![
                e.run_id.clone(),
                e.target.clone(),
                e.draft.clone().unwrap_or_else(|| "-".into()),
                e.new_tokens.to_string(),
                format!("{:.1}", e.tokens_per_second),
                prompt,
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

fn model_line(p: &ModelProvenance) -> String {
    let mut line = p.label();
    if let Some(rev) = &p.revision {
        line += &format!(" @ {rev}");
    }
    if let Some(sha) = &p.config_sha256 {
        line += &format!(" (config sha256 {}…)", &sha[..sha.len().min(12)]);
    }
    line
}

pub fn print_record(out: &mut impl Write, record: &RunRecord, color: bool) -> anyhow::Result<()> {
    let h = &record.header;
    writeln!(
        out,
        "run {} ({}), {}",
        h.run_id,
        h.mode.label(),
        h.created_at
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
        h.backend,
        h.device,
        h.max_new_tokens,
        if h.ignore_eos { " (EOS ignored)" } else { "" },
        h.tandem_version
    )?;
    writeln!(out, "prompt: {}", h.prompt)?;
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
