//! The backends Tandem runs on, and the one operation that must differ between them.
//!
//! Appending rows to the KV cache has to cost O(new rows), whatever the context length.
//! burn's `slice_assign` on flex 0.21 first clones the destination (it calls
//! `to_contiguous()` while still holding the original, so the buffer's `Arc` is never
//! unique and `make_mut` copies it): 1.2 ms per token at an 8k context. On flex we
//! therefore write the rows straight into the uniquely owned buffer; on CUDA
//! `slice_assign` is an in-place kernel already.
//!
//! Int8 linear layers differ too: each backend keeps its own int8 weight storage and
//! multiplies by it without materialising the f32 matrix (flex: the AVX2 kernel of
//! [`kernels`](crate::backends::flex_kernels); CUDA: the `cuda_int8` module).

#[cfg(feature = "cuda")]
pub mod cuda_int8;
pub mod flex_kernels;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};

use crate::quant::QuantizedMatrix;

/// A burn backend Tandem can run a model on.
pub trait TandemBackend: Backend {
    /// Writes `rows` (`[n, heads, head_dim]`) into `buffer` (`[capacity, heads, head_dim]`)
    /// at rows `start..start + n`, in place where the backend allows it.
    ///
    /// # Shapes
    /// - buffer: `[capacity, heads, head_dim]`
    /// - rows: `[n, heads, head_dim]`, `start + n <= capacity`
    fn write_rows(buffer: Tensor<Self, 3>, start: usize, rows: Tensor<Self, 3>) -> Tensor<Self, 3>;

    /// `x · weight` for a `[in, out]` weight matrix. Backends override this where their
    /// general matmul is slow for the few-row products of decoding.
    ///
    /// # Shapes
    /// - x: `[n, in]`, weight: `[in, out]` → `[n, out]`
    fn project(x: Tensor<Self, 2>, weight: &Tensor<Self, 2>) -> Tensor<Self, 2> {
        x.matmul(weight.clone())
    }

    /// How this backend holds one int8 weight matrix (`[in, out]` i8 values and one f32
    /// scale per output column; see [`QuantizedMatrix`]).
    type Int8Weight: Send + Sync + 'static;

    /// Moves a host int8 matrix to where [`project_int8`](Self::project_int8) reads it.
    fn int8_weight(matrix: QuantizedMatrix, device: &Self::Device) -> Self::Int8Weight;

    /// `x · (q · diag(scale))` without ever holding the f32 weight: the point of int8
    /// is to stream a quarter of the bytes, so backends dequantize as they read.
    ///
    /// # Shapes
    /// - x: `[n, in]`, weight: `[in, out]` → `[n, out]`
    fn project_int8(x: Tensor<Self, 2>, weight: &Self::Int8Weight) -> Tensor<Self, 2>;

    /// A short name for logs ("flex", "cuda").
    fn backend_name() -> &'static str;
}

/// The f32 values of a flex tensor, contiguous (copied only if it is a strided view).
pub(crate) fn flex_values(t: Tensor<Flex, 2>) -> (Vec<usize>, burn::backend::flex::FlexTensor) {
    let shape = t.dims().to_vec();
    (shape, t.into_primitive().tensor().to_contiguous())
}

pub type Flex = burn::backend::Flex;

impl TandemBackend for Flex {
    fn write_rows(buffer: Tensor<Self, 3>, start: usize, rows: Tensor<Self, 3>) -> Tensor<Self, 3> {
        let [capacity, heads, dim] = buffer.dims();
        let n = rows.dims()[0];
        assert!(start + n <= capacity, "KV write past capacity");
        let row_len = heads * dim;
        let mut dst = buffer.into_primitive().tensor();
        let src = rows.into_primitive().tensor().to_contiguous();
        let src_values: &[f32] = src.storage::<f32>();
        let src_values = &src_values[src.layout().start_offset()..][..n * row_len];
        let region = start * row_len..(start + n) * row_len;
        match dst.try_storage_mut::<f32>() {
            Some(values) => values[region].copy_from_slice(src_values),
            // Someone still holds a view of the cache: copy-on-write keeps them correct.
            None => dst.storage_mut::<f32>()[region].copy_from_slice(src_values),
        }
        Tensor::from_primitive(TensorPrimitive::Float(dst))
    }

