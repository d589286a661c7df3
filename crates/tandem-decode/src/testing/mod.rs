//! Tiny hand-written models and statistics for testing decoding strategies,
//! here and in other crates (enable the `testing` feature).
//!
//! - [`TableLm`]: next-token logits are a hand-written function of
//!   (position, previous tokens); cheap enough for 10⁵-draw distribution tests.
//! - [`RandomNgramLm`]: a seeded random n-gram table with sharp logits, and
//!   noisy copies of it as weaker drafts.
//! - [`CheckedLm`]: wraps any model, counts forwards, asserts the cache is
//!   used as the trait promises and lets a test read the cached tokens.
//! - [`PaddedLm`]: appends never-produced ids, like Qwen's padded vocabulary.
//! - [`chi_square`]: a goodness-of-fit test with a hand-rolled survival function.

mod checked_lm;
pub mod chi_square;
mod history_lm;
mod padded_lm;
mod random_lm;
mod table_lm;

pub use checked_lm::{CacheProbe, CheckedLm, LmCounters};
pub use padded_lm::PaddedLm;
pub use random_lm::RandomNgramLm;
pub use table_lm::TableLm;
