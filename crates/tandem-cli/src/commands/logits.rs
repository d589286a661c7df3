//! `tandem logits`: a model's raw logits as JSON, to hold it against a reference.

use std::path::PathBuf;

use serde::Serialize;
use tandem_decode::{CausalLm, Logits};
use tandem_model::cpu::CpuModel;
use tandem_model::{Llama, LoadOptions};

use super::BackendChoice;

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
    /// Int8 weights for every linear layer (quantized in memory).
    #[arg(long)]
    int8: bool,
    /// f16 weights for every linear layer (burn backends only: flex, cuda).
    #[arg(long, conflicts_with = "int8")]
    f16: bool,
    /// Feed the tokens one at a time, each row computed alone over the cache of the ones
    /// before (a decode step), instead of in one forward: the two must agree bit for bit
    /// (what greedy speculative decoding's exactness rests on).
    #[arg(long)]
    stepwise: bool,
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
    let options = LoadOptions {
        context_len: Some(args.tokens.len()),
        precision: super::precision_or_f16(args.int8, args.f16),
        ..Default::default()
    };
    if args.backend == BackendChoice::Cpu {
        let mut model = CpuModel::load(&args.model, &options)?;
        return print(&args, &logits_of(&mut model, &args)?);
    }
    crate::with_backend!(args.backend, B => {
        let mut model = Llama::<B>::load(&args.model, &options, &Default::default())?;
        print(&args, &logits_of(&mut model, &args)?)
    })
}

/// Every position's logits, from one forward or (`--stepwise`) one token at a time.
fn logits_of(model: &mut dyn CausalLm, args: &Args) -> anyhow::Result<Logits> {
    if !args.stepwise {
        return Ok(model.forward(&args.tokens)?);
    }
    let vocab = model.vocab_size();
    let mut data = Vec::with_capacity(args.tokens.len() * vocab);
    for &t in &args.tokens {
        data.extend_from_slice(&model.forward(&[t])?.data);
    }
    Ok(Logits::new(args.tokens.len(), vocab, data))
}

/// Prints the positions asked for from every position's logits.
fn print(args: &Args, logits: &Logits) -> anyhow::Result<()> {
    let (n, vocab, values) = (args.tokens.len(), logits.vocab, &logits.data);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_model::test_models::fixture_dir;

    fn args(stepwise: bool) -> Args {
        Args {
            model: fixture_dir("qwen2-bias"),
            tokens: vec![3, 141, 59, 26, 5, 35, 8, 97, 9],
            all_positions: true,
            top: None,
            backend: BackendChoice::Cpu,
            int8: false,
            f16: false,
            stepwise,
        }
    }

    #[test]
    fn stepwise_rows_equal_the_rows_of_one_forward_on_the_cpu_engine() {
        let options = LoadOptions {
            context_len: Some(16),
            ..Default::default()
        };
        let mut model = CpuModel::load(&fixture_dir("qwen2-bias"), &options).unwrap();
        let one = logits_of(&mut model, &args(false)).unwrap();
        model.reset();
        let stepwise = logits_of(&mut model, &args(true)).unwrap();
        assert_eq!((stepwise.rows, stepwise.vocab), (one.rows, one.vocab));
        assert_eq!(stepwise.rows, 9);
        // The CPU engine is batch invariant: the same bits, not merely close ones.
        assert_eq!(stepwise.data, one.data);
    }
}
