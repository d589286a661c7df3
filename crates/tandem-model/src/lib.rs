//! Tandem's model core: Hugging Face decoder models (Llama, Qwen2, Mistral) on burn,
//! with a rollback KV cache, a tokenizer and chat templates.

// burn's `slice` takes one range per dimension: `[a..b]` slices the first dimension.
#![allow(clippy::single_range_in_vec_init)]

pub mod backend;
pub mod bench;
pub mod calibration;
pub mod causal_lm;
pub mod config;
#[cfg(feature = "cuda")]
pub mod cuda_int8;
pub mod error;
pub mod int8_cache;
pub mod kernels;
pub mod kv_cache;
pub mod layers;
pub mod linears;
pub mod llama;
pub mod memory;
pub mod quant;
pub mod rope;
pub mod safetensors;
pub mod test_models;
pub mod tokenizer;

pub use backend::{Flex, TandemBackend};
pub use config::{Architecture, ModelConfig, RopeScaling};
pub use error::{ModelError, Result};
pub use llama::{Llama, LoadOptions};
pub use quant::Precision;
pub use tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
