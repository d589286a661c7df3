//! `tandem models`: the models already on this computer (LM Studio's and Ollama's GGUF
//! files, the Hugging Face cache), what each is and whether Tandem can load it.

use std::path::PathBuf;

use tandem_hub::human_bytes;
use tandem_pairs::{find_local_models, LocalModel, ModelFolders};

use super::table::render_table;
use super::terminal_text::{printable, Lines};

#[derive(clap::Args)]
pub struct Args {
    /// Look only in this folder (as LM Studio's models folder), not in the tools' defaults.
    #[arg(long)]
    folder: Option<PathBuf>,
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let folders = match &args.folder {
        Some(folder) => ModelFolders {
            lm_studio: vec![folder.clone()],
            ..ModelFolders::default()
        },
        None => ModelFolders::from_env(),
    };
    let models = find_local_models(&folders);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&models)?);
        return Ok(());
    }
    if models.is_empty() {
        println!("no models found in {}", describe_folders(&folders));
        return Ok(());
    }
    println!(
        "{}",
        render_table(
            &["SOURCE", "MODEL", "ARCH", "PRECISION", "SIZE", "LOADS"],
            &rows(&models)
        )
    );
    let blocked: Vec<&LocalModel> = models.iter().filter(|m| m.problem.is_some()).collect();
    for m in &blocked {
        let problem = m.problem.as_deref().unwrap_or_default();
        println!("  {}: {}", field(&m.name), field(problem));
    }
    println!("\nUse a model with --model PATH; paths: tandem models --json");
    Ok(())
}

/// Names and problems come from files on disk: printed escaped, on one line.
fn field(text: &str) -> String {
    printable(text, Lines::Escape).into_owned()
}

fn rows(models: &[LocalModel]) -> Vec<Vec<String>> {
    models
        .iter()
        .map(|m| {
            vec![
                m.source.label().to_string(),
                field(&m.name),
                field(m.architecture.as_deref().unwrap_or("?")),
                field(m.precision.as_deref().unwrap_or("?")),
                human_bytes(m.size_bytes),
                if m.problem.is_none() {
                    "yes"
                } else {
                    "no (below)"
                }
                .to_string(),
            ]
        })
        .collect()
}

fn describe_folders(folders: &ModelFolders) -> String {
    let mut all: Vec<String> = folders
        .lm_studio
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    all.extend(folders.ollama.iter().map(|p| p.display().to_string()));
    all.extend(folders.hf_cache.iter().map(|p| p.display().to_string()));
    all.join(", ")
}
