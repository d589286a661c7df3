//! Model families as burn modules: the definition Tandem's decoders follow, run on the
//! CUDA backend and (as the reference the CPU engine is tested against) on flex.
//!
//! - [`llama`]: the decoder of every family (Llama, Qwen2/3, Mistral, Gemma 1-3, Phi-3,
//!   SmolLM3), config → module.
//! - [`linears`]: which checkpoint tensors make each linear layer (shared by every
//!   loader, burn's and the CPU engine's, and by the int8 cache).
//! - [`norms`]: which norm tensors each layer has, read as multipliers (both engines).
//! - [`rope`]: rotary embedding frequencies and tables.
//! - [`layers`], [`kv_cache`]: the burn building blocks.

pub mod kv_cache;
pub mod layers;
pub mod linears;
pub mod llama;
pub mod norms;
pub mod rope;
