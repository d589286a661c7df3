//! One decoder layer of the CPU engine over a chunk of rows: norms, the fused QKV
//! product, q/k norms, RoPE and the KV cache, attention, the output projection, and the
//! MLP with the gate's activation fused into the gate/up product (see [`super::model`]
//! for the order). Gemma 2/3's extra norms on each branch's output sit between the
//! branch and the residual stream.
//! Row operations run split over the pool by rows, products by output tiles, attention
//! by query heads.

use super::attention::{attend, KvCache};
use super::isa::Isa;
use super::kernels::{Epilogue, F32Rows, OutRows, QuantizedBuffers, RowSink, SharedQuantizedRows};
use super::linear::{Input, Linear, Weight};
use super::ops::{
    gate_mul, gate_mul_quantize_block, quantize_row, rms_norm, rms_norm_add, rms_norm_quantized,
    rope_in_place,
};
use super::pool::{share, Pool};
use crate::config::{Activation, ModelConfig};
use crate::quant::packed::TILE;
use crate::quant::scale_rows;

pub(super) struct Layer {
    /// Norm weights here are the multipliers: Gemma's `1 + w` is added up at load.
    pub(super) input_norm: Vec<f32>,
    pub(super) qkv: Linear,
    /// Per-head norms of queries and keys, `[head_dim]` (Qwen3, Gemma 3).
    pub(super) q_norm: Option<Vec<f32>>,
    pub(super) k_norm: Option<Vec<f32>>,
    pub(super) out: Linear,
    /// Norm of the attention output before the residual add (Gemma 2/3).
    pub(super) attention_out_norm: Option<Vec<f32>>,
    /// The MLP's input norm (`post_attention_layernorm`, or Gemma's
    /// `pre_feedforward_layernorm`).
    pub(super) mlp_norm: Vec<f32>,
    /// Gate and up columns interleaved a tile at a time (see [`gate_up_columns`]).
    pub(super) gate_up: Linear,
    pub(super) down: Linear,
    /// Norm of the MLP output before the residual add (Gemma 2/3).
    pub(super) mlp_out_norm: Option<Vec<f32>>,
    /// The attention window, for a sliding layer.
    pub(super) window: Option<usize>,
    /// Index of the layer's RoPE tables in [`Run::ropes`]; `None` for NoPE.
    pub(super) rope: Option<usize>,
}

/// cos and sin of every position's angles, `[capacity, rotary_dim / 2]` each.
pub(super) struct RopeTables {
    pub(super) cos: Vec<f32>,
    pub(super) sin: Vec<f32>,
    /// `rotary_dim / 2`: the width of a row.
    pub(super) half: usize,
}

/// The column order of the fused gate/up layer on the CPU engine: for each block `j` of
/// 16 intermediate channels, their 16 gate columns, then their 16 up columns (padded
/// with zero columns when the size is not a multiple of 16). A thread that computes a
/// tile pair holds both halves of `silu(gate) · up` for those 16 channels and applies
/// the gate, and quantizes the result for the down projection, while it is in cache.
pub(super) fn gate_up_columns(intermediate: usize) -> Vec<Option<usize>> {
    let mut columns = Vec::with_capacity(2 * intermediate.div_ceil(TILE) * TILE);
    for start in (0..intermediate).step_by(TILE) {
        for half in [0, intermediate] {
            columns
                .extend((0..TILE).map(|l| (start + l < intermediate).then_some(half + start + l)));
        }
    }
    columns
}

/// Receives `(row, block, gate, up)`: 16 channels of one row of the gate/up product.
type GateBlock<'a> = &'a mut dyn FnMut(usize, usize, &[f32], &[f32]);

/// Tile pairs of the gate/up product per kernel call: the gate's epilogue reads them
/// back from cache.
const GATE_PAIRS_PER_CALL: usize = 4;

