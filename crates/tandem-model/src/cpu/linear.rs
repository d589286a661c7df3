//! A linear layer on the CPU engine: its packed weight (f32 or int8), its bias, and the
//! activation rows it reads, with the product split over the pool by output tiles.

use std::ops::Range;

use super::isa::Isa;
use super::kernels::{
    f32_matmul, int8_matmul, Epilogue, F32Rows, OutRows, PackedF32, QuantizedRows,
};
use super::pool::{share, Pool};
use crate::error::Result;
use crate::families::linears::LinearSpec;
use crate::formats::int8_cache::QuantizedWeights;
use crate::formats::safetensors::WeightFiles;
use crate::quant::packed::{PackedInt8, TILE};

/// The weight of a linear layer, in the precision it was loaded at.
pub(super) enum Weight {
    F32(PackedF32),
    Int8(PackedInt8),
}

/// A linear layer: packed weight and optional f32 bias.
pub(super) struct Linear {
    pub(super) weight: Weight,
    pub(super) bias: Option<Vec<f32>>,
}

impl Linear {
    pub(super) fn in_features(&self) -> usize {
        match &self.weight {
            Weight::F32(w) => w.in_features,
            Weight::Int8(w) => w.in_features,
        }
    }

    pub(super) fn out_features(&self) -> usize {
        match &self.weight {
            Weight::F32(w) => w.out_features,
            Weight::Int8(w) => w.out_features,
        }
    }

    pub(super) fn size_bytes(&self) -> usize {
        let bias = self.bias.as_ref().map_or(0, |b| 4 * b.len());
        bias + match &self.weight {
            Weight::F32(w) => w.size_bytes(),
            Weight::Int8(w) => w.size_bytes(),
        }
    }

    /// The product for the columns of `tiles`, on the calling thread.
    pub(super) fn matmul(
        &self,
        isa: Isa,
        input: &Input<'_>,
        tiles: Range<usize>,
        target: &OutRows,
        epilogue: &Epilogue,
    ) {
        match (&self.weight, input) {
            (Weight::Int8(w), Input::Int8(x)) => int8_matmul(isa, x, w, tiles, target, epilogue),
            (Weight::F32(w), Input::F32(x)) => f32_matmul(isa, x, w, tiles, target, epilogue),
            _ => unreachable!("the input is prepared for the weight's precision"),
        }
    }

    /// The same layer with its columns gathered (see [`PackedInt8::with_columns`]).
    pub(super) fn with_columns(&self, columns: &[Option<usize>]) -> Linear {
        assert!(self.bias.is_none(), "gathered layers have no bias");
        let weight = match &self.weight {
            Weight::F32(w) => Weight::F32(w.with_columns(columns)),
            Weight::Int8(w) => Weight::Int8(w.with_columns(columns)),
        };
        Linear { weight, bias: None }
    }

    /// `out (+)= input · W + bias` for `rows` rows, split over the pool by tiles.
    pub(super) fn forward(
        &self,
        pool: &Pool,
        isa: Isa,
        input: Input<'_>,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        let rows = input.rows();
        let target = OutRows::new(out, rows, out_stride, self.out_features());
        let epilogue = Epilogue {
            bias: self.bias.as_deref(),
            accumulate,
        };
        let parts = pool.threads();
        let tiles = self.out_features().div_ceil(TILE);
        pool.run(&|part| {
            let range = share(tiles, part, parts);
            if !range.is_empty() {
                self.matmul(isa, &input, range, &target, &epilogue);
            }
        });
    }
}

/// Activation rows as a linear layer reads them.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    F32(F32Rows<'a>),
    Int8(QuantizedRows<'a>),
}

impl Input<'_> {
    pub(super) fn rows(&self) -> usize {
        match self {
            Input::F32(x) => x.rows,
            Input::Int8(x) => x.rows,
        }
    }
}

/// One linear layer: packed int8 from `quantized`, else HF `[out, in]` parts packed as
/// f32. The bias, if any, is f32.
pub(super) fn load_linear(
    spec: &LinearSpec,
    weights: &WeightFiles,
    quantized: Option<&mut QuantizedWeights>,
) -> Result<Linear> {
    let weight = match quantized {
        Some(quantized) => Weight::Int8(quantized.take(spec)?),
        None => {
            let parts = spec
                .parts
                .iter()
                .map(|(name, out)| {
                    Ok((
                        weights.read(&format!("{name}.weight"), &[*out, spec.in_features])?,
                        *out,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let slices: Vec<(&[f32], usize)> =
                parts.iter().map(|(v, out)| (v.as_slice(), *out)).collect();
            Weight::F32(PackedF32::from_parts(&slices, spec.in_features))
        }
    };
    Ok(Linear {
        weight,
        bias: spec.read_bias(weights)?,
    })
}
