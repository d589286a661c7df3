//! `tandem pull REPO|PAIR_ID`: downloads a model, or both models of a
//! catalog pair, into the Hugging Face cache. Ctrl-C stops cleanly and keeps
//! the partial file, so the next pull resumes it.

use anyhow::bail;
use tandem_hub::{CancelToken, DownloadOptions, HubError};
use tandem_pairs::Catalog;

use super::hub::{client, explain_hub_error};
use super::pull_progress::PullProgress;

#[derive(clap::Args)]
pub struct Args {
    /// A hub model id (e.g. Qwen/Qwen2.5-0.5B-Instruct) or a pair id from
    /// `tandem pairs` (e.g. qwen2.5-0.5b-1.5b) to fetch both its models.
    model: String,
    /// Branch, tag or commit of the model (not for pair ids).
    #[arg(long)]
    revision: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let catalog = Catalog::builtin();
    let repos: Vec<String> = match catalog.find(&args.model) {
        Some(pair) => {
            if args.revision.is_some() {
                bail!("--revision applies to one model; pull the pair's models one by one to pick revisions");
            }
            eprintln!(
                "Pair {}: draft {} and target {} (about {}).",
                pair.id,
                pair.draft.repo,
                pair.target.repo,
                tandem_pairs::units::human_bytes(pair.download_bytes())
            );
            vec![pair.draft.repo.clone(), pair.target.repo.clone()]
        }
        None => vec![args.model.clone()],
    };

    let client = client()?;
    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    // Without a handler Ctrl-C would kill the process mid-write; cancelling
    // lets the transfer flush and keep its `.incomplete` partial.
    ctrlc::set_handler(move || on_interrupt.cancel())?;

    let mut ready = Vec::with_capacity(repos.len());
    for repo in &repos {
        let progress = PullProgress::new();
        let mut options = DownloadOptions::new()
            .cancel_token(cancel.clone())
            .events(progress.sink());
        if let Some(revision) = &args.revision {
            options = options.revision(revision);
        }
        match client.download_model(repo, options) {
            Ok(snapshot) => ready.push((repo.clone(), snapshot.dir)),
            Err(HubError::Cancelled) => {
                progress.clear();
                bail!(
                    "download cancelled. What was already downloaded is kept: run `tandem pull {}` \
                     again to resume",
                    args.model
                );
            }
            Err(err) => {
                progress.clear();
                return Err(explain_hub_error(err));
            }
        }
    }
    for (repo, dir) in ready {
        println!("{repo} is ready in {}", dir.display());
    }
    Ok(())
}
