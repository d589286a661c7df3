//! The CPU engine: the Llama-family decoder of [`crate::families::llama`] on Tandem's
//! own kernels, the default on the CPU (`--backend cpu`). burn's flex backend runs the
//! same model definition as the reference the engine is tested against.
//!
//! Decoding multiplies one to a few dozen activation rows by every weight matrix, so a
//! step is bound by how fast the weights stream from memory; the engine is built so a
//! verify pass of γ + 1 rows reads each weight once, as a decode step does, and so each
//! row's result is bit-identical to that row computed alone (what keeps greedy
//! speculative decoding exactly equal to plain decoding).
//!
//! - [`model`]: [`CpuModel`], loading and the forward over chunks of rows.
//! - `layer`, `linear`: one decoder layer, one linear layer on the pool.
//! - [`kernels`]: the matrix products, one file per weight type and instruction set.
//! - [`ops`]: norms, activation quantization, the SiLU gate, RoPE, vector helpers.
//! - [`attention`]: the KV cache and attention over it.
//! - [`pool`]: the persistent thread pool; [`isa`]: run-time choice of instruction set;
//!   [`bandwidth`]: the memory roofline `tandem bench` reports against.

pub mod attention;
pub mod bandwidth;
pub mod isa;
pub mod kernels;
mod layer;
mod linear;
pub mod model;
pub mod ops;
pub mod pool;

pub use model::CpuModel;
