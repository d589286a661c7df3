//! Files on disk: safetensors checkpoints (read with every error naming the file and
//! tensor) and Tandem's int8 cache beside a model.

pub mod int8_cache;
pub mod safetensors;
