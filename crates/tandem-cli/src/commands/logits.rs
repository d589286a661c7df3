//! `tandem logits`: a model's raw logits as JSON, to hold it against a reference.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use tandem_model::cpu::CpuModel;
use tandem_model::{LoadOptions, TandemBackend};

use super::{load_model, BackendChoice};

#[derive(clap::Args)]
pub struct Args {
    /// Model folder (Hugging Face layout) or GGUF file.
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated token ids, e.g. 1,2,3.
    #[arg(long, value_delimiter = ',', required = true)]
    tokens: Vec<u32>,
    /// Print every position, not only the last.
    #[arg(long)]
    all_positions: bool,
    /// Print only the K largest logits per position, as id/value pairs.
    #[arg(long)]
    top: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    backend: BackendChoice,
}

#[derive(Serialize)]
struct Output {
    positions: Vec<Position>,
}

#[derive(Serialize)]
struct Position {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    logits: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top: Option<Vec<TopEntry>>,
}

#[derive(Serialize)]
struct TopEntry {
    id: usize,
    logit: f32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.backend == BackendChoice::Cpu {
        let options = LoadOptions {
            context_len: Some(args.tokens.len()),
            ..Default::default()
        };
        let mut model = CpuModel::load(&args.model, &options)?;
        let vocab = model.config().vocab_size;
        let values = model.forward_tail(&args.tokens, args.tokens.len())?;
        return print(&args, vocab, &values);
    }
    crate::with_backend!(args.backend, B => run_on::<B>(&args))
}

fn run_on<B: TandemBackend>(args: &Args) -> anyhow::Result<()> {
    let mut model = load_model::<B>(&args.model, Some(args.tokens.len()))?;
    let vocab = model.config().vocab_size;
    let logits = model.forward(&args.tokens)?;
    let values = logits
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("reading logits")?;
    print(args, vocab, &values)
}

/// Prints the positions asked for from every position's logits, `[n, vocab]`.
fn print(args: &Args, vocab: usize, values: &[f32]) -> anyhow::Result<()> {
    let n = args.tokens.len();
    let first = if args.all_positions { 0 } else { n - 1 };
    let positions = (first..n)
        .map(|index| {
            let row = &values[index * vocab..(index + 1) * vocab];
            match args.top {
                Some(k) => {
                    let mut ids: Vec<usize> = (0..vocab).collect();
                    ids.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                    let top = ids
                        .into_iter()
                        .take(k)
                        .map(|id| TopEntry { id, logit: row[id] })
                        .collect();
                    Position {
                        index,
                        logits: None,
                        top: Some(top),
                    }
                }
                None => Position {
                    index,
                    logits: Some(row.to_vec()),
                    top: None,
                },
            }
        })
        .collect();
    println!("{}", serde_json::to_string(&Output { positions })?);
    Ok(())
}
