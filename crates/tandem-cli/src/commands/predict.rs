//! `tandem predict`: before racing a pair, time one-token forwards of each model and a
//! (γ+1)-token verify pass of the target, estimate α on a few short prompts, and print
//! the speedup the formula predicts for γ = 1..10 with the best γ.

use std::path::PathBuf;

use tandem_engine::predict::default_alpha_prompts;
use tandem_engine::{PredictRequest, Session};

use super::compare::{pair_spec, PairArgs};
use super::table::render_table;
use super::BackendChoice;

#[derive(clap::Args)]
pub struct Args {
    /// Target model folder.
    #[arg(long, visible_alias = "model")]
    target: PathBuf,
    #[command(flatten)]
    pair: PairArgs,
    /// Int8 weights for both models.
    #[arg(long)]
    int8: bool,
    #[arg(long, value_enum, default_value_t)]
    backend: BackendChoice,
    /// Predict for γ = 1..=N.
    #[arg(long, default_value_t = 10)]
    max_gamma: usize,
    /// Repeats of each timed forward (the median is used).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Tokens cached before the timed forwards.
    #[arg(long, default_value_t = 64)]
    context_tokens: usize,
    /// Prompts for estimating α (repeatable; default: three short ones of different kinds).
    #[arg(long)]
    prompt: Vec<String>,
    /// Tokens generated per α prompt.
    #[arg(long, default_value_t = 32)]
    alpha_tokens: usize,
    /// γ of the α runs.
    #[arg(long, default_value_t = 4)]
    alpha_gamma: usize,
    /// Wrap the α prompts in the chat template.
    #[arg(long)]
    chat: bool,
    /// The chat template's thinking switch (Qwen3, SmolLM3), as for `generate`. Needs
    /// --chat.
    #[arg(long, value_enum, requires = "chat")]
    thinking: Option<super::generate::ThinkingArg>,
    /// Print the prediction as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.pair.draft.is_some(), "predict needs --draft DIR");
    let spec = pair_spec(&args.target, args.backend, args.int8, &args.pair);
    let session = Session::new(None);
    let info = session.load(&spec)?;
    let request = PredictRequest {
        max_gamma: args.max_gamma,
        repeats: args.repeats,
        context_tokens: args.context_tokens,
        alpha_prompts: if args.prompt.is_empty() {
            default_alpha_prompts()
        } else {
            args.prompt.clone()
        },
        alpha_tokens: args.alpha_tokens,
        alpha_gamma: args.alpha_gamma,
        chat: args.chat,
        enable_thinking: super::generate::ThinkingArg::enable_thinking(args.thinking),
    };
    eprintln!(
        "measuring (α over {} prompts, then forward times) …",
        request.alpha_prompts.len()
    );
    let p = session.predict(&request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    let draft = info.draft.as_ref().map_or("-".into(), |d| d.label());
    println!(
        "target {}: {:.2} ms per token; draft {draft}: {:.2} ms per token; c = {:.3}",
        info.target.label(),
        p.costs.target_ms,
        p.costs.draft_ms,
        p.cost_ratio
    );
    println!(
        "α = {:.3} ({} of {} drafts accepted, γ = {}, {} prompts × {} tokens)",
        p.alpha,
        p.accepted,
        p.drafted,
        request.alpha_gamma,
        request.alpha_prompts.len(),
        request.alpha_tokens
    );
    let rows: Vec<Vec<String>> = p
        .rows
        .iter()
        .map(|r| {
            vec![
                r.gamma.to_string(),
                format!("{:.2}", r.verify_ratio),
                format!("{:.2}×", r.speedup),
                format!("{:.2}×", r.speedup_free_verify),
                if r.gamma == p.best_gamma {
                    "← best".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    println!(
        "{}",
        render_table(
            &["γ", "verify cost r(γ)", "predicted", "if r = 1", ""],
            &rows
        )
    );
    let best = &p.rows[p.best_gamma - 1];
    println!("best γ = {} ({:.2}× predicted)", p.best_gamma, best.speedup);
    println!(
        "speedup(γ) = (1 − α^(γ+1)) / ((1 − α)(γc + r(γ))), c = t_draft / t_target, \
         r(γ) = t_target(γ+1 tokens) / t_target(1 token)"
    );
    Ok(())
}