    fn project(x: Tensor<Self, 2>, weight: &Tensor<Self, 2>) -> Tensor<Self, 2> {
        let [n, k] = x.dims();
        if n > crate::backends::flex_kernels::SKINNY_MAX_ROWS {
            return x.matmul(weight.clone());
        }
        let m = weight.dims()[1];
        let device = x.device();
        let (_, x) = flex_values(x);
        let (_, w) = flex_values(weight.clone());
        let y = crate::backends::flex_kernels::matmul_f32(
            &x.storage::<f32>()[..n * k],
            n,
            k,
            &w.storage::<f32>()[..k * m],
            m,
        );
        Tensor::from_data(burn::tensor::TensorData::new(y, [n, m]), &device)
    }

    /// The i8 values and scales stay in host memory as they are: no burn tensor, so no
    /// dtype conversion and nothing dequantized ahead of time.
    type Int8Weight = QuantizedMatrix;

    fn int8_weight(matrix: QuantizedMatrix, _device: &Self::Device) -> QuantizedMatrix {
        matrix
    }

    fn project_int8(x: Tensor<Self, 2>, weight: &QuantizedMatrix) -> Tensor<Self, 2> {
        let [n, k] = x.dims();
        assert_eq!(k, weight.in_features, "int8 projection: input width");
        let m = weight.out_features;
        let device = x.device();
        if n > crate::backends::flex_kernels::SKINNY_MAX_ROWS {
            return flex_int8_prefill(x, weight, PREFILL_PANEL_ELEMENTS);
        }
        let (_, x) = flex_values(x);
        // Decode and verify rows: stream the i8 weights once for all rows, widening in
        // registers (burn's own quantized matmul would dequantize the whole matrix).
        let y = crate::backends::flex_kernels::matmul_i8(
            &x.storage::<f32>()[..n * k],
            n,
            k,
            &weight.values,
            &weight.scales,
            m,
        );
        Tensor::from_data(burn::tensor::TensorData::new(y, [n, m]), &device)
    }

    fn backend_name() -> &'static str {
        "flex"
    }
}

/// Most weights dequantized at once by [`flex_int8_prefill`]: 32 MB of f32.
const PREFILL_PANEL_ELEMENTS: usize = 8 << 20;

/// `x · W` for many rows (a prefill): the weight is dequantized in column panels of at
/// most `panel_elements` weights and multiplied by burn's gemm. Enough rows make the
/// product compute-bound, and the gemm's register blocking beats widening i8 in the
/// inner loop; one pass over the weights to dequantize costs a few percent of it. The
/// panels bound the transient f32 memory (a 150k-token LM head is 17 panels).
///
/// # Shapes
/// - x: `[n, in]` → `[n, out]`
fn flex_int8_prefill(
    x: Tensor<Flex, 2>,
    weight: &QuantizedMatrix,
    panel_elements: usize,
) -> Tensor<Flex, 2> {
    let (k, m) = (weight.in_features, weight.out_features);
    let device = x.device();
    let panel = (panel_elements / k.max(1)).clamp(1, m.max(1));
    let outputs: Vec<Tensor<Flex, 2>> = (0..m)
        .step_by(panel)
        .map(|c0| {
            let cols = c0..(c0 + panel).min(m);
            let width = cols.len();
            let w = weight.dequantize_columns(cols);
            let w = Tensor::from_data(burn::tensor::TensorData::new(w, [k, width]), &device);
            x.clone().matmul(w)
        })
        .collect();
    match outputs.len() {
        0 => Tensor::zeros([x.dims()[0], 0], &device),
        1 => outputs.into_iter().next().expect("one panel"),
        _ => Tensor::cat(outputs, 1),
    }
}

#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;

/// burn's CUDA backend without its fusion layer: each tensor operation is a kernel of
/// its own. Slower; it is there to check the fused backend against, as burn 0.21's
/// fusion has picked a wrong kernel for some layouts (burn#5264, #5122).
#[cfg(feature = "cuda")]
pub type CudaUnfused = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;

