//! Int8 linear layers on CUDA: i8 weights on the device, dequantized on read.
//!
//! The weight lives on the GPU as a burn Int tensor of dtype I8 (one byte per weight)
//! plus f32 scales, one per output column per block of 16 input rows. For the few-row
//! products of decoding and verification a cubecl kernel reads each i8 weight, widens
//! it in a register and accumulates `x · q` block by block, applying each block's scale
//! once: the f32 matrix is never written anywhere. burn's `Cuda` backend is wrapped in
//! `Fusion`, so there the kernel is registered in the fusion stream as a custom
//! operation (as burn-vision does for its kernels) and runs on the underlying
//! `CubeBackend` tensors; on the unfused backend it is launched directly.
//!
//! Prefill (more than [`SKINNY_MAX_ROWS`] rows) takes the simple path instead: the weight
//! is dequantized into a temporary f32 matrix and multiplied with burn's tensor-core
//! matmul. That costs one extra pass over the weights per prefill, which a long prompt
//! amortises; the one-thread-per-output kernel would not use the tensor cores at all.
//!
//! This module is compile-checked only: the machines it was written on have no GPU.

use burn::tensor::backend::Backend;
use burn::tensor::{
    DType, Device, Int, Shape, Tensor, TensorCreationOptions, TensorData, TensorPrimitive,
};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::FusionBackend;
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};
use cubecl::cuda::CudaRuntime;
use cubecl::prelude::*;

use crate::backends::flex_kernels::SKINNY_MAX_ROWS;
use crate::backends::Cuda;
use crate::quant::{scale_rows, QuantizedMatrix, BLOCK_ROWS};

/// The backend under burn's `Cuda` fusion wrapper.
type CubeCuda = crate::backends::CudaUnfused;
type FusionRuntime = <CubeCuda as FusionBackend>::FusionRuntime;

/// Output columns per cube: one thread per output element.
const COLUMNS_PER_CUBE: u32 = 256;

/// An int8 weight matrix on the GPU, for burn's fused `Cuda` backend or the unfused
/// `CubeBackend` under it (see [`CudaUnfused`](crate::backends::CudaUnfused)).
///
/// # Shapes
/// - values: `[in, out]` (dtype I8), scales: `[scale_rows(in), out]`
pub struct CudaInt8Weight<B: Backend> {
    values: Tensor<B, 2, Int>,
    scales: Tensor<B, 2>,
}

impl<B: Backend> CudaInt8Weight<B> {
    pub fn upload(matrix: QuantizedMatrix, device: &Device<B>) -> Self {
        let (k, m) = (matrix.in_features, matrix.out_features);
        let values = Tensor::<B, 2, Int>::from_data(
            TensorData::new(matrix.values, [k, m]),
            TensorCreationOptions::new(device.clone()).with_dtype(DType::I8),
        );
        let scales =
            Tensor::<B, 2>::from_data(TensorData::new(matrix.scales, [scale_rows(k), m]), device);
        Self { values, scales }
    }

    /// The prefill path (more than [`SKINNY_MAX_ROWS`] rows): dequantize to a temporary
    /// f32 matrix, then burn's matmul.
    ///
    /// # Shapes
    /// - x: `[n, in]` → `[n, out]`
    fn project_dequantized(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let k = x.dims()[1];
        let [blocks, m] = self.scales.dims();
        let scales = self
            .scales
            .clone()
            .unsqueeze_dim::<3>(1)
            .expand([blocks, BLOCK_ROWS, m])
            .reshape([blocks * BLOCK_ROWS, m])
            .slice([0..k]);
        x.matmul(self.values.clone().float() * scales)
    }
}

impl CudaInt8Weight<Cuda> {
    /// `x · (q · diag(scale))`, the kernel registered in the fusion stream.
    ///
    /// # Shapes
    /// - x: `[n, in]` → `[n, out]`
    pub fn project(&self, x: Tensor<Cuda, 2>) -> Tensor<Cuda, 2> {
        let n = x.dims()[0];
        if n > SKINNY_MAX_ROWS {
            return self.project_dequantized(x);
        }
        let m = self.values.dims()[1];
        let x = x.into_primitive().tensor();
        let values = self.values.clone().into_primitive();
        let scales = self.scales.clone().into_primitive().tensor();
        let client = x.client.clone();
        let streams = OperationStreams::with_inputs([&x, &values, &scales]);
        let out = TensorIr::uninit(client.create_empty_handle(), Shape::new([n, m]), DType::F32);
        let desc = CustomOpIr::new(
            "tandem_int8_matmul",
            &[x.into_ir(), values.into_ir(), scales.into_ir()],
            &[out],
        );
        let y = client
            .register(
                streams,
                OperationIr::Custom(desc.clone()),
                Int8MatmulOp { desc },
            )
            .output();
        Tensor::from_primitive(TensorPrimitive::Float(y))
    }
}

