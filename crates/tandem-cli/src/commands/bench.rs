//! `tandem bench`: model-core speed as JSON (decode, prefill, verify-pass cost).

use std::path::PathBuf;

use tandem_model::TandemBackend;

use super::{load_model, BackendChoice};

#[derive(clap::Args)]
pub struct Args {
    /// Model folder (Hugging Face layout).
    #[arg(long)]
    model: PathBuf,
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
    /// Write the JSON here as well as to stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    backend: BackendChoice,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::with_backend!(args.backend, B => run_on::<B>(&args))
}

fn run_on<B: TandemBackend>(args: &Args) -> anyhow::Result<()> {
    let context = args.prefill_tokens.max(args.verify_context + 16).max(64);
    let mut model = load_model::<B>(&args.model, Some(context))?;
    let report = tandem_model::bench::run(
        &mut model,
        args.decode_tokens,
        args.prefill_tokens,
        args.verify_context,
        args.repeats,
    )?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.output {
        std::fs::write(path, &json)?;
    }
    println!("{json}");
    Ok(())
}
