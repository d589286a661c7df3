//! The backends Tandem runs on, and the one operation that must differ between them.
//!
//! Appending rows to the KV cache has to cost O(new rows), whatever the context length.
//! burn's `slice_assign` on flex 0.21 first clones the destination (it calls
//! `to_contiguous()` while still holding the original, so the buffer's `Arc` is never
//! unique and `make_mut` copies it): 1.2 ms per token at an 8k context. On flex we
//! therefore write the rows straight into the uniquely owned buffer; on CUDA
//! `slice_assign` is an in-place kernel already.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};

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
        if n > crate::kernels::SKINNY_MAX_ROWS {
            return x.matmul(weight.clone());
        }
        let m = weight.dims()[1];
        let device = x.device();
        let (_, x) = flex_values(x);
        let (_, w) = flex_values(weight.clone());
        let y = crate::kernels::matmul_f32(
            &x.storage::<f32>()[..n * k],
            n,
            k,
            &w.storage::<f32>()[..k * m],
            m,
        );
        Tensor::from_data(burn::tensor::TensorData::new(y, [n, m]), &device)
    }

    fn backend_name() -> &'static str {
        "flex"
    }
}

#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;

#[cfg(feature = "cuda")]
impl TandemBackend for Cuda {
    fn write_rows(buffer: Tensor<Self, 3>, start: usize, rows: Tensor<Self, 3>) -> Tensor<Self, 3> {
        let n = rows.dims()[0];
        buffer.slice_assign([start..start + n], rows)
    }

    fn backend_name() -> &'static str {
        "cuda"
    }
}

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
