//! The CPU engine's KV cache and attention over it.
//!
//! Each layer has one preallocated f32 buffer for keys and one for values,
//! `[kv_heads, slots, head_dim]`: a head's keys are contiguous across positions, so
//! attention streams them. New positions are written in place; rolling back is lowering
//! the length (the next write overwrites the stale rows), O(1) as speculative decoding
//! needs.
//!
//! A sliding-window layer keeps only its window plus [`ROLLBACK`] positions, in a ring
//! written twice (slot `p mod s` and `p mod s + s`), so the window of any position is
//! one contiguous run in position order: attention reads it exactly as it reads a full
//! layer, with the same bits. The margin lets a verify pass write its rows and be
//! rolled back without losing a position the window still needs; a deeper rollback is
//! refused at the next forward ([`KvCache::lost_rollback`]).
//!
//! Attention runs one query head and one query row at a time against its KV head
//! (grouped-query attention needs no copies: head `h` reads KV head `h / group`): the
//! scores of the visible positions, a softmax, and the weighted sum of values, each in
//! a fixed order. A row's result therefore never depends on the other rows of the pass.

use super::isa::multiversion;
use super::ops::{axpy, dot, exp, fold_pairwise, soft_cap};

/// Positions a sliding layer keeps beyond its window: the rows of one chunk, the most
/// a forward writes before attending and the most a speculative step rolls back.
pub const ROLLBACK: usize = super::model::CHUNK;

/// The slots one layer's cache has for `capacity` positions, and whether they form a
/// ring: a sliding layer whose window plus [`ROLLBACK`] is shorter than the capacity
/// keeps that many; any other layer the whole capacity.
pub fn layer_slots(window: Option<usize>, capacity: usize) -> (usize, bool) {
    match window.map(|w| w.saturating_add(ROLLBACK)) {
        Some(slots) if slots < capacity => (slots, true),
        _ => (capacity, false),
    }
}

/// Positions one layer's cache stores for `capacity`: its slots, twice over for a ring.
pub fn positions_held(window: Option<usize>, capacity: usize) -> usize {
    match layer_slots(window, capacity) {
        (slots, true) => 2 * slots,
        (slots, false) => slots,
    }
}

/// Where one layer's positions live.
#[derive(Debug, Clone, Copy)]
struct LayerSlots {
    /// Offset of the layer's first element in `keys` / `values`.
    offset: usize,
    /// Positions a head holds: the capacity, or the ring's size.
    slots: usize,
    /// Written twice around a ring of `slots` positions (a sliding layer).
    ring: bool,
}

/// Keys and values of every layer.
pub struct KvCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    layers: Vec<LayerSlots>,
    kv_heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
    /// The furthest position ever written (since the last reset), plus one: a ring slot
    /// below `high_water − slots` has been overwritten.
    high_water: usize,
    /// A rollback went further back than the rings keep: the positions it needs are
    /// gone until [`reset`](Self::reset).
    lost: Option<usize>,
}

