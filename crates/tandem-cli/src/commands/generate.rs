//! `tandem generate`: plain, speculative or NASD generation, streamed to the terminal
//! with each token coloured by where it came from, then the run's summary.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use tandem_engine::compare::gamma_label;
use tandem_engine::{
    run_generation, GammaPolicy, GenerateRequest, GenerationEvent, GenerationSummary, LoadOptions,
    LoadedModel, ModelSpec, RunMode, SamplingConfig, StopReason, TextPiece, TokenOrigin,
};

use super::terminal_text::{printable, Lines};
use super::BackendChoice;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ModeArg {
    Plain,
    Speculative,
    Nasd,
}

/// `--thinking on|off`: the chat template's `enable_thinking` switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ThinkingArg {
    /// Reason in a `<think>` block before answering.
    On,
    /// Answer straight away.
    Off,
}

impl ThinkingArg {
    /// The template variable: `None` (not given) leaves the template's default.
    pub fn enable_thinking(arg: Option<Self>) -> Option<bool> {
        arg.map(|arg| arg == Self::On)
    }
}

/// Says so when `--thinking` was given for a model whose chat template has no thinking
/// switch (it is then ignored).
pub fn note_thinking_ignored(
    thinking: Option<bool>,
    template: Option<&tandem_model::ChatTemplate>,
) {
    if thinking.is_some() && template.and_then(|t| t.thinking_default()).is_none() {
        eprintln!(
            "note: the model's chat template has no thinking switch (enable_thinking), so \
             --thinking changes nothing"
        );
    }
}

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum ColorArg {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(clap::Args)]
pub struct Args {
    /// Target model folder (Hugging Face layout) or GGUF file.
    #[arg(long)]
    model: PathBuf,
    /// Draft model folder or GGUF file, for --mode speculative.
    #[arg(long)]
    draft: Option<PathBuf>,
    /// Decoding strategy (default: speculative with --draft, else plain).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    chat: bool,
    /// Chat templates with a thinking switch (Qwen3, SmolLM3): reason in a `<think>`
    /// block first (on) or answer straight away (off). Default: the template's own
    /// (on for both). Needs --chat.
    #[arg(long, value_enum, requires = "chat")]
    thinking: Option<ThinkingArg>,
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Drafts per step: a number, `auto` (goodput rule: the γ with the best expected
    /// tokens per unit time), `heuristic` (+2 after a fully accepted step, −1 otherwise)
    /// or `confident[:P[:MAX]]` (up to MAX, default 8, stopping after a draft the draft
    /// model gives less than P, default 0.7).
    #[arg(long, default_value = "confident")]
    gamma: String,
    /// Longest n-gram NASD matches (contexts of 1..N−1 tokens).
    #[arg(long, default_value_t = 4)]
    ngram: usize,
    /// NASD: also learn the target's top-k tokens at each verified position.
    #[arg(long)]
    filler_top_k: Option<usize>,
    /// Stop when the output contains this text (repeatable); the output is cut before it.
    #[arg(long)]
    stop: Vec<String>,
    /// KV cache capacity (positions) of each model.
    #[arg(long)]
    context: Option<usize>,
    /// Use only the first N layers of the draft (a cheap draft of the same model).
    #[arg(long)]
    draft_layers: Option<usize>,
    /// Draft logits for the first N token ids (and the special tokens) only: a smaller
    /// LM head makes each draft cheaper, the output stays exact (CPU engine).
    #[arg(long)]
    draft_vocab: Option<usize>,
    /// Int8 weights (per-channel symmetric) for every linear layer of both models,
    /// quantized once and cached beside each model.
    #[arg(long)]
    int8: bool,
    /// Int8 weights for the draft only (e.g. an int8 self-draft of an f32 target).
    #[arg(long)]
    draft_int8: bool,
    #[arg(long, value_enum, default_value_t)]
    backend: BackendChoice,
    #[arg(long, value_enum, default_value_t)]
    color: ColorArg,
    /// Keep generating past end-of-sequence tokens (fixed-length runs for benchmarks).
    #[arg(long)]
    ignore_eos: bool,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn parse_gamma(text: &str) -> anyhow::Result<GammaPolicy> {
    if let Some(rest) = text.strip_prefix("confident") {
        return parse_confident(rest).with_context(|| {
            format!(
                "--gamma {text}: expected `confident`, `confident:P` or `confident:P:MAX` \
                 (P a probability in 0..=1, MAX at least 1)"
            )
        });
    }
    match text {
        "auto" | "goodput" => Ok(GammaPolicy::Goodput { max: 10 }),
        "heuristic" => Ok(GammaPolicy::Heuristic {
            start: 5,
            min: 1,
            max: 16,
        }),
        n => {
            let k: usize = n.parse().with_context(|| {
                format!("--gamma {n}: expected a number, `auto`, `heuristic` or `confident`")
            })?;
            anyhow::ensure!(k >= 1, "--gamma {k}: must be at least 1");
            Ok(GammaPolicy::Fixed(k))
        }
    }
}

/// `confident`'s optional `:P[:MAX]`.
fn parse_confident(rest: &str) -> anyhow::Result<GammaPolicy> {
    let mut policy = (GammaPolicy::CONFIDENT_MIN_PROB, GammaPolicy::CONFIDENT_MAX);
    if !rest.is_empty() {
        let fields = rest.strip_prefix(':').context("`:` after `confident`")?;
        let mut fields = fields.split(':');
        policy.0 = fields.next().unwrap_or_default().parse()?;
        if let Some(max) = fields.next() {
            policy.1 = max.parse()?;
        }
        anyhow::ensure!(fields.next().is_none(), "too many fields");
    }
    let (min_prob, max) = policy;
    anyhow::ensure!((0.0..=1.0).contains(&min_prob), "P out of range");
    anyhow::ensure!(max >= 1, "MAX below 1");
    Ok(GammaPolicy::Confident { max, min_prob })
}

/// ANSI colour of each token origin; `None` = the terminal's own colour.
pub fn origin_color(origin: TokenOrigin) -> Option<&'static str> {
    match origin {
        TokenOrigin::Target => None,
        TokenOrigin::AcceptedDraft => Some("\x1b[32m"),
        TokenOrigin::Corrected => Some("\x1b[31m"),
        TokenOrigin::Bonus => Some("\x1b[34m"),
        TokenOrigin::NgramHit => Some("\x1b[36m"),
    }
}

pub fn legend() -> String {
    format!(
        "colours: {}accepted draft\x1b[0m  {}corrected\x1b[0m  {}bonus\x1b[0m  {}n-gram hit\x1b[0m  target",
        origin_color(TokenOrigin::AcceptedDraft).unwrap_or_default(),
        origin_color(TokenOrigin::Corrected).unwrap_or_default(),
        origin_color(TokenOrigin::Bonus).unwrap_or_default(),
        origin_color(TokenOrigin::NgramHit).unwrap_or_default(),
    )
}

pub fn print_piece(out: &mut impl Write, piece: &TextPiece, color: bool) {
    // A model's text, live or from a shared log: its own escape sequences never reach
    // the terminal (ours, the colours, do).
    let text = printable(&piece.text, Lines::Keep);
    match origin_color(piece.origin).filter(|_| color) {
        Some(code) => write!(out, "{code}{text}\x1b[0m"),
        None => write!(out, "{text}"),
    }
    .ok();
    out.flush().ok();
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mode = match (args.mode, &args.draft) {
        (Some(ModeArg::Plain), _) | (None, None) => RunMode::Plain,
        (Some(ModeArg::Speculative), _) | (None, Some(_)) => RunMode::Speculative,
        (Some(ModeArg::Nasd), _) => RunMode::Nasd {
            ngram_n: args.ngram,
            filler_top_k: args.filler_top_k,
        },
    };
    anyhow::ensure!(
        !(matches!(mode, RunMode::Speculative) && args.draft.is_none()),
        "--mode speculative needs --draft DIR"
    );
    let request = GenerateRequest {
        prompt: args.prompt.clone(),
        chat: args.chat,
        enable_thinking: ThinkingArg::enable_thinking(args.thinking),
        mode: mode.clone(),
        sampling: SamplingConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        },
        max_new_tokens: args.max_new_tokens,
        gamma: parse_gamma(&args.gamma)?,
        stop_strings: args.stop.clone(),
        ignore_eos: args.ignore_eos,
        // γ auto measures it before the run (the log header records it).
        gamma_cost_ratio: None,
    };
    // Bounds first: a request Tandem will refuse must not wait for two models to load.
    tandem_engine::limits::check_generate(&request)?;
    let options = LoadOptions {
        context_len: args.context,
        precision: super::precision(args.int8),
        ..Default::default()
    };
    let spec = |dir: &PathBuf, options: LoadOptions| ModelSpec {
        dir: dir.clone(),
        backend: args.backend.into(),
        options,
    };
    let mut target = LoadedModel::load(&spec(&args.model, options.clone()))?;
    note_thinking_ignored(request.enable_thinking, target.tokenizer.chat_template());
    if let Some(note) = tandem_engine::model::gguf_load_note(&args.model, options.precision) {
        eprintln!("{note}");
    }
    let mut draft = match (&mode, &args.draft) {
        (RunMode::Speculative, Some(dir)) => {
            let draft_options = LoadOptions {
                layer_limit: args.draft_layers,
                vocab_limit: args.draft_vocab,
                precision: super::precision(args.int8 || args.draft_int8),
                ..options.clone()
            };
            let draft = LoadedModel::load(&spec(dir, draft_options.clone()))?;
            if let Some(note) = tandem_engine::model::gguf_load_note(dir, draft_options.precision) {
                eprintln!("{note}");
            }
            tandem_engine::check_draft(&target, &draft)?;
            Some(draft)
        }
        _ => None,
    };

    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    if color && !matches!(mode, RunMode::Plain) {
        eprintln!("{}", legend());
    }
    // Ctrl-C stops the run between steps; what was produced is kept and summarised.
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .ok();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let output = {
        let mut on_event = |_: &GenerationEvent, pieces: &[TextPiece]| {
            for piece in pieces {
                print_piece(&mut out, piece, color);
            }
        };
        run_generation(
            &mut target,
            draft.as_mut(),
            &request,
            &mut on_event,
            Some(cancel),
        )?
    };
    writeln!(out)?;
    let summary = &output.result.summary;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(summary)?)?;
    } else {
        write!(
            out,
            "{}",
            describe_summary(mode.label(), &request.gamma, summary)
        )?;
    }
    Ok(())
}