/// Buffers of one chunk, allocated at load so a forward allocates nothing but the
/// logits it returns.
pub(super) struct Scratch {
    /// Residual stream, `[CHUNK, hidden]`.
    pub(super) x: Vec<f32>,
    /// f32 input of the next linear layer, `[CHUNK, in_features]` (f32 models).
    pub(super) input: Vec<f32>,
    /// Quantized input of the next linear layer (int8 models).
    pub(super) quantized: QuantizedBuffers,
    pub(super) qkv: Vec<f32>,
    pub(super) attention: Vec<f32>,
    /// Gate/up output, `[CHUNK, 2 · intermediate]` (interleaved by tiles, padded).
    pub(super) gate_up: Vec<f32>,
    /// `silu(gate) · up`, the down projection's input: f32 `[CHUNK, intermediate]`, or
    /// quantized.
    pub(super) gated: Vec<f32>,
    pub(super) gated_quantized: QuantizedBuffers,
    /// Attention scores, one `[capacity]` row per pool thread.
    pub(super) scores: Vec<f32>,
    /// A branch's output before its norm joins the residual stream, `[CHUNK, hidden]`
    /// (models with sandwich norms).
    pub(super) branch: Vec<f32>,
    /// One head, for the q/k norms.
    pub(super) head: Vec<f32>,
}

/// The shapes a forward needs, copied out of the config.
#[derive(Clone, Copy)]
pub(super) struct Dims {
    pub(super) hidden: usize,
    pub(super) heads: usize,
    pub(super) kv_heads: usize,
    pub(super) head_dim: usize,
    pub(super) intermediate: usize,
    pub(super) eps: f32,
    pub(super) activation: Activation,
    /// The factor of attention scores.
    pub(super) attention_scale: f32,
    pub(super) attention_cap: Option<f32>,
}

impl Dims {
    pub(super) fn of(c: &ModelConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
            intermediate: c.intermediate_size,
            eps: c.rms_norm_eps as f32,
            activation: c.activation,
            attention_scale: c.attention_scale() as f32,
            attention_cap: c.attn_logit_softcapping.map(|c| c as f32),
        }
    }
}

/// What every layer of one forward shares.
pub(super) struct Run<'a> {
    pub(super) isa: Isa,
    pub(super) pool: &'a Pool,
    pub(super) dims: Dims,
    pub(super) ropes: &'a [RopeTables],
}