/// The same [`TandemBackend`] for the fused and the unfused CUDA backend: KV rows by
/// `slice_assign` (an in-place kernel there), int8 weights as [`cuda_int8`] holds them.
#[cfg(feature = "cuda")]
macro_rules! cuda_tandem_backend {
    ($backend:ty, $name:literal) => {
        impl TandemBackend for $backend {
            fn write_rows(
                buffer: Tensor<Self, 3>,
                start: usize,
                rows: Tensor<Self, 3>,
            ) -> Tensor<Self, 3> {
                let n = rows.dims()[0];
                buffer.slice_assign([start..start + n], rows)
            }

            type Int8Weight = cuda_int8::CudaInt8Weight<$backend>;

            fn int8_weight(matrix: QuantizedMatrix, device: &Self::Device) -> Self::Int8Weight {
                cuda_int8::CudaInt8Weight::upload(matrix, device)
            }

            fn project_int8(x: Tensor<Self, 2>, weight: &Self::Int8Weight) -> Tensor<Self, 2> {
                weight.project(x)
            }

            fn backend_name() -> &'static str {
                $name
            }
        }
    };
}

#[cfg(feature = "cuda")]
cuda_tandem_backend!(Cuda, "cuda");
#[cfg(feature = "cuda")]
cuda_tandem_backend!(CudaUnfused, "cuda-unfused");

/// Address of a flex tensor's storage, for tests that the KV buffer is never copied.
#[cfg(test)]
pub(crate) fn flex_storage_ptr(t: &Tensor<Flex, 3>) -> usize {
    t.clone()
        .into_primitive()
        .tensor()
        .storage::<f32>()
        .as_ptr() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn flex_write_rows_is_in_place_and_correct() {
        let device = Default::default();
        let buffer = Tensor::<Flex, 3>::zeros([6, 2, 2], &device);
        let before = flex_storage_ptr(&buffer);
        let rows = Tensor::<Flex, 3>::from_data(
            TensorData::new((1..=8).map(|v| v as f32).collect::<Vec<_>>(), [2, 2, 2]),
            &device,
        );
        let buffer = Flex::write_rows(buffer, 3, rows);
        assert_eq!(flex_storage_ptr(&buffer), before, "buffer was copied");
        let values = buffer.into_data().to_vec::<f32>().unwrap();
        assert_eq!(&values[..12], &[0.0; 12]);
        assert_eq!(&values[12..20], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(&values[20..], &[0.0; 4]);
    }

    #[test]
    fn flex_int8_prefill_panels_match_the_dequantized_matmul() {
        let device = Default::default();
        let (n, k, m) = (5, 40, 300);
        let w: Vec<f32> = (0..k * m)
            .map(|i| ((i * 29 % 101) as f32 - 50.0) / 40.0)
            .collect();
        let q = QuantizedMatrix::quantize(&w, k, m);
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let x = Tensor::<Flex, 2>::from_data(TensorData::new(x, [n, k]), &device);
        let dequantized = Tensor::from_data(TensorData::new(q.dequantize(), [k, m]), &device);
        let want = x.clone().matmul(dequantized);
        // 64-column panels: five of them, the last one partial.
        let got = flex_int8_prefill(x, &q, 64 * k);
        assert_eq!(got.dims(), [n, m]);
        let diff = (got - want).abs().max().into_scalar();
        assert!(diff < 1e-4, "{diff}");
    }

    #[test]
    fn flex_write_rows_keeps_outstanding_views_intact() {
        let device = Default::default();
        let buffer = Tensor::<Flex, 3>::zeros([4, 1, 1], &device);
        let view = buffer.clone();
        let rows = Tensor::<Flex, 3>::ones([1, 1, 1], &device);
        let buffer = Flex::write_rows(buffer, 0, rows);
        assert_eq!(view.into_data().to_vec::<f32>().unwrap(), vec![0.0; 4]);
        assert_eq!(
            buffer.into_data().to_vec::<f32>().unwrap(),
            vec![1.0, 0.0, 0.0, 0.0]
        );
    }
}
