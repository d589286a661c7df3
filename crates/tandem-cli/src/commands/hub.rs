//! What the hub commands (`pull`, `pairs`, `doctor`, `rm`) share: the hub
//! client and error messages with a next step.

use tandem_hub::{BlockingHubClient, HubError};
use tandem_pairs::PairsError;

/// A client set up from HF_ENDPOINT, HF_HOME / HF_HUB_CACHE, HF_TOKEN and
/// HF_HUB_OFFLINE, as Python's `huggingface_hub` reads them.
pub fn client() -> anyhow::Result<BlockingHubClient> {
    Ok(BlockingHubClient::from_env()?)
}

/// The hub's message plus what to try next, where the message alone leaves
/// the user stuck. Gated and disk-space messages already say what to do.
pub fn explain_hub_error(err: HubError) -> anyhow::Error {
    let hint = match &err {
        HubError::RepoNotFound { .. } => Some(
            "Check the model id: it is the `org/name` part of the model's address on \
             huggingface.co. For a private model, set HF_TOKEN. `tandem pairs` lists \
             known-good pairs.",
        ),
        HubError::OfflineNotCached { cause, .. } | HubError::OfflineIncomplete { cause, .. }
            if cause.contains("HF_HUB_OFFLINE") =>
        {
            Some("HF_HUB_OFFLINE keeps Tandem to models already downloaded; unset it to download.")
        }
        HubError::OfflineNotCached { .. } | HubError::OfflineIncomplete { .. } => Some(
            "Check your internet connection (and HF_ENDPOINT if you use a mirror), then try \
             again; a download that was cut short resumes where it stopped.",
        ),
        HubError::Network { .. } | HubError::Interrupted { .. } => {
            Some("Run the same command again: the download resumes where it stopped.")
        }
        _ => None,
    };
    match hint {
        Some(hint) => anyhow::anyhow!("{err}\n{hint}"),
        None => err.into(),
    }
}

/// [`explain_hub_error`] for errors from `tandem-pairs`.
pub fn explain_pairs_error(err: PairsError) -> anyhow::Error {
    match err {
        PairsError::Hub { source, .. } => explain_hub_error(*source),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_gets_a_hint_and_gated_keeps_its_own() {
        let text = explain_hub_error(HubError::RepoNotFound {
            repo: "org/nope".into(),
        })
        .to_string();
        assert!(
            text.contains("org/nope") && text.contains("tandem pairs"),
            "{text}"
        );

        let gated = HubError::Gated {
            repo: "meta-llama/x".into(),
            page: "https://huggingface.co/meta-llama/x".into(),
            had_token: false,
            status: 401,
        };
        let expected = gated.to_string();
        assert_eq!(explain_hub_error(gated).to_string(), expected);
    }
}