impl Run<'_> {
    /// Decoder layer `l` over the chunk's `n` rows at positions `start..start + n`.
    pub(super) fn layer(
        &self,
        l: usize,
        layer: &Layer,
        s: &mut Scratch,
        cache: &mut KvCache,
        n: usize,
        start: usize,
    ) {
        let (isa, pool, dims) = (self.isa, self.pool, self.dims);
        let (d, hd) = (dims.hidden, dims.head_dim);
        let (q_dim, kv_dim) = (dims.heads * hd, dims.kv_heads * hd);

        // Attention block.
        let buffers = InputBuffers {
            f32: &mut s.input,
            quantized: &mut s.quantized,
        };
        let input = prepare_normed(
            isa,
            pool,
            &layer.qkv,
            &s.x[..n * d],
            &layer.input_norm,
            dims.eps,
            n,
            buffers,
        );
        let qkv_out = layer.qkv.out_features();
        layer
            .qkv
            .forward(pool, isa, input, &mut s.qkv, qkv_out, false);
        let rope = layer.rope.map(|i| &self.ropes[i]);
        for r in 0..n {
            let pos = start + r;
            let row = &mut s.qkv[r * qkv_out..(r + 1) * qkv_out];
            let (q, kv) = row.split_at_mut(q_dim);
            let (k, v) = kv.split_at_mut(kv_dim);
            for (x, norm) in [(&mut *q, &layer.q_norm), (&mut *k, &layer.k_norm)] {
                if let Some(gamma) = norm {
                    for head in x.chunks_exact_mut(hd) {
                        rms_norm(isa, head, gamma, dims.eps, &mut s.head);
                        head.copy_from_slice(&s.head);
                    }
                }
            }
            if let Some(rope) = rope {
                let half = rope.half;
                let (cos, sin) = (
                    &rope.cos[pos * half..][..half],
                    &rope.sin[pos * half..][..half],
                );
                rope_in_place(q, hd, cos, sin);
                rope_in_place(k, hd, cos, sin);
            }
            cache.write(l, pos, k, &v[..kv_dim]);
        }
        self.attention(l, layer.window, cache, s, qkv_out, n, start);
        let input = match layer.out.weight {
            Weight::F32(_) => Input::F32(F32Rows {
                x: &s.attention,
                rows: n,
                stride: q_dim,
            }),
            Weight::Int8(_) => quantize_rows(isa, pool, &s.attention, q_dim, n, &mut s.quantized),
        };
        match &layer.attention_out_norm {
            None => layer.out.forward(pool, isa, input, &mut s.x, d, true),
            Some(gamma) => {
                layer.out.forward(pool, isa, input, &mut s.branch, d, false);
                add_normed(isa, pool, &s.branch, gamma, dims.eps, n, d, &mut s.x);
            }
        }

        // MLP block.
        let buffers = InputBuffers {
            f32: &mut s.input,
            quantized: &mut s.quantized,
        };
        let input = prepare_normed(
            isa,
            pool,
            &layer.gate_up,
            &s.x[..n * d],
            &layer.mlp_norm,
            dims.eps,
            n,
            buffers,
        );
        let input = self.gated_mlp(
            layer,
            input,
            n,
            &mut s.gate_up,
            &mut s.gated,
            &mut s.gated_quantized,
        );
        match &layer.mlp_out_norm {
            None => layer.down.forward(pool, isa, input, &mut s.x, d, true),
            Some(gamma) => {
                layer
                    .down
                    .forward(pool, isa, input, &mut s.branch, d, false);
                add_normed(isa, pool, &s.branch, gamma, dims.eps, n, d, &mut s.x);
            }
        }
    }

    /// The gate/up product and the SiLU gate, fused: each thread computes its tile pairs
    /// (a gate tile and its up tile, see [`gate_up_columns`]) and turns them into the
    /// down projection's input (quantized for int8) while they are in cache.
    fn gated_mlp<'s>(
        &self,
        layer: &Layer,
        input: Input<'_>,
        n: usize,
        gate_up: &mut [f32],
        gated: &'s mut [f32],
        gated_quantized: &'s mut QuantizedBuffers,
    ) -> Input<'s> {
        let (isa, pool) = (self.isa, self.pool);
        let inter = self.dims.intermediate;
        let activation = self.dims.activation;
        let width = layer.gate_up.out_features();
        let pairs = width / (2 * TILE);
        let target = OutRows::new(gate_up, n, width, width);
        let epilogue = Epilogue::default();
        let parts = pool.threads();
        // The pairs of a call, and for each row and pair the gate and up values.
        let each_pair = |part: usize, mut gate: GateBlock<'_>| {
            let mine = share(pairs, part, parts);
            for start in mine.clone().step_by(GATE_PAIRS_PER_CALL) {
                let end = (start + GATE_PAIRS_PER_CALL).min(mine.end);
                layer
                    .gate_up
                    .matmul(isa, &input, 2 * start..2 * end, &target, &epilogue);
                for r in 0..n {
                    for j in start..end {
                        // SAFETY: this thread's own columns, just written.
                        let row = unsafe { target.read(r, 2 * TILE * j..2 * TILE * (j + 1)) };
                        let w = TILE.min(inter - TILE * j);
                        gate(r, j, &row[..w], &row[TILE..TILE + w]);
                    }
                }
            }
            let _ = &mut gate;
        };
        match layer.down.weight {
            Weight::F32(_) => {
                let out = SharedRows::new(&mut gated[..n * inter]);
                pool.run(&|part| {
                    each_pair(part, &mut |r, j, g, u| {
                        // SAFETY: block j of row r belongs to this thread's pairs.
                        let o = unsafe { out.slice(r * inter + TILE * j, g.len()) };
                        gate_mul(isa, activation, g, u, o);
                    })
                });
                Input::F32(F32Rows {
                    x: gated,
                    rows: n,
                    stride: inter,
                })
            }
            Weight::Int8(_) => {
                let sink = SharedQuantizedRows::new(gated_quantized.rows(n, inter));
                pool.run(&|part| {
                    each_pair(part, &mut |r, j, g, u| {
                        // SAFETY: block j of row r belongs to this thread's pairs.
                        let mut row = unsafe { sink.row(r) };
                        gate_mul_quantize_block(isa, activation, g, u, row.block(j));
                    })
                });
                Input::Int8(sink.into_rows())
            }
        }
    }

    /// Attention of the chunk's rows over the cache of layer `l` (the last `window`
    /// positions of each, for a sliding layer), split by query head.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        l: usize,
        window: Option<usize>,
        cache: &KvCache,
        s: &mut Scratch,
        qkv_out: usize,
        n: usize,
        start: usize,
    ) {
        let dims = self.dims;
        let (heads, hd) = (dims.heads, dims.head_dim);
        let group = heads / dims.kv_heads;
        let q_dim = heads * hd;
        let (scale, cap) = (dims.attention_scale, dims.attention_cap);
        let isa = self.isa;
        let capacity = cache.capacity();
        let qkv = &s.qkv;
        let out = SharedRows::new(&mut s.attention);
        let scores = SharedRows::new(&mut s.scores);
        let parts = self.pool.threads();
        self.pool.run(&|part| {
            // SAFETY: each part has its own scores row.
            let scores = unsafe { scores.slice(part * capacity, capacity) };
            for h in share(heads, part, parts) {
                for r in 0..n {
                    let pos = start + r;
                    let first = window.map_or(0, |w| (pos + 1).saturating_sub(w));
                    let (keys, values) = cache.head(l, h / group, first, pos + 1);
                    let q = &qkv[r * qkv_out + h * hd..][..hd];
                    // SAFETY: (row, head) pairs are disjoint across parts.
                    let o = unsafe { out.slice(r * q_dim + h * hd, hd) };
                    attend(isa, q, keys, values, 0, scale, cap, scores, o);
                }
            }
        });
    }
}

