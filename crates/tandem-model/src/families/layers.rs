//! The building blocks of the decoder: a linear layer with `[in, out]` weights (f32,
//! f16 or int8) and RMSNorm.

use burn::tensor::backend::Backend;

use burn::tensor::{DType, FloatDType, Tensor, TensorCreationOptions, TensorData};

use crate::backends::TandemBackend;
use crate::quant::QuantizedMatrix;

/// `y = x W + b` with `W` stored `[in, out]`, contiguous.
///
/// Weights are kept `[in, out]` rather than burn's `nn::Linear` layout: a plain row-major
/// matmul is fastest on flex, and on CUDA a transposed weight view can select a wrong
/// fused kernel (burn#5264). Inputs are always 2-D (`[tokens, in]`): a 3-D input to a
/// linear layer is 25× slower on flex 0.21.
pub struct Linear<B: TandemBackend> {
    pub weight: LinearWeight<B>,
    pub bias: Option<Tensor<B, 1>>,
}

/// The weight of a [`Linear`], in the precision it was loaded at.
pub enum LinearWeight<B: TandemBackend> {
    /// `[in, out]` f32.
    F32(Tensor<B, 2>),
    /// `[in, out]` f16 (dtype `F16`): half the bytes a token streams. The input is
    /// rounded to f16 for the product and the output widened back, so everything around
    /// the linear layers (norms, residuals, attention, the KV cache) stays f32.
    F16(Tensor<B, 2>),
    /// `[in, out]` int8 with per-output-channel scales, in the backend's own storage.
    Int8 {
        weight: B::Int8Weight,
        in_features: usize,
        out_features: usize,
    },
}

impl<B: TandemBackend> LinearWeight<B> {
    /// Wraps a host int8 matrix, moving it to the backend's storage.
    pub fn int8(matrix: QuantizedMatrix, device: &B::Device) -> Self {
        let (in_features, out_features) = (matrix.in_features, matrix.out_features);
        Self::Int8 {
            weight: B::int8_weight(matrix, device),
            in_features,
            out_features,
        }
    }
}

impl<B: TandemBackend> Linear<B> {
    /// An f32 layer from a `[in, out]` weight.
    pub fn f32(weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Self {
        Self {
            weight: LinearWeight::F32(weight),
            bias,
        }
    }

    /// # Shapes
    /// - x: `[n, in]` → `[n, out]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = match &self.weight {
            LinearWeight::F32(weight) => B::project(x, weight),
            LinearWeight::F16(weight) => x
                .cast(FloatDType::F16)
                .matmul(weight.clone())
                .cast(FloatDType::F32),
            LinearWeight::Int8 { weight, .. } => B::project_int8(x, weight),
        };
        match &self.bias {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        }
    }

    pub fn in_features(&self) -> usize {
        match &self.weight {
            LinearWeight::F32(weight) | LinearWeight::F16(weight) => weight.dims()[0],
            LinearWeight::Int8 { in_features, .. } => *in_features,
        }
    }

    pub fn out_features(&self) -> usize {
        match &self.weight {
            LinearWeight::F32(weight) | LinearWeight::F16(weight) => weight.dims()[1],
            LinearWeight::Int8 { out_features, .. } => *out_features,
        }
    }

    pub fn is_int8(&self) -> bool {
        matches!(self.weight, LinearWeight::Int8 { .. })
    }
}

/// Root-mean-square normalisation with a learned per-channel scale (`gamma`).
pub struct RmsNorm<B: Backend> {
    pub gamma: Tensor<B, 1>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// # Shapes
    /// - x: `[n, d]` → `[n, d]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let mean_square = (x.clone() * x.clone()).mean_dim(1);
        let inv_rms = mean_square.add_scalar(self.eps).sqrt().recip();
        x * inv_rms * self.gamma.clone().unsqueeze::<2>()
    }
}

/// Builds a `[rows, cols]` tensor from row-major values.
pub fn tensor2<B: Backend>(
    values: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// Builds a `[rows, cols]` tensor of dtype F16 from row-major f32 values (each rounded
/// to the nearest f16).
pub fn tensor2_f16<B: Backend>(
    values: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(values, [rows, cols]),
        TensorCreationOptions::new(device.clone()).with_dtype(DType::F16),
    )
}

