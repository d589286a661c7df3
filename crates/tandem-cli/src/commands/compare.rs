//! `tandem compare`: race plain, speculative and NASD decoding on one prompt, one mode
//! after another after a warm-up, and print them side by side; `--export DIR` also
//! writes each run's JSONL log, a CSV row per run and an HTML report.
//!
//! The options shared with `tandem bench --suite` live here ([`PairArgs`], [`RaceArgs`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tandem_engine::compare::{gamma_label, SpeedupBasis};
use tandem_engine::export::export_comparison;
use tandem_engine::{
    CompareRequest, Comparison, GenerateRequest, GreedyCheck, PairSpec, RunEvent, RunHistory,
    RunMode, SamplingConfig, Session,
};

use super::generate::{
    legend, note_thinking_ignored, parse_gamma, print_piece, ColorArg, ModeArg, ThinkingArg,
};
use super::table::render_table;
use super::BackendChoice;

/// Which draft, and how to load it.
#[derive(clap::Args, Clone, Debug)]
pub struct PairArgs {
    /// Draft model folder or GGUF file (speculative mode). The target's own folder with
    /// --draft-layers makes a self-draft.
    #[arg(long)]
    pub draft: Option<PathBuf>,
    /// Use only the first N layers of the draft.
    #[arg(long)]
    pub draft_layers: Option<usize>,
    /// Draft logits for the first N token ids (and the special tokens) only: a smaller
    /// LM head makes each draft cheaper, the output stays exact (CPU engine).
    #[arg(long)]
    pub draft_vocab: Option<usize>,
    /// Int8 weights for the draft only (e.g. an int8 self-draft of an f32 target).
    #[arg(long)]
    pub draft_int8: bool,
    /// KV cache capacity (positions) of each model.
    #[arg(long)]
    pub context: Option<usize>,
}

/// How to race: modes, sampling, γ, budget, output.
#[derive(clap::Args, Clone, Debug)]
pub struct RaceArgs {
    /// Modes to race, in order (default: plain,speculative,nasd with --draft, else plain,nasd).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub modes: Vec<ModeArg>,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    pub chat: bool,
    /// Chat templates with a thinking switch (Qwen3, SmolLM3): reason in a `<think>`
    /// block first (on) or answer straight away (off). Default: the template's own
    /// (on for both). Needs --chat.
    #[arg(long, value_enum, requires = "chat")]
    pub thinking: Option<ThinkingArg>,
    /// Token budget of each run (with --suite: a cap on each prompt's max_tokens).
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Drafts per step: a number, `auto`, `heuristic` or `confident[:P[:MAX]]` (as for
    /// `generate`).
    #[arg(long, default_value = "confident")]
    pub gamma: String,
    /// Longest n-gram NASD matches.
    #[arg(long, default_value_t = 4)]
    pub ngram: usize,
    /// NASD: also learn the target's top-k tokens at each verified position.
    #[arg(long)]
    pub filler_top_k: Option<usize>,
    /// Stop when the output contains this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Keep generating past end-of-sequence tokens (fixed-length runs).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Tokens of each warm-up run before the race (0: no warm-up).
    #[arg(long, default_value_t = 8)]
    pub warmup_tokens: usize,
    /// Write the run logs (JSONL), a CSV and an HTML report into this folder.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Do not save the runs to the history.
    #[arg(long)]
    pub no_history: bool,
    /// Data folder of the history (default: $TANDEM_DATA_DIR, $XDG_DATA_HOME/tandem or
    /// ~/.local/share/tandem).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorArg,
}

#[derive(clap::Args)]
pub struct Args {
    /// Target model folder (Hugging Face layout) or GGUF file.
    #[arg(long, visible_alias = "model")]
    target: PathBuf,
    #[arg(long)]
    prompt: String,
    #[command(flatten)]
    pair: PairArgs,
    #[command(flatten)]
    race: RaceArgs,
    /// Int8 weights for both models.
    #[arg(long)]
    int8: bool,
    #[arg(long, value_enum, default_value_t)]
    backend: BackendChoice,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = pair_spec(&args.target, args.backend, args.int8, &args.pair);
    let request = compare_request(&args.race, &args.prompt, args.pair.draft.is_some())?;
    let session = open_session(&args.race)?;
    eprintln!("loading {} …", describe_spec(&spec));
    session.load(&spec)?;
    warn_if_thinking_ignored(&request.request, &spec);
    let models = [
        (Some(&spec.target), spec.target_precision),
        (spec.draft.as_ref(), spec.draft_precision),
    ];
    for (path, precision) in models {
        if let Some(note) = path.and_then(|p| tandem_engine::model::gguf_load_note(p, precision)) {
            eprintln!("{note}");
        }
    }
    install_ctrl_c(&session);

