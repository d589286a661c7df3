pub mod bench;
pub mod compare;
pub mod doctor;
pub mod generate;
mod hub;
pub mod logits;
pub mod models;
pub mod pairs;
pub mod predict;
pub mod pull;
mod pull_progress;
pub mod replay;
pub mod rm;
pub mod suite;
mod table;
mod terminal_text;

/// The precision an `--int8` flag asks for.
pub fn precision(int8: bool) -> tandem_model::Precision {
    if int8 {
        tandem_model::Precision::Int8
    } else {
        tandem_model::Precision::F32
    }
}

/// The precision `--int8` or `--f16` ask for (clap lets only one be given).
pub fn precision_or_f16(int8: bool, f16: bool) -> tandem_model::Precision {
    if f16 {
        tandem_model::Precision::F16
    } else {
        precision(int8)
    }
}

/// What runs the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// CPU: Tandem's own engine (int8 and f32 kernels per instruction set, a
    /// persistent thread pool).
    #[default]
    Cpu,
    /// CPU through burn's flex backend: the reference the CPU engine is tested against.
    Flex,
    /// NVIDIA GPU (burn cuda; needs a build with `--features cuda`).
    Cuda,
    /// NVIDIA GPU through burn's CUDA backend without its fusion layer (a check of
    /// `cuda`; slower).
    CudaUnfused,
}

impl From<BackendChoice> for tandem_engine::BackendKind {
    fn from(choice: BackendChoice) -> Self {
        match choice {
            BackendChoice::Cpu => Self::Cpu,
            BackendChoice::Flex => Self::Flex,
            BackendChoice::Cuda => Self::Cuda,
            BackendChoice::CudaUnfused => Self::CudaUnfused,
        }
    }
}

/// Calls `$body` with the burn backend type `$B` chosen at run time (`flex`, `cuda` or
/// `cuda-unfused`;
/// the CPU engine is not a burn backend and callers handle it before).
#[macro_export]
macro_rules! with_backend {
    ($choice:expr, $B:ident => $body:expr) => {{
        match $choice {
            $crate::commands::BackendChoice::Cpu => {
                unreachable!("the CPU engine is not a burn backend")
            }
            $crate::commands::BackendChoice::Flex => {
                type $B = tandem_model::Flex;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::commands::BackendChoice::Cuda => {
                type $B = tandem_model::backends::Cuda;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::commands::BackendChoice::CudaUnfused => {
                type $B = tandem_model::backends::CudaUnfused;
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::commands::BackendChoice::Cuda | $crate::commands::BackendChoice::CudaUnfused => {
                anyhow::bail!("this tandem was built without CUDA; rebuild with `cargo build --release --features cuda`")
            }
        }
    }};
}
