//! `tandem`: run, inspect and benchmark models from the command line.

mod commands;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Faster LLM answers with speculative decoding"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text: plain, speculative (with --draft) or NASD, tokens coloured by origin.
    Generate(commands::generate::Args),
    /// Print a model's logits for given token ids, as JSON.
    Logits(commands::logits::Args),
    /// Measure decode, prefill and verify-pass speed of a model, as JSON.
    Bench(commands::bench::Args),
    /// Download a model, or both models of a pair, from the Hugging Face hub.
    Pull(commands::pull::Args),
    /// List known-good draft/target pairs and what is already downloaded.
    Pairs(commands::pairs::Args),
    /// List models already on this computer (LM Studio, Ollama, the Hugging Face cache).
    Models(commands::models::Args),
    /// Check that two models can work as a pair, before downloading their weights.
    Doctor(commands::doctor::Args),
    /// Delete a downloaded model from the Hugging Face cache.
    Rm(commands::rm::Args),
    /// Race plain, speculative and NASD decoding on one prompt; --export writes JSONL, CSV, HTML.
    Compare(commands::compare::Args),
    /// Print a run log (or a run id from the history): the coloured text and the summary.
    Replay(commands::replay::Args),
    /// Predict a draft/target pair's speedup for γ = 1..10 from measured costs and α.
    Predict(commands::predict::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => commands::generate::run(args),
        Command::Logits(args) => commands::logits::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::Pairs(args) => commands::pairs::run(args),
        Command::Models(args) => commands::models::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Rm(args) => commands::rm::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Predict(args) => commands::predict::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