    let color = color_enabled(args.race.color);
    if color {
        eprintln!("{}", legend());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let comparison = session.compare(&request, &mut |event| match event {
        RunEvent::WarmUp => eprintln!("warming up …"),
        RunEvent::Started { mode, .. } => {
            writeln!(out, "\n── {} ──", mode.label()).ok();
        }
        RunEvent::Decode { pieces, .. } => {
            pieces.iter().for_each(|p| print_piece(&mut out, p, color))
        }
        RunEvent::Finished { .. } => {
            writeln!(out).ok();
        }
        RunEvent::SuiteItem { .. } => {}
    })?;
    writeln!(out)?;
    write!(out, "{}", comparison_table(&comparison))?;
    drop(out);
    if let Some(dir) = &args.race.export {
        let files = export_comparison(dir, &comparison)?;
        eprintln!(
            "exported {} logs, {} and {}",
            files.logs.len(),
            files.csv.display(),
            files.html.display()
        );
    }
    if let Some(history) = session.history() {
        eprintln!("runs saved to {}", history.runs_dir().display());
    }
    check_greedy(&comparison)
}

/// The models to load, from the command line.
pub fn pair_spec(target: &Path, backend: BackendChoice, int8: bool, pair: &PairArgs) -> PairSpec {
    PairSpec {
        target: target.to_path_buf(),
        draft: pair.draft.clone(),
        backend: backend.into(),
        target_precision: super::precision(int8),
        draft_precision: super::precision(int8 || pair.draft_int8),
        draft_layers: pair.draft_layers,
        draft_vocab: pair.draft_vocab,
        context_len: pair.context,
    }
}

/// [`note_thinking_ignored`] for the target of `spec` (its template read again: the
/// session keeps its models to itself).
pub fn warn_if_thinking_ignored(request: &GenerateRequest, spec: &PairSpec) {
    if request.enable_thinking.is_some() {
        let template = tandem_model::ChatTemplate::from_dir(&spec.target)
            .ok()
            .flatten();
        note_thinking_ignored(request.enable_thinking, template.as_ref());
    }
}

fn describe_spec(spec: &PairSpec) -> String {
    let target = spec.target.display().to_string();
    match &spec.draft {
        Some(draft) => format!("{target} with draft {}", draft.display()),
        None => target,
    }
}

pub fn compare_request(
    race: &RaceArgs,
    prompt: &str,
    has_draft: bool,
) -> anyhow::Result<CompareRequest> {
    let nasd = RunMode::Nasd {
        ngram_n: race.ngram,
        filler_top_k: race.filler_top_k,
    };
    let modes: Vec<RunMode> = if race.modes.is_empty() {
        let mut modes = vec![RunMode::Plain];
        if has_draft {
            modes.push(RunMode::Speculative);
        }
        modes.push(nasd);
        modes
    } else {
        race.modes
            .iter()
            .map(|m| match m {
                ModeArg::Plain => RunMode::Plain,
                ModeArg::Speculative => RunMode::Speculative,
                ModeArg::Nasd => nasd.clone(),
            })
            .collect()
    };
    anyhow::ensure!(
        has_draft || !modes.contains(&RunMode::Speculative),
        "the speculative mode needs --draft DIR"
    );
    let request = GenerateRequest {
        prompt: prompt.to_string(),
        chat: race.chat,
        enable_thinking: ThinkingArg::enable_thinking(race.thinking),
        mode: RunMode::Plain,
        sampling: SamplingConfig {
            temperature: race.temperature,
            top_k: race.top_k,
            top_p: race.top_p,
            seed: race.seed,
        },
        max_new_tokens: race.max_new_tokens,
        gamma: parse_gamma(&race.gamma)?,
        stop_strings: race.stop.clone(),
        ignore_eos: race.ignore_eos,
        // γ auto measures it before each run (the log header records it).
        gamma_cost_ratio: None,
    };
    let race = CompareRequest {
        request,
        modes,
        warmup_tokens: race.warmup_tokens,
    };
    tandem_engine::limits::check_compare(&race)?;
    Ok(race)
}

/// A session with the history the options ask for.
pub fn open_session(race: &RaceArgs) -> anyhow::Result<Session> {
    let history = if race.no_history {
        None
    } else {
        match &race.data_dir {
            Some(dir) => Some(RunHistory::new(dir)),
            None => RunHistory::open_default(),
        }
    };
    Ok(Session::new(history))
}

/// Ctrl-C cancels the running job (its output is kept); a second Ctrl-C quits.
pub fn install_ctrl_c(session: &Session) {
    let pressed = Arc::new(AtomicBool::new(false));
    let cancel = session.cancel_handle();
    ctrlc::set_handler(move || {
        if pressed.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        cancel.cancel();
    })
    .ok();
}

pub fn color_enabled(choice: ColorArg) -> bool {
    use std::io::IsTerminal;
    match choice {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// The side-by-side table, per-position acceptance and how speedup was computed.
pub fn comparison_table(comparison: &Comparison) -> String {
    let stats = comparison.stats();
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            vec![
                s.label.clone(),
                s.new_tokens.to_string(),
                format!("{:.2}", s.wall_ms / 1e3),
                format!("{:.1}", s.tokens_per_second),
                s.time_to_first_token_ms
                    .map_or("-".into(), |t| format!("{t:.0}")),
                s.alpha.map_or("-".into(), |a| format!("{a:.3}")),
                format!("{:.2}", s.tau),
                match (s.speedup, s.speedup_basis) {
                    (Some(x), Some(SpeedupBasis::TokensPerSecond)) => format!("{x:.2}× (tok/s)"),
                    (Some(x), _) => format!("{x:.2}×"),
                    _ => "-".into(),
                },
                s.modelled_speedup
                    .map_or("-".into(), |x| format!("{x:.2}×")),
            ]
        })
        .collect();
    let mut text = render_table(
        &[
            "mode",
            "tokens",
            "time (s)",
            "tokens/s",
            "first token (ms)",
            "α",
            "τ",
            "speedup",
            "model",
        ],
        &rows,
    );
    text.push('\n');
    // What the decoder itself costs (sampling, verification, traces): the wall time
    // outside the models' forwards.
    for run in &comparison.runs {
        let summary = run.summary();
        if summary.wall_ms > 0.0 && summary.model_ms > 0.0 {
            let overhead = (summary.wall_ms - summary.model_ms).max(0.0);
            text.push_str(&format!(
                "{}: decoder overhead {:.1}% of the run ({:.0} ms outside the models' forwards)\n",
                run.label(),
                100.0 * overhead / summary.wall_ms,
                overhead
            ));
        }
    }
    for (s, run) in stats.iter().zip(&comparison.runs) {
        if s.acceptance_by_position.is_empty() {
            continue;
        }
        let rates: Vec<String> = s
            .acceptance_by_position
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{}: {r:.2}", i + 1))
            .collect();
        let gamma = run
            .header
            .gamma_policy
            .as_ref()
            .map(gamma_label)
            .unwrap_or_default();
        text += &format!(
            "{} ({gamma}) acceptance by draft position: {}\n",
            s.label,
            rates.join("  ")
        );
    }
    text += "speedup = plain time / run time (same token count; else the tokens/s ratio). \
             model = the speedup formula fed with the run's own α, γ and measured costs.\n";
    text
}

/// Why a greedy race failed its exactness check, if it did.
pub fn greedy_failure(comparison: &Comparison) -> Option<String> {
    let GreedyCheck::Diverged { divergences } = comparison.greedy_check() else {
        return None;
    };
    let lines: Vec<String> = divergences
        .iter()
        .map(|d| {
            let token = |t: Option<u32>| t.map_or("(ended)".to_string(), |t| format!("token {t}"));
            format!(
                "{} ({}) differs from plain at new token {}: plain {}, {} {}",
                d.label,
                d.run_id,
                d.position,
                token(d.plain_token),
                d.label,
                token(d.run_token)
            )
        })
        .collect();
    Some(lines.join("\n  "))
}

/// Prints the greedy check; a divergence is an error.
pub fn check_greedy(comparison: &Comparison) -> anyhow::Result<()> {
    if let Some(failure) = greedy_failure(comparison) {
        anyhow::bail!("greedy outputs differ from plain (a bug):\n  {failure}");
    }
    if let Some(line) = greedy_line(&comparison.greedy_check()) {
        println!("{line}");
    }
    Ok(())
}

/// The greedy check as one line; `None` when there is nothing to claim (sampling, no
/// plain run) or a divergence is reported as an error instead. A race cut short is
/// said to be incomplete, never identical.
pub fn greedy_line(check: &GreedyCheck) -> Option<String> {
    match check {
        GreedyCheck::Identical => Some("greedy: every output is identical to plain ✓".into()),
        GreedyCheck::Incomplete { .. } => Some(format!(
            "greedy: {} — identical to plain not proven",
            check.summary()
        )),
        GreedyCheck::NotGreedy | GreedyCheck::NoPlainRun | GreedyCheck::Diverged { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn race_args(args: &[&str]) -> RaceArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            race: RaceArgs,
        }
        let argv = std::iter::once("tandem-compare").chain(args.iter().copied());
        <Cli as clap::Parser>::try_parse_from(argv).unwrap().race
    }

    #[test]
    fn the_thinking_switch_reaches_the_race_request() {
        let request = |args: &[&str]| compare_request(&race_args(args), "hi", true).unwrap();
        let off = request(&["--chat", "--thinking", "off"]);
        assert!(off.request.chat);
        assert_eq!(off.request.enable_thinking, Some(false));
        assert_eq!(
            request(&["--chat", "--thinking", "on"])
                .request
                .enable_thinking,
            Some(true)
        );
        assert_eq!(request(&["--chat"]).request.enable_thinking, None);
    }

    #[test]
    fn the_greedy_line_tells_incomplete_from_identical() {
        assert_eq!(
            greedy_line(&GreedyCheck::Identical).as_deref(),
            Some("greedy: every output is identical to plain ✓")
        );
        let cancelled = GreedyCheck::Incomplete {
            cut_short: vec!["nasd".into()],
            identical: vec!["speculative".into()],
        };
        let line = greedy_line(&cancelled).unwrap();
        assert!(!line.contains('✓'), "{line}");
        assert!(
            line.contains("incomplete") && line.contains("nasd") && line.contains("not proven"),
            "{line}"
        );
        assert_eq!(greedy_line(&GreedyCheck::NotGreedy), None);
    }
}
