//! Downloads model files from the Hugging Face hub into the standard Hugging
//! Face cache, so that Python tools and `hf-hub` can read what Tandem fetched
//! and Tandem can reuse what they fetched.
//!
//! The cache layout and token-file lookup come from the `hf-hub` crate; the
//! transfer itself (resume from `.incomplete` partials, progress events,
//! cancellation, size and sha256 checks, free-space check) is done here with
//! `reqwest`, because `hf-hub`'s own downloader offers none of those.
//!
//! Entry points: [`HubClient`] (async, tokio) and [`BlockingHubClient`].
//!
//! ```no_run
//! use tandem_hub::{CancelToken, DownloadEvent, DownloadOptions, HubClient};
//!
//! # async fn run() -> Result<(), tandem_hub::HubError> {
//! let client = HubClient::builder().build()?; // HF_ENDPOINT, HF_HOME, HF_TOKEN…
//! let cancel = CancelToken::new(); // keep a clone for a "cancel" button
//! let options = DownloadOptions::new()
//!     .cancel_token(cancel.clone())
//!     .on_event(|event| {
//!         if let DownloadEvent::Progress { done, total, .. } = event {
//!             eprintln!("{done}/{total}");
//!         }
//!     });
//! let snapshot = client.download_model("Qwen/Qwen2.5-0.5B-Instruct", options).await?;
//! println!("weights: {:?}", snapshot.weight_files());
//! # Ok(())
//! # }
//! ```
//!
//! With the `mock` feature, [`mock::MockHub`] is a local fake hub for tests.

mod blocking;
mod cache;
mod cancel;
mod checksum;
mod client;
mod disk;
mod env;
mod error;
mod file_plan;
mod http;
mod inventory;
mod lock;
mod progress;
mod repo_id;
mod transfer;

#[cfg(feature = "mock")]
pub mod mock;

pub use blocking::BlockingHubClient;
pub use cancel::CancelToken;
pub use client::{DownloadOptions, HubClient, HubClientBuilder, ModelSnapshot};
pub use env::{HubEnv, DEFAULT_ENDPOINT};
pub use error::{human_bytes, HubError};
pub use file_plan::{
    CHAT_TEMPLATE, CONFIG, GENERATION_CONFIG, SAFETENSORS_INDEX, SINGLE_SAFETENSORS, TOKENIZER,
    TOKENIZER_CONFIG,
};
pub use inventory::{CachedModel, CachedSnapshot};
pub use progress::{DownloadEvent, EventSink, PlannedFile};
