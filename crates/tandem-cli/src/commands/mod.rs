pub mod bench;
pub mod compare;
pub mod doctor;
pub mod generate;
mod hub;
pub mod logits;
pub mod pairs;
pub mod predict;
pub mod pull;
mod pull_progress;
pub mod replay;
pub mod rm;
pub mod suite;
mod table;

use std::path::Path;

use tandem_model::{Llama, LoadOptions, TandemBackend};

/// Which burn backend runs the model.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum BackendChoice {
    /// CPU (burn flex).
    #[default]
    Flex,
    /// NVIDIA GPU (burn cuda; needs a build with `--features cuda`).
    Cuda,
}

/// Calls `$body` with the backend type `$B` chosen at run time.
#[macro_export]
macro_rules! with_backend {
    ($choice:expr, $B:ident => $body:expr) => {{
        match $choice {
            $crate::commands::BackendChoice::Flex => {
                type $B = tandem_model::Flex;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::commands::BackendChoice::Cuda => {
                type $B = tandem_model::backends::Cuda;
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::commands::BackendChoice::Cuda => {
                anyhow::bail!("this tandem was built without CUDA; rebuild with `cargo build --release --features cuda`")
            }
        }
    }};
}

pub fn load_model<B: TandemBackend>(
    dir: &Path,
    context_len: Option<usize>,
) -> anyhow::Result<Llama<B>> {
    let device = B::Device::default();
    Ok(Llama::<B>::load(
        dir,
        &LoadOptions {
            context_len,
            ..Default::default()
        },
        &device,
    )?)
}