/// Quantizes `rows` rows of `x` (`k` wide) for an int8 layer, split over the pool.
fn quantize_rows<'a>(
    isa: Isa,
    pool: &Pool,
    x: &[f32],
    k: usize,
    rows: usize,
    buffers: &'a mut QuantizedBuffers,
) -> Input<'a> {
    quantize_split(pool, rows, k, buffers, &|r, out, blocks| {
        quantize_row(isa, &x[r * k..(r + 1) * k], out, blocks)
    })
}

/// Runs a row quantizer `quantize(row, sink, blocks)` over `rows` rows of `k` inputs
/// into `buffers`, each part of the pool writing its own blocks of every row (see
/// [`each_row_blocks`]), and returns the quantized rows as a layer's input.
fn quantize_split<'a>(
    pool: &Pool,
    rows: usize,
    k: usize,
    buffers: &'a mut QuantizedBuffers,
    quantize: &(dyn Fn(usize, RowSink<'_>, std::ops::Range<usize>) + Sync),
) -> Input<'a> {
    let out = SharedQuantizedRows::new(buffers.rows(rows, k));
    each_row_blocks(pool, rows, scale_rows(k), &|r, blocks| {
        // SAFETY: each (row, block) is quantized by one part.
        quantize(r, unsafe { out.row(r) }, blocks)
    });
    Input::Int8(out.into_rows())
}

