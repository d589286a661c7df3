//! A model ready to run: the burn decoder behind the decoding crate's `CausalLm` seam,
//! with its tokenizer and config. The backend is chosen at load time and erased here,
//! so callers hold one type whatever runs underneath.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tandem_decode::CausalLm;
use tandem_model::cpu::CpuModel;
use tandem_model::{Llama, LoadOptions, ModelConfig, TandemBackend, Tokenizer};

use crate::error::Result;

/// What runs a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// CPU: Tandem's own engine ([`tandem_model::cpu`]).
    #[default]
    Cpu,
    /// CPU through burn's flex backend (the reference the engine is tested against).
    Flex,
    /// NVIDIA GPU (burn cuda).
    Cuda,
    /// NVIDIA GPU through burn's CUDA backend without its fusion layer: the check of
    /// the fused one.
    #[serde(rename = "cuda-unfused")]
    CudaUnfused,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Flex => "flex",
            Self::Cuda => "cuda",
            Self::CudaUnfused => "cuda-unfused",
        }
    }
}

/// What to load, and how.
#[derive(Clone, Debug, Default)]
pub struct ModelSpec {
    pub dir: PathBuf,
    pub backend: BackendKind,
    pub options: LoadOptions,
}

impl ModelSpec {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            ..Self::default()
        }
    }
}

/// A loaded model with its tokenizer.
pub struct LoadedModel {
    pub(crate) lm: Box<dyn CausalLm + Send>,
    pub tokenizer: Tokenizer,
    pub config: ModelConfig,
    pub dir: PathBuf,
    pub backend: BackendKind,
    /// How it was loaded (precision, layer limit): run logs record it.
    pub options: LoadOptions,
    pub load_ms: f64,
    /// Chat prompts rendered for the current job before it took the model (the session
    /// sets and clears them around each job).
    pub(crate) chat_prompts: Option<crate::run::ChatPrompts>,
}

impl LoadedModel {
    pub fn load(spec: &ModelSpec) -> Result<Self> {
        let started = Instant::now();
        let tokenizer = Tokenizer::from_dir(&spec.dir)?;
        let (lm, config): (Box<dyn CausalLm + Send>, ModelConfig) = match spec.backend {
            BackendKind::Cpu => {
                let model = CpuModel::load(&spec.dir, &spec.options)?;
                let config = model.config().clone();
                (Box::new(model), config)
            }
            BackendKind::Flex => load_on::<tandem_model::Flex>(&spec.dir, &spec.options)?,
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => load_on::<tandem_model::backends::Cuda>(&spec.dir, &spec.options)?,
            #[cfg(feature = "cuda")]
            BackendKind::CudaUnfused => {
                load_on::<tandem_model::backends::CudaUnfused>(&spec.dir, &spec.options)?
            }
            #[cfg(not(feature = "cuda"))]
            BackendKind::Cuda | BackendKind::CudaUnfused => {
                return Err(crate::error::EngineError::BackendUnavailable(
                    spec.backend.name(),
                ))
            }
        };
        Ok(Self {
            lm,
            tokenizer,
            config,
            dir: spec.dir.clone(),
            backend: spec.backend,
            options: spec.options.clone(),
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            chat_prompts: None,
        })
    }

    /// The model as the decoding loops see it.
    pub fn lm(&mut self) -> &mut (dyn CausalLm + Send) {
        &mut *self.lm
    }

    /// Token strings by id, over the tokenizer's ids.
    pub fn token_strings(&self) -> Vec<String> {
        (0..self.tokenizer.vocab_size() as u32)
            .map(|id| self.tokenizer.id_to_token(id).unwrap_or_default())
            .collect()
    }

    /// Ids that end a generation: the config's EOS ids (generation_config.json's list
    /// when it has one), the tokenizer's EOS token, and the end-of-turn marker the chat
    /// template closes each turn with (chat models end their answer with it even where
    /// the config lists only `<eos>`, as Gemma 1's `<end_of_turn>`).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        let mut ids = self.config.eos_token_ids.clone();
        let mut add = |token: &str| {
            if let Some(id) = self.tokenizer.token_to_id(token) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        };
        if let Some(template) = self.tokenizer.chat_template() {
            add(&template.eos_token);
            END_OF_TURN
                .iter()
                .filter(|marker| template.source().contains(*marker))
                .for_each(|marker| add(marker));
        }
        ids
    }

    pub fn name(&self) -> String {
        display_name(&self.dir)
    }
}

/// The special tokens chat templates end a turn with (Gemma, ChatML, Llama 3, Phi-3).
const END_OF_TURN: [&str; 4] = ["<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>"];

/// A readable name for a model folder: the repo id for HF cache snapshots
/// (`models--org--name/snapshots/<rev>`), else the folder name.
/// For a model given as a GGUF file, what the file held and what Tandem made of it, for
/// the load message: `model.gguf: GGUF Q4_K_M (Q4_K, Q6_K, F32 tensors), loaded as int8`.
pub fn gguf_load_note(path: &Path, precision_loaded: tandem_model::Precision) -> Option<String> {
    if !tandem_model::formats::gguf::is_gguf_file(path) {
        return None;
    }
    use tandem_model::formats::gguf_model::{precision, tensor_type_counts};
    let file = tandem_model::formats::gguf::GgufFile::open(path).ok()?;
    let types: Vec<String> = tensor_type_counts(&file).into_keys().collect();
    Some(format!(
        "{}: GGUF {} ({} tensors), loaded as {precision_loaded}",
        display_name(path),
        precision(&file),
        types.join(", ")
    ))
}

pub fn display_name(dir: &Path) -> String {
    for ancestor in dir.ancestors() {
        if let Some(name) = ancestor.file_name().and_then(|n| n.to_str()) {
            if let Some(rest) = name.strip_prefix("models--") {
                return rest.replacen("--", "/", 1);
            }
        }
    }
    dir.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("model")
        .to_string()
}

fn load_on<B: TandemBackend>(
    dir: &Path,
    options: &LoadOptions,
) -> Result<(Box<dyn CausalLm + Send>, ModelConfig)> {
    let device = B::Device::default();
    let model = Llama::<B>::load(dir, options, &device)?;
    let config = model.config().clone();
    Ok((Box::new(model), config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(
            display_name(Path::new(
                "/c/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/abc"
            )),
            "HuggingFaceTB/SmolLM2-135M-Instruct"
        );
        assert_eq!(display_name(Path::new("/m/smollm2-135m")), "smollm2-135m");
    }
}
