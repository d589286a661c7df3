//! Files on disk: safetensors checkpoints (read with every error naming the file and
//! tensor), GGUF files (llama.cpp's, as LM Studio and Ollama keep models) and Tandem's
//! int8 cache beside a model; and synthetic models, generated in memory.

pub mod gguf;
pub mod gguf_model;
pub mod gguf_tokenizer;
pub mod int8_cache;
pub mod safetensors;
pub mod synthetic;
