//! Model pairs for speculative decoding: a catalog of known-good draft/target
//! pairs, and a doctor that checks any pair from its configs and tokenizers
//! before the weights are downloaded.
//!
//! ```no_run
//! use tandem_pairs::{doctor_models, Catalog, DoctorOptions};
//! use tandem_hub::BlockingHubClient;
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pair = Catalog::builtin().find("qwen2.5-0.5b-1.5b").unwrap().clone();
//! let client = BlockingHubClient::from_env()?;
//! let verdict = doctor_models(&client, &pair.draft.repo, &pair.target.repo, &DoctorOptions::default())?;
//! for problem in &verdict.problems {
//!     println!("{problem}");
//! }
//! # Ok(())
//! # }
//! ```

mod catalog;
mod doctor;
mod error;
pub mod local_models;
pub mod memory;
mod model_arg;
pub mod units;

pub use catalog::{Catalog, CatalogModel, Pair};
pub use doctor::{doctor, DoctorOptions, SpeedupHint, Verdict, DEFAULT_CONTEXT_LEN};
pub use error::PairsError;
pub use local_models::{find_local_models, LocalModel, ModelFolders, ModelSource};
pub use memory::{MemoryEstimate, ModelMemory};
pub use model_arg::{
    doctor_models, doctor_models_async, fetch_model_configs, fetch_model_configs_async,
    resolve_model_dir, resolve_model_dir_async, ModelArg,
};
/// The weight precision the loader and the memory estimate share.
pub use tandem_model::Precision;
