//! The CPU engine's KV cache and attention over it.
//!
//! The cache is one preallocated f32 buffer per layer for keys and one for values,
//! `[kv_heads, capacity, head_dim]`: a head's keys are contiguous across positions, so
//! attention streams them. New positions are written in place; rolling back is lowering
//! the length (the next write overwrites the stale rows), O(1) as speculative decoding
//! needs.
//!
//! Attention runs one query head and one query row at a time against its KV head
//! (grouped-query attention needs no copies: head `h` reads KV head `h / group`): the
//! scores of the visible positions, a softmax, and the weighted sum of values, each in
//! a fixed order. A row's result therefore never depends on the other rows of the pass.

use super::isa::multiversion;
use super::ops::{axpy, dot, exp};

/// Keys and values of every layer.
pub struct KvCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// A zeroed cache (the allocation is lazy: untouched pages cost no memory).
    pub fn new(layers: usize, capacity: usize, kv_heads: usize, head_dim: usize) -> Self {
        let elements = layers * kv_heads * capacity * head_dim;
        Self {
            keys: vec![0.0; elements],
            values: vec![0.0; elements],
            layers,
            kv_heads,
            head_dim,
            capacity,
            len: 0,
        }
    }

    /// Cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position from `len` on. O(1): nothing is erased.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn reset(&mut self) {
        self.len = 0;
    }

    /// Marks `n` more positions as filled, after every layer wrote them.
    pub fn advance(&mut self, n: usize) {
        debug_assert!(self.len + n <= self.capacity);
        self.len += n;
    }

    /// Bytes of the buffers.
    pub fn bytes(&self) -> usize {
        4 * (self.keys.len() + self.values.len())
    }

    fn head_offset(&self, layer: usize, kv_head: usize) -> usize {
        debug_assert!(layer < self.layers && kv_head < self.kv_heads);
        (layer * self.kv_heads + kv_head) * self.capacity * self.head_dim
    }

    /// Writes one position's keys and values (`[kv_heads · head_dim]` each) of `layer`.
    pub fn write(&mut self, layer: usize, position: usize, keys: &[f32], values: &[f32]) {
        assert!(position < self.capacity, "KV write past capacity");
        let d = self.head_dim;
        for h in 0..self.kv_heads {
            let at = self.head_offset(layer, h) + position * d;
            self.keys[at..at + d].copy_from_slice(&keys[h * d..(h + 1) * d]);
            self.values[at..at + d].copy_from_slice(&values[h * d..(h + 1) * d]);
        }
    }

    /// Keys and values of one KV head of `layer` at positions `0..end`,
    /// `[end, head_dim]` each.
    pub fn head(&self, layer: usize, kv_head: usize, end: usize) -> (&[f32], &[f32]) {
        assert!(end <= self.capacity);
        let at = self.head_offset(layer, kv_head);
        let n = end * self.head_dim;
        (&self.keys[at..at + n], &self.values[at..at + n])
    }
}

/// One query row of one head: `out = softmax(scale · q·kᵀ) · v` over the positions
/// `first..keys.len() / head_dim`.
#[inline(always)]
fn attend_body(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    first: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let d = q.len();
    let end = keys.len() / d;
    let scores = &mut scores[..end - first];
    let mut max = f32::NEG_INFINITY;
    for (s, k) in scores.iter_mut().zip(keys[first * d..].chunks_exact(d)) {
        *s = dot(q, k) * scale;
        max = max.max(*s);
    }
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = exp(*s - max);
        sum += *s;
    }
    out.fill(0.0);
    for (&p, v) in scores.iter().zip(values[first * d..].chunks_exact(d)) {
        axpy(p, v, out);
    }
    let inverse = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inverse;
    }
}

multiversion! {
    /// Attention of one query row of one head (see the module docs).
    ///
    /// # Shapes
    /// - q, out: `[head_dim]`; keys, values: `[end, head_dim]`; scores: `[≥ end − first]`
    pub fn attend(
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        first: usize,
        scale: f32,
        scores: &mut [f32],
        out: &mut [f32],
    ) => attend_body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::isa::Isa;
    use crate::test_models::pseudo_random_values as values;

    fn naive(q: &[f32], keys: &[f32], vals: &[f32], first: usize, scale: f32) -> Vec<f64> {
        let d = q.len();
        let end = keys.len() / d;
        let scores: Vec<f64> = (first..end)
            .map(|t| {
                (0..d)
                    .map(|i| q[i] as f64 * keys[t * d + i] as f64)
                    .sum::<f64>()
                    * scale as f64
            })
            .collect();
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        (0..d)
            .map(|i| {
                (first..end)
                    .map(|t| e[t - first] * vals[t * d + i] as f64)
                    .sum::<f64>()
                    / sum
            })
            .collect()
    }

    #[test]
    fn attention_matches_a_plain_softmax_on_every_isa() {
        for (d, end, first) in [(16, 1, 0), (64, 37, 0), (128, 300, 200), (32, 5, 4)] {
            let q: Vec<f32> = values(d, 1).iter().map(|v| v * 2.0).collect();
            let keys = values(end * d, 2);
            let vals = values(end * d, 3);
            let want = naive(&q, &keys, &vals, first, 0.3);
            let mut scores = vec![0.0; end];
            let mut portable = vec![0.0; d];
            attend(
                Isa::Portable,
                &q,
                &keys,
                &vals,
                first,
                0.3,
                &mut scores,
                &mut portable,
            );
            for (g, w) in portable.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
            }
            for isa in Isa::available() {
                let mut out = vec![0.0; d];
                attend(isa, &q, &keys, &vals, first, 0.3, &mut scores, &mut out);
                assert_eq!(out, portable, "{isa}");
            }
        }
    }

    #[test]
    fn cache_writes_in_place_and_truncates_in_o1() {
        let mut cache = KvCache::new(2, 8, 2, 4);
        let k: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let v: Vec<f32> = (0..8).map(|v| -(v as f32)).collect();
        cache.write(1, 3, &k, &v);
        cache.advance(4);
        let (keys, values) = cache.head(1, 1, 4);
        assert_eq!(&keys[12..16], &[4.0, 5.0, 6.0, 7.0]);
        assert_eq!(&values[12..16], &[-4.0, -5.0, -6.0, -7.0]);
        assert_eq!(&keys[..12], &[0.0; 12]);
        assert_eq!(cache.head(0, 1, 4).0, &[0.0; 16]);
        cache.truncate(2);
        assert_eq!(cache.len(), 2);
        cache.truncate(5);
        assert_eq!(cache.len(), 2, "truncate never grows the cache");
        assert_eq!(cache.bytes(), 2 * 4 * 2 * 2 * 8 * 4);
    }
}
