//! Scenario tests of `generate`, one concern per file; `support` runs the
//! models behind cache-checking wrappers.

mod bookkeeping;
mod distribution;
mod greedy_exactness;
mod reproducibility;
mod stopping;
mod support;
