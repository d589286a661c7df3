//! Decoding strategies for Tandem: plain decoding, speculative decoding with a
//! draft model (Leviathan et al. 2023; Chen et al. 2023) and NASD (n-gram
//! assisted speculative decoding), behind one entry point, [`generate()`].
//!
//! The crate knows models only through [`CausalLm`], so it has no ML
//! framework dependency; the burn model implements the trait elsewhere.
//!
//! Layout: `model` (the model seam), `sampling` (warping and picking),
//! `drafter` (proposing), `verify` (ruling on drafts), `gamma` (choosing γ),
//! `metrics` and `trace` (measuring and reporting), `stopping`, `vocab`, and
//! `generate` (the loop). `testing` (tests or the `testing` feature) has tiny
//! models and a χ² test.

pub mod drafter;
pub mod error;
pub mod gamma;
pub mod generate;
pub mod metrics;
pub mod model;
pub mod sampling;
pub mod stopping;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod vector;
pub mod verify;
pub mod vocab;

pub use drafter::{Draft, DraftedToken, Drafter, ModelDrafter, NgramDrafter, NgramStore};
pub use error::{DecodeError, ModelRole};
pub use gamma::{expected_speedup, GammaChoice, GammaPolicy, GammaRule};
pub use generate::{
    generate, Detokenizer, GenerationConfig, GenerationResult, Hooks, Mode, Observer,
};
pub use model::{CausalLm, Logits, ModelError};
pub use sampling::{Sampler, SamplingConfig};
pub use trace::{
    DraftTrace, EmittedToken, GenerationEvent, GenerationSummary, ModeKind, PositionAcceptance,
    StepTrace, StopReason, TokenOrigin, TokenProb, VerifyTrace,
};
#[doc(hidden)]
pub use verify::RejectionVariant;
pub use vocab::{check_vocab_compatible, VocabMismatch};
