//! `tandem pairs`: the catalog of known-good pairs as a table, marking what
//! is already downloaded, then any other models in the cache.

use tandem_hub::CachedModel;
use tandem_pairs::units::{human_bytes, human_params};
use tandem_pairs::{Catalog, Pair};

use super::hub::client;
use super::table::render_table;

#[derive(clap::Args)]
pub struct Args {}

/// How much of a model the cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheState {
    Absent,
    /// Only config files (what `tandem doctor` fetches).
    ConfigsOnly,
    /// A download was started and not finished.
    Partial {
        bytes: u64,
    },
    Complete {
        bytes: u64,
    },
}

impl CacheState {
    fn of(model: Option<&CachedModel>) -> CacheState {
        let Some(model) = model else {
            return CacheState::Absent;
        };
        let has_weights = model
            .snapshots
            .iter()
            .any(|s| s.files.iter().any(|f| f.ends_with(".safetensors")));
        if model.partial_bytes > 0 {
            CacheState::Partial {
                bytes: model.size_on_disk,
            }
        } else if has_weights {
            CacheState::Complete {
                bytes: model.size_on_disk,
            }
        } else {
            CacheState::ConfigsOnly
        }
    }

    fn describe(self) -> String {
        match self {
            CacheState::Absent => "-".into(),
            CacheState::ConfigsOnly => "configs only".into(),
            CacheState::Partial { bytes } => format!("partly ({})", human_bytes(bytes)),
            CacheState::Complete { bytes } => format!("yes ({})", human_bytes(bytes)),
        }
    }
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    let client = client()?;
    let catalog = Catalog::builtin();
    let cached = client.list_cached_models()?;
    let state = |repo: &str| CacheState::of(cached.iter().find(|m| m.repo_id == repo));

    let rows: Vec<Vec<String>> = catalog
        .pairs()
        .iter()
        .map(|pair| pair_row(pair, state(&pair.draft.repo), state(&pair.target.repo)))
        .collect();
    println!(
        "{}",
        render_table(
            &[
                "PAIR",
                "DRAFT → TARGET",
                "PARAMS",
                "DOWNLOAD",
                "LICENCE",
                "DOWNLOADED"
            ],
            &rows
        )
    );
    println!("Sizes are approximate (bf16 downloads).");

    let catalog_repos = catalog.model_repos();
    let others: Vec<Vec<String>> = cached
        .iter()
        .filter(|model| !catalog_repos.contains(&model.repo_id.as_str()))
        .map(|model| {
            vec![
                model.repo_id.clone(),
                CacheState::of(Some(model)).describe(),
            ]
        })
        .collect();
    if !others.is_empty() {
        println!("\nOther downloaded models:");
        println!("{}", render_table(&["MODEL", "DOWNLOADED"], &others));
    }
    println!(
        "\nCache: {}\nGet a pair with `tandem pull PAIR`; check any two models with \
         `tandem doctor DRAFT TARGET`.",
        client.cache_dir().display()
    );
    Ok(())
}

fn pair_row(pair: &Pair, draft: CacheState, target: CacheState) -> Vec<String> {
    let licence = if pair.gated() {
        format!("{} [gated]", pair.licences())
    } else {
        pair.licences()
    };
    vec![
        pair.id.clone(),
        format!("{} → {}", pair.draft.repo, pair.target.repo),
        format!(
            "{} → {}",
            human_params(pair.draft.params),
            human_params(pair.target.params)
        ),
        human_bytes(pair.download_bytes()),
        licence,
        downloaded_text(draft, target),
    ]
}

/// "both (3.8 GiB)", "draft (942 MiB)", "draft; target partly", "-".
fn downloaded_text(draft: CacheState, target: CacheState) -> String {
    let bytes = |state| match state {
        CacheState::Complete { bytes } => Some(bytes),
        _ => None,
    };
    match (bytes(draft), bytes(target)) {
        (Some(d), Some(t)) => format!("both ({})", human_bytes(d + t)),
        _ => {
            let parts: Vec<String> = [("draft", draft), ("target", target)]
                .into_iter()
                .filter_map(|(role, state)| match state {
                    CacheState::Complete { bytes } => {
                        Some(format!("{role} ({})", human_bytes(bytes)))
                    }
                    CacheState::Partial { .. } => Some(format!("{role} partly")),
                    CacheState::ConfigsOnly | CacheState::Absent => None,
                })
                .collect();
            if parts.is_empty() {
                "-".into()
            } else {
                parts.join("; ")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloaded_column_says_what_is_there() {
        let done = |bytes| CacheState::Complete { bytes };
        assert_eq!(downloaded_text(done(1024), done(2048)), "both (3.0 KiB)");
        assert_eq!(
            downloaded_text(done(1024), CacheState::Absent),
            "draft (1.0 KiB)"
        );
        assert_eq!(
            downloaded_text(CacheState::ConfigsOnly, CacheState::Partial { bytes: 9 }),
            "target partly"
        );
        assert_eq!(
            downloaded_text(CacheState::Absent, CacheState::ConfigsOnly),
            "-"
        );
    }
}
