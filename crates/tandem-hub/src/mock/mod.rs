//! A local fake of the Hugging Face hub for tests (this crate's, other
//! crates', and a desktop end-to-end test through the `mock-hub` binary).
//!
//! It speaks the parts of the hub's HTTP API that `tandem-hub` and
//! `huggingface_hub` use, as the real hub serves them (the test
//! `tests/hub/hf_client.rs` holds it to the Python client): the repo info
//! API, the paged tree listing, HEAD/GET on `/{repo}/resolve/{rev}/{file}`
//! with `ETag` / `X-Linked-Etag` / `X-Linked-Size` / `X-Repo-Commit`, 302
//! redirects of LFS files to a signed URL on a second port (the CDN, which
//! refuses a token), 307 redirects of renamed repos, `Range` requests,
//! gated and missing repos. Faults can be injected (dropped connection,
//! corrupt bytes, error status) and every request is recorded with its
//! range and the body bytes sent.
//!
//! ```no_run
//! use tandem_hub::mock::{MockHub, MockRepo};
//! let hub = MockHub::start([MockRepo::new("org/model")
//!     .file("config.json", b"{}".to_vec())
//!     .file("model.safetensors", vec![0u8; 1024])])
//! .unwrap();
//! // Point the client at it: HubClientBuilder::endpoint(hub.url()) or HF_ENDPOINT.
//! println!("{}", hub.url());
//! ```

mod repo;
mod server;
mod wire;

pub use repo::{load_repos, MockRepo};
pub use server::{Fault, MockHub, RecordedRequest, RedirectStyle, RequestKind};
