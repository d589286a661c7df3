//! The building blocks of the decoder: a linear layer with `[in, out]` weights and RMSNorm.

use burn::tensor::backend::Backend;

use crate::backend::TandemBackend;
use burn::tensor::{Tensor, TensorData};

/// `y = x W + b` with `W` stored `[in, out]`, contiguous.
///
/// Weights are kept `[in, out]` rather than burn's `nn::Linear` layout: a plain row-major
/// matmul is fastest on flex, and on CUDA a transposed weight view can select a wrong
/// fused kernel (burn#5264). Inputs are always 2-D (`[tokens, in]`): a 3-D input to a
/// linear layer is 25× slower on flex 0.21.
pub struct Linear<B: TandemBackend> {
    pub weight: Tensor<B, 2>,
    pub bias: Option<Tensor<B, 1>>,
}

impl<B: TandemBackend> Linear<B> {
    /// # Shapes
    /// - x: `[n, in]` → `[n, out]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = B::project(x, &self.weight);
        match &self.bias {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        }
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn out_features(&self) -> usize {
        self.weight.dims()[1]
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
    use crate::backend::Flex;

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
        let linear = Linear::<Flex> {
            weight: tensor2(vec![1.0, 2.0, 3.0, 4.0], 2, 2, &device),
            bias: Some(tensor1(vec![0.5, -0.5], &device)),
        };
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