/// `x += rms_norm(branch)` for each of `rows` rows of width `d`: a sandwich norm's
/// branch joining the residual stream, the rows split over the pool.
#[allow(clippy::too_many_arguments)]
fn add_normed(
    isa: Isa,
    pool: &Pool,
    branch: &[f32],
    gamma: &[f32],
    eps: f32,
    rows: usize,
    d: usize,
    x: &mut [f32],
) {
    let out = SharedRows::new(&mut x[..rows * d]);
    each_row(pool, rows, &|r| {
        // SAFETY: each row is updated by one part.
        let x = unsafe { out.slice(r * d, d) };
        rms_norm_add(isa, &branch[r * d..(r + 1) * d], gamma, eps, x);
    });
}

/// Calls `f(row, blocks)` for every row of `rows`, each part of the pool taking its own
/// range of the `blocks` blocks of 16 inputs for all rows: the quantized activations are
/// block-major, so each thread writes one contiguous stretch of the buffers. Split by
/// rows instead, both threads wrote into the same cache lines (a block's scales of all
/// rows share one), which bounced between the cores and stalled their stores. One row
/// (a decode step) runs on the calling thread alone.
fn each_row_blocks(
    pool: &Pool,
    rows: usize,
    blocks: usize,
    f: &(dyn Fn(usize, std::ops::Range<usize>) + Sync),
) {
    if rows == 1 {
        return f(0, 0..blocks);
    }
    let parts = pool.threads();
    pool.run(&|part| {
        let mine = share(blocks, part, parts);
        (0..rows).for_each(|r| f(r, mine.clone()));
    });
}

/// Runs `f(row)` for every row, split over the pool when there are several (a row alone
/// is too little work to share).
fn each_row(pool: &Pool, rows: usize, f: &(dyn Fn(usize) + Sync)) {
    if rows == 1 {
        return f(0);
    }
    let parts = pool.threads();
    pool.run(&|part| share(rows, part, parts).for_each(f));
}

/// Mutable rows several pool parts write, each its own disjoint ranges.
pub(super) struct SharedRows {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: parts only take disjoint ranges (the callers' split guarantees it).
unsafe impl Sync for SharedRows {}

impl SharedRows {
    pub(super) fn new(values: &mut [f32]) -> Self {
        Self {
            ptr: values.as_mut_ptr(),
            len: values.len(),
        }
    }

    /// # Safety
    /// No other live slice overlaps `offset..offset + len`.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn slice(&self, offset: usize, len: usize) -> &mut [f32] {
        assert!(offset + len <= self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(offset), len)
    }
}

/// The buffers a linear layer's input is prepared in.
pub(super) struct InputBuffers<'a> {
    pub(super) f32: &'a mut [f32],
    pub(super) quantized: &'a mut QuantizedBuffers,
}

/// RMSNorm of `rows` rows of `x` as the input of `linear`: f32, or quantized on the fly
/// for int8 weights; the rows split over the pool.
#[allow(clippy::too_many_arguments)]
pub(super) fn prepare_normed<'a>(
    isa: Isa,
    pool: &Pool,
    linear: &Linear,
    x: &[f32],
    gamma: &[f32],
    eps: f32,
    rows: usize,
    buffers: InputBuffers<'a>,
) -> Input<'a> {
    let k = linear.in_features();
    match linear.weight {
        Weight::F32(_) => {
            let out = SharedRows::new(&mut buffers.f32[..rows * k]);
            each_row(pool, rows, &|r| {
                // SAFETY: each row is normalized by one part.
                let o = unsafe { out.slice(r * k, k) };
                rms_norm(isa, &x[r * k..(r + 1) * k], gamma, eps, o);
            });
            Input::F32(F32Rows {
                x: buffers.f32,
                rows,
                stride: k,
            })
        }
        Weight::Int8(_) => quantize_split(pool, rows, k, buffers.quantized, &|r, out, blocks| {
            rms_norm_quantized(isa, &x[r * k..(r + 1) * k], gamma, eps, out, blocks)
        }),
    }
}
