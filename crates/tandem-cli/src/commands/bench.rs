//! `tandem bench`: model-core speed as JSON (decode, prefill, verify-pass cost), with the
//! load time and resident memory of the loaded model (`--int8` to compare with f32: run
//! each in its own process so the figures do not mix).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tandem_decode::{generate, CausalLm, GammaPolicy, GenerationConfig, Hooks, Mode};
use tandem_model::bench::{BenchModel, ModelBench};
use tandem_model::cpu::{bandwidth, pool::Pool, CpuModel};
use tandem_model::formats::int8_cache::CacheOutcome;
use tandem_model::formats::synthetic::SyntheticModel;
use tandem_model::{memory, Llama, LoadOptions, TandemBackend};

use super::BackendChoice;

#[derive(clap::Args)]
pub struct Args {
    /// Model folder (Hugging Face layout) or GGUF file.
    #[arg(long, required_unless_present = "synthetic")]
    model: Option<PathBuf>,
    /// Instead of --model, a model of these real shapes with seeded random weights made
    /// in memory (nothing to download; speed does not depend on the values):
    /// llama-3.2-1b, llama-3.1-8b, or tiny (a two-layer model for dry runs).
    #[arg(long, conflicts_with_all = ["model", "suite"])]
    synthetic: Option<SyntheticModel>,
    /// With --synthetic: also run speculative decoding with this synthetic draft at
    /// γ = 1..8 and report the time of a step (random weights: acceptance means nothing).
    #[arg(long, requires = "synthetic")]
    synthetic_draft: Option<SyntheticModel>,
    /// Tokens generated for the decode figure.
    #[arg(long, default_value_t = 64)]
    decode_tokens: usize,
    /// Prompt length for the prefill figure.
    #[arg(long, default_value_t = 256)]
    prefill_tokens: usize,
    /// Cached context for the verify-pass figures.
    #[arg(long, default_value_t = 256)]
    verify_context: usize,
    /// Repetitions of each timed pass (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Skip measuring the machine's memory bandwidth (about a second, and a buffer of
    /// four times the last-level cache).
    #[arg(long)]
    no_bandwidth: bool,
    /// Write the JSON here as well as to stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    backend: BackendChoice,
    /// Int8 weights for every linear layer (quantized once, cached beside the model).
    #[arg(long)]
    int8: bool,
    /// f16 weights for every linear layer (burn backends only: flex, cuda).
    #[arg(long, conflicts_with_all = ["int8", "suite"])]
    f16: bool,
    /// Race every prompt of this suite (JSONL) in each mode instead, --model being the
    /// target; writes the run logs, a CSV and an HTML report (see the options below).
    #[arg(long)]
    suite: Option<PathBuf>,
    #[command(flatten)]
    suite_options: super::suite::Options,
}

/// The model benchmark plus what loading cost.
#[derive(Serialize)]
struct Report {
    precision: String,
    /// Wall time of loading (int8: includes quantizing when the cache is cold).
    load_seconds: f64,
    /// What the int8 load did with its on-disk cache.
    int8_cache: Option<String>,
    /// Resident memory (VmRSS) before loading, after loading, and its peak (VmHWM) so
    /// far; the model's own footprint is after − before.
    rss_before_load_bytes: Option<u64>,
    rss_after_load_bytes: Option<u64>,
    peak_rss_after_load_bytes: Option<u64>,
    #[serde(flatten)]
    model: ModelBench,
    /// `--synthetic-draft`: plain decoding, then speculative at each γ.
    #[serde(skip_serializing_if = "Option::is_none")]
    speculative: Option<Vec<StepTimes>>,
}

/// One decoding run of `--synthetic-draft`.
#[derive(Serialize)]
struct StepTimes {
    /// 0: plain decoding.
    gamma: usize,
    steps: usize,
    tokens: usize,
    /// Wall time of a step: γ draft forwards, one verify pass, the decoder's work.
    ms_per_step: f64,
    draft_ms_per_step: f64,
    verify_ms_per_step: f64,
    tokens_per_sec: f64,
    /// Meaningless with random weights; reported so a reader sees it was ~0.
    accepted: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(suite) = &args.suite {
        let model = args.model.as_deref().context("--suite needs --model")?;
        return super::suite::run(suite, model, args.backend, args.int8, &args.suite_options);
    }
    if args.synthetic_draft.is_some() && args.synthetic.is_none() {
        anyhow::bail!(
            "--synthetic-draft needs --synthetic (a synthetic target of the same vocabulary)"
        );
    }
    if args.backend == BackendChoice::Cpu {
        return measure(&args, &load_cpu);
    }
    crate::with_backend!(args.backend, B => measure(&args, &load_burn::<B>))
}

/// The seed of `--synthetic` weights (their values do not change a speed figure).
const SYNTHETIC_SEED: u64 = 0;

/// Where a model comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Dir(&'a Path),
    Synthetic(SyntheticModel),
}

