//! `tandem rm REPO`: deletes a downloaded model from the Hugging Face cache.

use tandem_pairs::units::human_bytes;

use super::hub::client;

#[derive(clap::Args)]
pub struct Args {
    /// The hub model id to remove, e.g. Qwen/Qwen2.5-0.5B-Instruct.
    repo: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let client = client()?;
    // Sized before deleting, to say what was freed.
    let size = client
        .list_cached_models()?
        .into_iter()
        .find(|model| model.repo_id == args.repo)
        .map(|model| model.size_on_disk);
    if client.remove_model(&args.repo)? {
        println!(
            "Removed {} and freed {}.",
            args.repo,
            human_bytes(size.unwrap_or(0))
        );
    } else {
        println!(
            "{} is not downloaded (looked in {}); nothing to remove.",
            args.repo,
            client.cache_dir().display()
        );
    }
    Ok(())
}
