//! The CPU engine.

pub mod attention;
pub mod bandwidth;
pub mod isa;
pub mod kernels;
pub mod model;
pub mod ops;
pub mod pool;

pub use model::CpuModel;
