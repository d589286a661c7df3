//! Tandem's model core: Hugging Face decoder models (Llama, Qwen2/3, Mistral, Gemma
//! 1-3, Phi-3, SmolLM3) with a rollback KV cache, a tokenizer and chat templates.
//!
//! Where things are:
//! - [`config`], [`tokenizer`]: what a model folder says about the model.
//! - [`formats`]: files on disk (safetensors checkpoints, the int8 cache).
//! - [`quant`]: int8 quantization (scale search, calibration, the packed layout).
//! - [`families`]: the model definitions on burn (the Llama family), the reference the
//!   CPU engine is tested against and the CUDA path.
//! - [`backends`]: the burn backends (flex, cuda) and what differs between them.
//! - [`cpu`]: the CPU engine: the same decoder on Tandem's own kernels, thread pool and
//!   preallocated buffers; what runs on the CPU by default.

// burn's `slice` takes one range per dimension: `[a..b]` slices the first dimension.
#![allow(clippy::single_range_in_vec_init)]

pub mod backends;
pub mod bench;
pub mod causal_lm;
pub mod config;
pub mod cpu;
pub mod error;
pub mod families;
pub mod formats;
pub mod fuzzing;
pub mod memory;
pub mod quant;
pub mod test_models;
pub mod tokenizer;

pub use backends::{Flex, TandemBackend};
pub use config::{Architecture, ModelConfig, RopeScaling};
pub use error::{ModelError, Result};
pub use families::llama::{Llama, LoadOptions};
pub use quant::Precision;
pub use tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
