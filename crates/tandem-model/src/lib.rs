//! Tandem's model core: Hugging Face decoder models (Llama, Qwen2, Mistral) on burn,
//! with a rollback KV cache, a tokenizer and chat templates.

// burn's `slice` takes one range per dimension: `[a..b]` slices the first dimension.
#![allow(clippy::single_range_in_vec_init)]

pub mod backend;
pub mod bench;
pub mod config;
pub mod error;
pub mod kernels;
pub mod kv_cache;
pub mod layers;
pub mod llama;
pub mod rope;
pub mod safetensors;
pub mod tokenizer;

pub use backend::{Flex, TandemBackend};
pub use config::{Architecture, ModelConfig, RopeScaling};
pub use error::{ModelError, Result};
pub use llama::{Llama, LoadOptions};
pub use tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
