//! A preallocated per-layer key/value cache that rolls back in O(1).
//!
//! Speculative decoding writes γ draft positions and then keeps only the accepted ones,
//! so the cache is a fixed-capacity buffer plus a length: `truncate` just lowers the
//! length, and the next append overwrites the stale rows.

use burn::tensor::Tensor;

use crate::backends::TandemBackend;

/// Keys and values of every layer, `[capacity, kv_heads, head_dim]` each.
pub struct KvCache<B: TandemBackend> {
    // `Option` so a buffer can be moved out, written while uniquely owned (no copy on
    // flex), and put back.
    keys: Vec<Option<Tensor<B, 3>>>,
    values: Vec<Option<Tensor<B, 3>>>,
    len: usize,
    capacity: usize,
}

impl<B: TandemBackend> KvCache<B> {
    pub fn new(
        layers: usize,
        capacity: usize,
        kv_heads: usize,
        head_dim: usize,
        device: &B::Device,
    ) -> Self {
        let buffer = || {
            Some(Tensor::<B, 3>::zeros(
                [capacity, kv_heads, head_dim],
                device,
            ))
        };
        Self {
            keys: (0..layers).map(|_| buffer()).collect(),
            values: (0..layers).map(|_| buffer()).collect(),
            len: 0,
            capacity,
        }
    }

    /// Number of cached positions.
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

    /// Writes the new keys and values of `layer` at positions `len..len + n` and returns
    /// views of all `len + n` cached keys and values. The views must be dropped before
    /// the next append to this layer, or that append copies the buffer.
    ///
    /// # Shapes
    /// - keys, values: `[n, kv_heads, head_dim]`
    /// - returns: `[len + n, kv_heads, head_dim]` twice
    pub fn append(
        &mut self,
        layer: usize,
        keys: Tensor<B, 3>,
        values: Tensor<B, 3>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let n = keys.dims()[0];
        let end = self.len + n;
        debug_assert!(end <= self.capacity, "caller checks the capacity");
        let k = B::write_rows(
            self.keys[layer].take().expect("buffer present"),
            self.len,
            keys,
        );
        let v = B::write_rows(
            self.values[layer].take().expect("buffer present"),
            self.len,
            values,
        );
        let views = (k.clone().slice([0..end]), v.clone().slice([0..end]));
        self.keys[layer] = Some(k);
        self.values[layer] = Some(v);
        views
    }

    /// Marks `n` more positions as filled, after every layer appended them.
    pub fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// The key buffer of one layer (tests and benchmarks).
    pub fn key_buffer(&self, layer: usize) -> &Tensor<B, 3> {
        self.keys[layer].as_ref().expect("buffer present")
    }

    /// Bytes held by the buffers (f32).
    pub fn bytes(&self) -> usize {
        self.keys
            .iter()
            .chain(&self.values)
            .map(|t| t.as_ref().map_or(0, |t| t.shape().num_elements() * 4))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::{flex_storage_ptr, Flex};

    #[test]
    fn append_is_in_place_at_any_length_and_truncate_is_o1() {
        let device = Default::default();
        let mut cache = KvCache::<Flex>::new(1, 8192, 2, 4, &device);
        let ptr = flex_storage_ptr(cache.key_buffer(0));
        for step in 0..3 {
            let rows = Tensor::<Flex, 3>::ones([2, 2, 4], &device) * (step as f32 + 1.0);
            let (k, v) = cache.append(0, rows.clone(), rows);
            assert_eq!(k.dims(), [cache.len() + 2, 2, 4]);
            assert_eq!(v.dims()[0], cache.len() + 2);
            drop((k, v));
            cache.advance(2);
            assert_eq!(
                flex_storage_ptr(cache.key_buffer(0)),
                ptr,
                "append copied the buffer"
            );
        }
        // Jump near the end of the buffer: appending there must still not copy.
        cache.truncate(2);
        assert_eq!(cache.len(), 2);
        cache.advance(8000);
        let rows = Tensor::<Flex, 3>::ones([1, 2, 4], &device) * 9.0;
        let (k, _v) = cache.append(0, rows.clone(), rows);
        let last = k.slice([8002..8003]).into_data().to_vec::<f32>().unwrap();
        assert_eq!(last, vec![9.0; 8]);
        assert_eq!(flex_storage_ptr(cache.key_buffer(0)), ptr);
    }

    #[test]
    fn truncate_then_append_overwrites_stale_rows() {
        let device = Default::default();
        let mut cache = KvCache::<Flex>::new(1, 4, 1, 1, &device);
        let row = |v: f32| Tensor::<Flex, 3>::ones([1, 1, 1], &device) * v;
        for v in [1.0, 2.0, 3.0] {
            drop(cache.append(0, row(v), row(v)));
            cache.advance(1);
        }
        cache.truncate(1);
        let (k, _) = cache.append(0, row(7.0), row(7.0));
        assert_eq!(k.into_data().to_vec::<f32>().unwrap(), vec![1.0, 7.0]);
    }
}