pub fn tensor1<B: Backend>(values: Vec<f32>, device: &B::Device) -> Tensor<B, 1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Turns Hugging Face `[out, in]` weights into one `[in, Σ out]` matrix: each part is
/// transposed and the parts are placed side by side (fused QKV and gate/up projections).
pub fn transpose_and_concat(parts: &[(&[f32], usize)], in_features: usize) -> Vec<f32> {
    let total_out: usize = parts.iter().map(|(_, out)| out).sum();
    let mut fused = vec![0.0f32; in_features * total_out];
    let mut col0 = 0;
    for &(values, out) in parts {
        debug_assert_eq!(values.len(), out * in_features);
        // Blocked transpose: keeps both reads and writes within a few cache lines.
        const BLOCK: usize = 32;
        for o0 in (0..out).step_by(BLOCK) {
            for i0 in (0..in_features).step_by(BLOCK) {
                for o in o0..(o0 + BLOCK).min(out) {
                    let src = &values[o * in_features..];
                    for i in i0..(i0 + BLOCK).min(in_features) {
                        fused[i * total_out + col0 + o] = src[i];
                    }
                }
            }
        }
        col0 += out;
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Flex;

    #[test]
    fn int8_linear_matches_its_dequantized_f32_twin() {
        let device = Default::default();
        let (k, m) = (48, 40);
        let w: Vec<f32> = (0..k * m)
            .map(|i| ((i * 31 % 97) as f32 - 48.0) / 50.0)
            .collect();
        let q = QuantizedMatrix::quantize(&w, k, m);
        let bias = || {
            Some(tensor1::<Flex>(
                (0..m).map(|j| j as f32 / 10.0).collect(),
                &device,
            ))
        };
        let twin = Linear::<Flex>::f32(tensor2(q.dequantize(), k, m, &device), bias());
        let int8 = Linear::<Flex> {
            weight: LinearWeight::int8(q, &device),
            bias: bias(),
        };
        assert!(int8.is_int8() && (int8.in_features(), int8.out_features()) == (k, m));
        // 1 row (decode) and 40 rows (prefill: more than one row block).
        for n in [1, 40] {
            let x: Vec<f32> = (0..n * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
                .collect();
            let want = twin.forward(tensor2(x.clone(), n, k, &device));
            let got = int8.forward(tensor2(x, n, k, &device));
            let diff = (want - got).abs().max().into_scalar();
            assert!(diff < 1e-4, "n = {n}: {diff}");
        }
    }

    #[test]
    fn f16_linear_rounds_weights_and_input_to_f16_and_returns_f32() {
        let device = Default::default();
        let (k, m) = (3, 2);
        // 1/3 is not an f16: the weight is held rounded, as is the input.
        let w = vec![1.0 / 3.0, 2.0, -0.5, 0.25, 1.0e-3, 4.0];
        let linear = Linear::<Flex> {
            weight: LinearWeight::F16(tensor2_f16(w.clone(), k, m, &device)),
            bias: Some(tensor1(vec![0.5, -0.5], &device)),
        };
        assert_eq!((linear.in_features(), linear.out_features()), (k, m));
        let x = vec![0.1, -2.0, 3.0];
        let y = linear.forward(tensor2(x.clone(), 1, k, &device));
        assert_eq!(y.dtype(), DType::F32);
        let y = y.into_data().to_vec::<f32>().unwrap();
        let half = |v: f32| half::f16::from_f32(v).to_f32();
        for (j, (&got, bias)) in y.iter().zip([0.5, -0.5]).enumerate() {
            let dot: f32 = (0..k).map(|i| half(x[i]) * half(w[i * m + j])).sum();
            // The product is rounded to f16 once more before the f32 bias is added.
            let want = half(dot) + bias;
            assert!(
                (got - want).abs() <= 1e-3 * want.abs(),
                "{j}: {got} vs {want}"
            );
            assert_ne!(got, dot + bias, "{j}: not rounded to f16");
        }
    }

    #[test]
    fn transpose_and_concat_places_parts_side_by_side() {
        // a: [2 out, 3 in], b: [1 out, 3 in]
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [7.0, 8.0, 9.0];
        let fused = transpose_and_concat(&[(&a, 2), (&b, 1)], 3);
        assert_eq!(fused, vec![1.0, 4.0, 7.0, 2.0, 5.0, 8.0, 3.0, 6.0, 9.0]);
    }

    #[test]
    fn linear_and_rmsnorm_match_hand_computation() {
        let device = Default::default();
        let linear = Linear::<Flex>::f32(
            tensor2(vec![1.0, 2.0, 3.0, 4.0], 2, 2, &device),
            Some(tensor1(vec![0.5, -0.5], &device)),
        );
        let x = tensor2::<Flex>(vec![1.0, 1.0], 1, 2, &device);
        let y = linear.forward(x).into_data().to_vec::<f32>().unwrap();
        assert_eq!(y, vec![4.5, 5.5]);

        let norm = RmsNorm::<Flex> {
            gamma: tensor1(vec![1.0, 2.0], &device),
            eps: 0.0,
        };
        let x = tensor2::<Flex>(vec![3.0, 4.0], 1, 2, &device);
        let y = norm.forward(x).into_data().to_vec::<f32>().unwrap();
        let rms = (12.5f32).sqrt();
        assert!((y[0] - 3.0 / rms).abs() < 1e-6 && (y[1] - 8.0 / rms).abs() < 1e-6);
    }
}
