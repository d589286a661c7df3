//! Rotary position embeddings in Hugging Face's rotate-half convention.
//!
//! HF pairs dimension `i` with `i + head_dim/2` (not adjacent dimensions), so
//! `rope(x) = x * cos + rotate_half(x) * sin` with `rotate_half(x) = [-x2, x1]` and the
//! cos/sin rows being `[cos(pos * f), cos(pos * f)]` over the half-size frequency vector.

use crate::config::{LayerRope, ModelConfig, RopeScaling};

/// Inverse frequencies `1 / theta^(2i/d)`, rescaled as the config asks. LongRoPE's
/// frequencies depend on the position: these are its short ones (see [`half_tables`]).
pub fn inverse_frequencies(head_dim: usize, theta: f64, scaling: &RopeScaling) -> Vec<f64> {
    // transformers computes these in f32; rounding through f32 keeps us bit-close to it.
    let base: Vec<f64> = (0..head_dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / head_dim as f32;
            (1.0f32 / (theta as f32).powf(exponent)) as f64
        })
        .collect();
    match *scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
        RopeScaling::Factors(ref factors) => base.iter().zip(factors).map(|(f, d)| f / d).collect(),
        RopeScaling::LongRope {
            ref short_factor, ..
        } => longrope_frequencies(head_dim, theta, short_factor),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old_ctx,
        } => {
            // Long wavelengths (low frequencies) are slowed by `factor`, short ones kept,
            // and the band between them interpolated smoothly (Llama 3.1's recipe).
            let low_freq_wavelen = old_ctx / low_freq_factor;
            let high_freq_wavelen = old_ctx / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_freq_wavelen {
                        f
                    } else if wavelen > low_freq_wavelen {
                        f / factor
                    } else {
                        let smooth = (old_ctx / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}

/// LongRoPE's `1 / (factor · theta^(2i/d))`, in f32 as transformers computes it.
fn longrope_frequencies(dim: usize, theta: f64, factors: &[f64]) -> Vec<f64> {
    (0..dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / dim as f32;
            (1.0f32 / (factors[i] as f32 * (theta as f32).powf(exponent))) as f64
        })
        .collect()
}

/// cos and sin of every position's angles for `dim` rotated dimensions,
/// `[positions, dim / 2]` each, row-major: the half tables in-place RoPE reads (the
/// rotate-half convention repeats them in both halves). LongRoPE's tables use its long
/// factors when `long` (a sequence past `original_max_position_embeddings`, see
/// [`ModelConfig::longrope_switch`]), else its short ones, and are scaled by its
/// attention factor; `long` changes nothing for the other scalings.
pub fn half_tables(
    dim: usize,
    theta: f64,
    scaling: &RopeScaling,
    positions: usize,
    long: bool,
) -> (Vec<f32>, Vec<f32>) {
    let half = dim / 2;
    let mut cos = vec![0.0f32; positions * half];
    let mut sin = vec![0.0f32; positions * half];
    let (inv_freq, factor) = match scaling {
        RopeScaling::LongRope {
            short_factor,
            long_factor,
            attention_factor,
            ..
        } => (
            longrope_frequencies(dim, theta, if long { long_factor } else { short_factor }),
            Some(*attention_factor as f32),
        ),
        _ => (inverse_frequencies(dim, theta, scaling), None),
    };
    for pos in 0..positions {
        for (i, &f) in inv_freq.iter().enumerate() {
            // f32 product as in transformers (position_ids.float() @ inv_freq.float()).
            let angle = (pos as f32 * f as f32) as f64;
            let (s, c) = angle.sin_cos();
            let (c, s) = match factor {
                Some(a) => (c as f32 * a, s as f32 * a),
                None => (c as f32, s as f32),
            };
            cos[pos * half + i] = c;
            sin[pos * half + i] = s;
        }
    }
    (cos, sin)
}

/// The half tables of a layer's RoPE (see [`half_tables`]); `None` for NoPE layers.
pub fn layer_half_tables(
    c: &ModelConfig,
    rope: LayerRope,
    positions: usize,
    long: bool,
) -> Option<(Vec<f32>, Vec<f32>)> {
    match rope {
        LayerRope::Global => Some(half_tables(
            c.rotary_dim,
            c.rope_theta,
            &c.rope_scaling,
            positions,
            long,
        )),
        LayerRope::Local => {
            let (theta, scaling) = c.local_rope.as_ref().expect("local RoPE parameters");
            Some(half_tables(c.rotary_dim, *theta, scaling, positions, long))
        }
        LayerRope::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_frequencies() {
        let f = inverse_frequencies(4, 10_000.0, &RopeScaling::None);
        assert!((f[0] - 1.0).abs() < 1e-7);
        assert!((f[1] - 0.01).abs() < 1e-7);
    }

    #[test]
    fn linear_divides_every_frequency() {
        let a = inverse_frequencies(8, 10_000.0, &RopeScaling::None);
        let b = inverse_frequencies(8, 10_000.0, &RopeScaling::Linear { factor: 2.0 });
        for (x, y) in a.iter().zip(&b) {
            assert!((x / 2.0 - y).abs() < 1e-12);
        }
    }

    #[test]
    fn llama3_keeps_high_and_slows_low_frequencies() {
        let scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let a = inverse_frequencies(128, 500_000.0, &RopeScaling::None);
        let b = inverse_frequencies(128, 500_000.0, &scaling);
        assert_eq!(a[0], b[0], "highest frequency untouched");
        assert!(
            (a[63] / 8.0 - b[63]).abs() < 1e-15,
            "lowest frequency divided"
        );
        let mid = (0..64).filter(|&i| b[i] != a[i] && (a[i] / 8.0 - b[i]).abs() > 1e-15);
        assert!(mid.count() > 0, "a smoothed band exists");
    }

    #[test]
    fn half_tables_hold_each_positions_angles() {
        // θ = 4, 4 rotated dimensions: frequencies 1 and 1/2.
        let (cos, sin) = half_tables(4, 4.0, &RopeScaling::None, 3, false);
        // position 2: angles 2.0 and 1.0, one row of head_dim / 2.
        assert!((cos[2 * 2] - 2.0f32.cos()).abs() < 1e-6);
        assert!((cos[2 * 2 + 1] - 1.0f32.cos()).abs() < 1e-6);
        assert!((sin[2 * 2] - 2.0f32.sin()).abs() < 1e-6);
        assert!((sin[2 * 2 + 1] - 1.0f32.sin()).abs() < 1e-6);
    }
}
