//! Tandem's engine: the one facade over the model core and the decoding strategies that
//! the CLI and the desktop app use. It knows nothing of terminals or windows.
//!
//! - [`Session`]: the loaded pair, runs, races, suites, history, cancel (what an app holds).
//! - [`run_generation`] / [`run_comparison`] / [`run_suite`] / [`predict()`]: the same
//!   work as free functions over a [`LoadedPair`], for callers that hold models themselves.
//! - [`export`]: run logs (JSON Lines), CSV and the HTML report, written atomically.

pub mod compare;
pub mod error;
pub mod export;
pub mod history;
mod ids;
pub mod limits;
pub mod model;
pub mod pair;
pub mod predict;
pub mod provenance;
pub mod record;
pub mod run;
pub mod session;
pub mod suite;
#[cfg(test)]
mod testing;
pub mod text;

pub use compare::{
    run_comparison, CompareRequest, Comparison, Divergence, GreedyCheck, RaceEvent, RunStats,
    SpeedupBasis,
};
pub use error::{EngineError, Result};
pub use history::{default_data_dir, HistoryEntry, RunHistory};
pub use model::{BackendKind, LoadedModel, ModelSpec};
pub use pair::{LoadedPair, PairInfo, PairSpec};
pub use predict::{predict, predicted_speedup, PredictRequest, Prediction};
pub use provenance::ModelProvenance;
pub use record::{RunHeader, RunRecord, LOG_SCHEMA_VERSION};
pub use run::{
    check_draft, prompt_text, run_generation, EventSink, GenerateRequest, RunMode, RunOutput,
};
pub use session::{CancelHandle, RunEvent, Session};
pub use suite::{load_suite, run_suite, CategoryRow, SuiteItem, SuiteReport};
pub use text::{TextPiece, TextStream};

// The decoding vocabulary the engine's callers need, re-exported so they depend on one crate.
pub use tandem_decode::{
    expected_speedup, GammaPolicy, GenerationEvent, GenerationSummary, ModeKind, SamplingConfig,
    StepTrace, StopReason, TokenOrigin,
};
pub use tandem_model::families::llama::LoadOptions;
pub use tandem_model::Precision;