type Loaded = (Box<dyn BenchModel>, Option<CacheOutcome>);
type Loader<'a> = &'a dyn Fn(Source<'_>, &LoadOptions) -> anyhow::Result<Loaded>;

fn load_cpu(source: Source<'_>, options: &LoadOptions) -> anyhow::Result<Loaded> {
    let model = match source {
        Source::Dir(dir) => CpuModel::load(dir, options)?,
        Source::Synthetic(synthetic) => {
            let (config, weights) = synthetic.open(SYNTHETIC_SEED)?;
            CpuModel::from_weights(config, &weights, options)?
        }
    };
    let outcome = model.int8_cache().cloned();
    Ok((Box::new(model), outcome))
}

fn load_burn<B: TandemBackend>(
    source: Source<'_>,
    options: &LoadOptions,
) -> anyhow::Result<Loaded> {
    let device = B::Device::default();
    let model = match source {
        Source::Dir(dir) => Llama::<B>::load(dir, options, &device)?,
        Source::Synthetic(synthetic) => {
            let (config, weights) = synthetic.open(SYNTHETIC_SEED)?;
            Llama::<B>::from_weights(config, &weights, options, &device)?
        }
    };
    let outcome = model.int8_cache().cloned();
    Ok((Box::new(model), outcome))
}

fn measure(args: &Args, load: Loader<'_>) -> anyhow::Result<()> {
    let source = match (&args.model, args.synthetic) {
        (_, Some(synthetic)) => Source::Synthetic(synthetic),
        (Some(dir), None) => Source::Dir(dir),
        (None, None) => unreachable!("clap requires --model or --synthetic"),
    };
    // Room for every measurement: the prefill, a verify pass of 16 on its context, and
    // the decode after its 16-token prompt.
    let context = args
        .prefill_tokens
        .max(args.verify_context + 16)
        .max(16 + args.decode_tokens)
        .max(64);
    // --synthetic-draft: its prompt, the tokens, and a step's γ + 1 beyond them.
    let context = match args.synthetic_draft {
        Some(_) => context.max(args.verify_context.max(1) + args.decode_tokens + 9),
        None => context,
    };
    let precision = super::precision_or_f16(args.int8, args.f16);
    let options = LoadOptions {
        context_len: Some(context),
        precision,
        ..Default::default()
    };
    let rss_before_load_bytes = memory::resident_bytes();
    let start = Instant::now();
    let (mut model, outcome) = load(source, &options)?;
    let load_seconds = start.elapsed().as_secs_f64();
    let rss_after_load_bytes = memory::resident_bytes();
    let peak_rss_after_load_bytes = memory::peak_resident_bytes();
    let int8_cache = outcome.map(|outcome| format!("{outcome:?}"));
    // Measured after the load (so it is not counted in the model's memory), with the
    // threads the CPU engine uses.
    let bandwidth = (!args.no_bandwidth).then(|| bandwidth::measure(Pool::global(), 3));
    let bench = tandem_model::bench::run(
        &mut *model,
        args.decode_tokens,
        args.prefill_tokens,
        args.verify_context,
        args.repeats,
        bandwidth,
    )?;
    let speculative = match args.synthetic_draft {
        Some(draft) => {
            let (mut draft, _) = load(Source::Synthetic(draft), &options)?;
            let prompt_len = args.verify_context.max(1);
            Some(step_times(
                &mut *model,
                &mut *draft,
                prompt_len,
                args.decode_tokens,
            )?)
        }
        None => None,
    };
    let report = Report {
        precision: precision.to_string(),
        load_seconds,
        int8_cache,
        rss_before_load_bytes,
        rss_after_load_bytes,
        peak_rss_after_load_bytes,
        model: bench,
        speculative,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.output {
        tandem_engine::export::atomic::write_atomically(path, |w| w.write_all(json.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{json}");
    Ok(())
}

/// Plain decoding, then speculative decoding of `target` with `draft` at γ = 1..8, each
/// `tokens` tokens greedy after a synthetic prompt of `prompt_len`: the time of a step.
fn step_times(
    target: &mut dyn CausalLm,
    draft: &mut dyn CausalLm,
    prompt_len: usize,
    tokens: usize,
) -> anyhow::Result<Vec<StepTimes>> {
    let prompt = tandem_model::bench::synthetic_tokens(prompt_len, target.vocab_size());
    let mut runs = Vec::new();
    for gamma in 0..=8 {
        let config = GenerationConfig {
            max_new_tokens: tokens,
            gamma: GammaPolicy::Fixed(gamma.max(1)),
            ..Default::default()
        };
        let mode = match gamma {
            0 => Mode::Plain,
            _ => Mode::Speculative { draft: &mut *draft },
        };
        let s = generate(&mut *target, mode, &prompt, &config, Hooks::new())?.summary;
        let per_step = |ms: f64| ms / s.steps.max(1) as f64;
        runs.push(StepTimes {
            gamma,
            steps: s.steps,
            tokens: s.new_tokens,
            ms_per_step: per_step(s.wall_ms),
            draft_ms_per_step: per_step(s.draft_ms),
            verify_ms_per_step: per_step(s.verify_ms),
            tokens_per_sec: s.tokens_per_second,
            accepted: s.accepted,
        });
    }
    Ok(runs)
}