impl CudaInt8Weight<CubeCuda> {
    /// `x · (q · diag(scale))`, the kernel launched straight away (no fusion stream).
    ///
    /// # Shapes
    /// - x: `[n, in]` → `[n, out]`
    pub fn project(&self, x: Tensor<CubeCuda, 2>) -> Tensor<CubeCuda, 2> {
        if x.dims()[0] > SKINNY_MAX_ROWS {
            return self.project_dequantized(x);
        }
        let y = launch_int8_matmul(
            x.into_primitive().tensor(),
            self.values.clone().into_primitive(),
            self.scales.clone().into_primitive().tensor(),
        );
        Tensor::from_primitive(TensorPrimitive::Float(y))
    }
}

/// The fusion-stream operation: resolves the inputs to cube tensors and launches the
/// kernel.
#[derive(Debug)]
struct Int8MatmulOp {
    desc: CustomOpIr,
}

impl Operation<FusionRuntime> for Int8MatmulOp {
    fn execute(
        &self,
        handles: &mut HandleContainer<<FusionRuntime as burn_fusion::FusionRuntime>::FusionHandle>,
    ) {
        let ([x, values, scales], [out]) = self.desc.as_fixed();
        let x = handles.get_float_tensor::<CubeCuda>(x);
        let values = handles.get_int_tensor::<CubeCuda>(values);
        let scales = handles.get_float_tensor::<CubeCuda>(scales);
        let y = launch_int8_matmul(x, values, scales);
        handles.register_float_tensor::<CubeCuda>(&out.id, y);
    }
}

/// # Shapes
/// - x: `[n, k]` f32, values: `[k, m]` i8, scales: `[scale_rows(k), m]` f32 → `[n, m]` f32
fn launch_int8_matmul(
    x: CubeTensor<CudaRuntime>,
    values: CubeTensor<CudaRuntime>,
    scales: CubeTensor<CudaRuntime>,
) -> CubeTensor<CudaRuntime> {
    assert_eq!(x.dtype, DType::F32, "int8 matmul takes f32 activations");
    assert_eq!(values.dtype, DType::I8, "int8 matmul takes i8 weights");
    let x = into_contiguous(x);
    let values = into_contiguous(values);
    let scales = into_contiguous(scales);
    let (n, k) = (x.meta.shape()[0], x.meta.shape()[1]);
    let m = values.meta.shape()[1];
    let out = empty_device_dtype(
        x.client.clone(),
        x.device.clone(),
        Shape::new([n, m]),
        DType::F32,
    );
    let cube_count = CubeCount::Static((m as u32).div_ceil(COLUMNS_PER_CUBE), n as u32, 1);
    int8_matmul_kernel::launch(
        &out.client,
        cube_count,
        CubeDim::new_2d(COLUMNS_PER_CUBE, 1),
        x.into_array_arg(),
        values.into_array_arg(),
        scales.into_array_arg(),
        out.clone().into_array_arg(),
        n,
        k,
        m,
        BLOCK_ROWS,
    );
    out
}

/// One thread per output element `out[row, col]`: neighbouring threads read
/// neighbouring weight bytes of row `i` (coalesced), and all read the same `x[row, i]`.
// Kernel code may only use what cubecl translates: `%`, not `is_multiple_of`.
#[allow(clippy::manual_is_multiple_of)]
#[cube(launch)]
fn int8_matmul_kernel(
    x: &Array<f32>,
    values: &Array<i8>,
    scales: &Array<f32>,
    out: &mut Array<f32>,
    n: usize,
    k: usize,
    m: usize,
    #[comptime] block_rows: usize,
) {
    let col = ABSOLUTE_POS_X as usize;
    let row = ABSOLUTE_POS_Y as usize;
    if col >= m {
        terminate!();
    }
    if row >= n {
        terminate!();
    }
    let x_row = row * k;
    let mut acc = f32::new(0.0);
    let mut partial = f32::new(0.0);
    let mut block = 0usize;
    for i in 0..k {
        partial += x[x_row + i] * f32::cast_from(values[i * m + col]);
        if (i + 1) % block_rows == 0 {
            acc += partial * scales[block * m + col];
            partial = f32::new(0.0);
            block += 1;
        }
    }
    if k % block_rows != 0 {
        acc += partial * scales[block * m + col];
    }
    out[row * m + col] = acc;
}