/// The summary as a few readable lines.
pub fn describe_summary(mode: &str, gamma: &GammaPolicy, s: &GenerationSummary) -> String {
    let mut text = String::new();
    let gamma_text = gamma_label(gamma);
    let header = if mode == "plain" {
        "plain".to_string()
    } else {
        format!("{mode}, {gamma_text}")
    };
    text += &format!("--- {header} ---\n");
    text += &format!(
        "{} tokens in {:.2} s: {:.1} tokens/s (first token after {:.0} ms)\n",
        s.new_tokens,
        s.wall_ms / 1e3,
        s.tokens_per_second,
        s.time_to_first_token_ms.unwrap_or(0.0)
    );
    text += &format!(
        "target forwards: {}, draft forwards: {}\n",
        s.target_forwards, s.draft_forwards
    );
    if mode != "plain" {
        let alpha = s.alpha.map_or("-".to_string(), |a| format!("{a:.3}"));
        text += &format!(
            "α (share of drafts accepted): {alpha} ({}/{}), τ (tokens per target forward): {:.2}\n",
            s.accepted, s.drafted, s.tau
        );
        let by_position: Vec<String> = s
            .acceptance_by_position
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}: {:.2}", i + 1, p.rate))
            .collect();
        if !by_position.is_empty() {
            text += &format!("acceptance by draft position: {}\n", by_position.join("  "));
        }
        text += &format!(
            "time drafting: {:.0} ms, verifying: {:.0} ms\n",
            s.draft_ms, s.verify_ms
        );
    }
    let stop = match &s.stop_reason {
        StopReason::Eos { .. } => "end-of-sequence token".to_string(),
        StopReason::MaxNewTokens => "max new tokens reached".to_string(),
        StopReason::StopString { stop } => format!("stop string {stop:?}"),
        StopReason::Cancelled => "cancelled".to_string(),
    };
    text += &format!("stopped: {stop}\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tandem generate ARGS…` as the command line parses it.
    fn parse_args(args: &[&str]) -> Args {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let argv = std::iter::once("tandem-generate").chain(args.iter().copied());
        <Cli as clap::Parser>::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn out_of_bounds_numbers_are_refused_before_any_model_loads() {
        // The model folders do not exist: the bound's message must come first.
        let base = ["--model", "/nonexistent/target", "--prompt", "hi"];
        let cases: [(&[&str], &str); 4] = [
            (&["--gamma", "100000"], "γ"),
            (
                &["--mode", "nasd", "--filler-top-k", "1000000"],
                "filler top-k",
            ),
            (&["--max-new-tokens", "99999999999"], "max new tokens"),
            (&["--stop", ""], "stop string is empty"),
        ];
        for (extra, expected) in cases {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            let err = run(parse_args(&args)).unwrap_err().to_string();
            assert!(err.contains(expected), "{extra:?}: {err}");
        }
    }

    #[test]
    fn thinking_is_on_off_or_the_templates_default_and_needs_chat() {
        let base = ["--model", "/m", "--prompt", "hi", "--chat"];
        let with = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            ThinkingArg::enable_thinking(parse_args(&args).thinking)
        };
        assert_eq!(with(&[]), None);
        assert_eq!(with(&["--thinking", "off"]), Some(false));
        assert_eq!(with(&["--thinking", "on"]), Some(true));
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let without_chat = [
            "tandem-generate",
            "--model",
            "/m",
            "--prompt",
            "hi",
            "--thinking",
            "off",
        ];
        let err = <Cli as clap::Parser>::try_parse_from(without_chat)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--chat"), "{err}");
        let bad = [
            "tandem-generate",
            "--model",
            "/m",
            "--prompt",
            "hi",
            "--chat",
            "--thinking",
            "maybe",
        ];
        assert!(<Cli as clap::Parser>::try_parse_from(bad).is_err());
    }

    #[test]
    fn gamma_accepts_numbers_rules_and_confident_thresholds() {
        assert_eq!(parse_gamma("3").unwrap(), GammaPolicy::Fixed(3));
        assert_eq!(
            parse_gamma("auto").unwrap(),
            GammaPolicy::Goodput { max: 10 }
        );
        let confident = |max, min_prob| GammaPolicy::Confident { max, min_prob };
        assert_eq!(
            parse_gamma("confident").unwrap(),
            confident(GammaPolicy::CONFIDENT_MAX, GammaPolicy::CONFIDENT_MIN_PROB)
        );
        assert_eq!(
            parse_gamma("confident:0.6").unwrap(),
            confident(GammaPolicy::CONFIDENT_MAX, 0.6)
        );
        assert_eq!(parse_gamma("confident:0.3:12").unwrap(), confident(12, 0.3));
        for bad in [
            "0",
            "many",
            "confident:",
            "confident:2",
            "confident:0.5:0",
            "confident:0.5:8:1",
            "confidentx",
        ] {
            let error = format!("{:#}", parse_gamma(bad).unwrap_err());
            assert!(error.contains(&format!("--gamma {bad}")), "{error}");
        }
    }
}