impl KvCache {
    /// A zeroed cache (the allocation is lazy: untouched pages cost no memory); one
    /// layer per entry of `windows`, a sliding one sized to its window.
    pub fn new(
        windows: &[Option<usize>],
        capacity: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> Self {
        let mut offset = 0;
        let layers = windows
            .iter()
            .map(|&window| {
                let (slots, ring) = layer_slots(window, capacity);
                let layer = LayerSlots {
                    offset,
                    slots,
                    ring,
                };
                offset += kv_heads * head_dim * positions_held(window, capacity);
                layer
            })
            .collect();
        Self {
            keys: vec![0.0; offset],
            values: vec![0.0; offset],
            layers,
            kv_heads,
            head_dim,
            capacity,
            len: 0,
            high_water: 0,
            lost: None,
        }
    }

    /// Bytes a cache for these layers takes (what [`new`](Self::new) allocates).
    pub fn bytes_for(
        windows: &[Option<usize>],
        capacity: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> usize {
        windows
            .iter()
            .map(|&window| positions_held(window, capacity))
            .sum::<usize>()
            .saturating_mul(2 * 4 * kv_heads * head_dim)
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
        let rings = self.layers.iter().any(|l| l.ring);
        if rings && self.high_water - self.len > ROLLBACK && self.lost.is_none() {
            self.lost = Some(self.high_water - self.len);
        }
    }

    pub fn reset(&mut self) {
        self.len = 0;
        self.high_water = 0;
        self.lost = None;
    }

    /// Positions a rollback undid beyond what the sliding layers keep, if one did:
    /// forwards are refused until a reset.
    pub fn lost_rollback(&self) -> Option<usize> {
        self.lost
    }

    /// Marks `n` more positions as filled, after every layer wrote them.
    pub fn advance(&mut self, n: usize) {
        debug_assert!(self.len + n <= self.capacity);
        self.len += n;
        self.high_water = self.high_water.max(self.len);
    }

    /// Bytes of the buffers.
    pub fn bytes(&self) -> usize {
        4 * (self.keys.len() + self.values.len())
    }

    /// Element offset of `position` in `kv_head` of `layer`, and of its mirror in a
    /// ring.
    fn at(&self, layer: usize, kv_head: usize, position: usize) -> (usize, Option<usize>) {
        let l = self.layers[layer];
        debug_assert!(kv_head < self.kv_heads);
        let d = self.head_dim;
        if l.ring {
            let head = l.offset + kv_head * 2 * l.slots * d;
            let slot = position % l.slots;
            (head + slot * d, Some(head + (slot + l.slots) * d))
        } else {
            (l.offset + (kv_head * l.slots + position) * d, None)
        }
    }

    /// Writes one position's keys and values (`[kv_heads · head_dim]` each) of `layer`.
    pub fn write(&mut self, layer: usize, position: usize, keys: &[f32], values: &[f32]) {
        assert!(position < self.capacity, "KV write past capacity");
        let d = self.head_dim;
        for h in 0..self.kv_heads {
            let (at, mirror) = self.at(layer, h, position);
            for at in std::iter::once(at).chain(mirror) {
                self.keys[at..at + d].copy_from_slice(&keys[h * d..(h + 1) * d]);
                self.values[at..at + d].copy_from_slice(&values[h * d..(h + 1) * d]);
            }
        }
    }

    /// Keys and values of one KV head of `layer` at positions `first..end`,
    /// `[end − first, head_dim]` each, in position order. For a sliding layer the run
    /// must fit its ring.
    pub fn head(&self, layer: usize, kv_head: usize, first: usize, end: usize) -> (&[f32], &[f32]) {
        assert!(first <= end && end <= self.capacity);
        let l = self.layers[layer];
        assert!(
            !l.ring || end - first <= l.slots,
            "window larger than the ring"
        );
        let (at, _) = self.at(layer, kv_head, first);
        let n = (end - first) * self.head_dim;
        (&self.keys[at..at + n], &self.values[at..at + n])
    }
}

/// One query row of one head: `out = softmax(scale · q·kᵀ) · v` over the positions
/// `first..keys.len() / head_dim`, each score soft-capped first when `cap` is set.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attend_body(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    first: usize,
    scale: f32,
    cap: Option<f32>,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let d = q.len();
    let end = keys.len() / d;
    let scores = &mut scores[..end - first];
    for (s, k) in scores.iter_mut().zip(keys[first * d..].chunks_exact(d)) {
        *s = dot(q, k) * scale;
    }
    if let Some(cap) = cap {
        for s in scores.iter_mut() {
            *s = soft_cap(*s, cap);
        }
    }
    // The maximum over 16 lanes folded pairwise (the same value as a running maximum,
    // without a chain of one operation per position), the exponentials in a loop of
    // their own. The sum stays in position order: summed in lanes it cost SmolLM2-135M
    // one near-tie of the int8-against-f32 agreement test, which sits at its bar.
    let max = lanes_fold(scores, f32::NEG_INFINITY, f32::max);
    for s in scores.iter_mut() {
        *s = exp(*s - max);
    }
    let inverse = 1.0 / scores.iter().fold(0.0f32, |a, &s| a + s);
    // `out[i] = Σ_p score_p · v_p[i]` in position order, 64 dimensions at a time in
    // registers rather than through `out` once per position: the same operations in
    // the same order as an `axpy` per position, so the same bits.
    let values = &values[first * d..];
    let mut column = 0;
    for o in out.chunks_mut(VALUE_CHUNK) {
        let mut acc = [0.0f32; VALUE_CHUNK];
        if o.len() == VALUE_CHUNK {
            for (&p, v) in scores.iter().zip(values.chunks_exact(d)) {
                let v: &[f32; VALUE_CHUNK] = v[column..column + VALUE_CHUNK]
                    .try_into()
                    .expect("a full chunk");
                for (a, &v) in acc.iter_mut().zip(v) {
                    *a += p * v;
                }
            }
        } else {
            for (&p, v) in scores.iter().zip(values.chunks_exact(d)) {
                axpy(p, &v[column..column + o.len()], &mut acc[..o.len()]);
            }
        }
        for (o, &a) in o.iter_mut().zip(&acc) {
            *o = a * inverse;
        }
        column += o.len();
    }
}

/// Dimensions of the value sum kept in registers at once (eight 512-bit vectors: a
/// head of 128 in one pass, eight independent chains of adds).
const VALUE_CHUNK: usize = 128;

/// `f` over `values` in 16 lanes (value `i` into lane `i mod 16`, in order), the lanes
/// then folded pairwise: the same result on every ISA, and no chain of one operation
/// per value (for a maximum, the same result as any order).
#[inline(always)]
fn lanes_fold(values: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [init; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        let chunk: &[f32; LANES] = chunk.try_into().expect("chunks_exact");
        for i in 0..LANES {
            lanes[i] = f(lanes[i], chunk[i]);
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l = f(*l, v);
    }
    fold_pairwise(lanes, f)
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
        cap: Option<f32>,
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
                None,
                &mut scores,
                &mut portable,
            );
            for (g, w) in portable.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
            }
            for isa in Isa::available() {
                let mut out = vec![0.0; d];
                attend(
                    isa,
                    &q,
                    &keys,
                    &vals,
                    first,
                    0.3,
                    None,
                    &mut scores,
                    &mut out,
                );
                assert_eq!(out, portable, "{isa}");
            }
        }
    }

    #[test]
    fn cache_writes_in_place_and_truncates_in_o1() {
        let mut cache = KvCache::new(&[None, None], 8, 2, 4);
        let k: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let v: Vec<f32> = (0..8).map(|v| -(v as f32)).collect();
        cache.write(1, 3, &k, &v);
        cache.advance(4);
        let (keys, values) = cache.head(1, 1, 0, 4);
        assert_eq!(&keys[12..16], &[4.0, 5.0, 6.0, 7.0]);
        assert_eq!(&values[12..16], &[-4.0, -5.0, -6.0, -7.0]);
        assert_eq!(&keys[..12], &[0.0; 12]);
        assert_eq!(cache.head(0, 1, 0, 4).0, &[0.0; 16]);
        cache.truncate(2);
        assert_eq!(cache.len(), 2);
        cache.truncate(5);
        assert_eq!(cache.len(), 2, "truncate never grows the cache");
        assert_eq!(cache.bytes(), 2 * 4 * 2 * 2 * 8 * 4);
    }

    #[test]
    fn a_sliding_ring_gives_every_window_in_position_order() {
        let (window, capacity) = (3, 1000);
        let slots = window + ROLLBACK;
        let mut cache = KvCache::new(&[Some(window), None], capacity, 1, 2);
        assert_eq!(
            cache.bytes(),
            KvCache::bytes_for(&[Some(window), None], capacity, 1, 2)
        );
        assert_eq!(cache.bytes(), 2 * 4 * 2 * (2 * slots + capacity));
        for pos in 0..3 * slots {
            let k = [pos as f32, 0.5];
            cache.write(0, pos, &k, &k);
            cache.write(1, pos, &k, &k);
            cache.advance(1);
            let first = (pos + 1).saturating_sub(window);
            let (ring, _) = cache.head(0, 0, first, pos + 1);
            let (full, _) = cache.head(1, 0, first, pos + 1);
            assert_eq!(ring, full, "position {pos}");
        }
    }

    #[test]
    fn a_rollback_deeper_than_the_ring_keeps_is_reported_until_reset() {
        let mut cache = KvCache::new(&[Some(4)], 1000, 1, 2);
        cache.advance(100);
        cache.truncate(100 - ROLLBACK);
        assert_eq!(cache.lost_rollback(), None);
        cache.advance(ROLLBACK);
        cache.truncate(100 - ROLLBACK - 1);
        assert_eq!(cache.lost_rollback(), Some(ROLLBACK + 1));
        cache.reset();
        assert_eq!(cache.lost_rollback(), None);
        // Without a sliding layer any rollback is fine.
        let mut full = KvCache::new(&[None], 1000, 1, 2);
        full.advance(500);
        full.truncate(0);
        assert_eq!(full.lost_rollback(), None);
    }
}
