//! Turning a logits row into the *warped* distribution and picking a token.
//!
//! Warping follows Hugging Face's order: temperature, then top-k, then top-p.
//! Speculative sampling compares the warped target distribution p with the
//! warped draft distribution q, so both sides must be warped by the same code.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::trace::TokenProb;
use crate::vector;

/// The one RNG used for a whole generation: explicitly seeded and portable,
/// so the same settings and seed give the same tokens on every platform.
pub type DecodeRng = ChaCha8Rng;

pub fn seeded_rng(seed: u64) -> DecodeRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// How to pick tokens. `temperature == 0.0` means greedy (argmax); top-k and
/// top-p are then ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingConfig {
    pub temperature: f32,
    /// Keep only the `k` most likely tokens (ties at the k-th logit are kept, as HF does).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose mass reaches `top_p`.
    pub top_p: Option<f32>,
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self::greedy()
    }
}

impl SamplingConfig {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
        }
    }

    /// Plain sampling at `temperature` (1.0: the model's own distribution).
    pub fn random(temperature: f32, seed: u64) -> Self {
        Self {
            temperature,
            top_k: None,
            top_p: None,
            seed,
        }
    }

    pub fn with_top_k(mut self, k: usize) -> Self {
        self.top_k = Some(k);
        self
    }

    pub fn with_top_p(mut self, p: f32) -> Self {
        self.top_p = Some(p);
        self
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(format!(
                "temperature must be finite and >= 0, got {}",
                self.temperature
            ));
        }
        if self.temperature > 0.0 && !(1.0 / self.temperature).is_finite() {
            return Err(format!(
                "temperature {:e} is too small: 1/temperature overflows (use 0 for greedy decoding)",
                self.temperature
            ));
        }
        if self.top_k == Some(0) {
            return Err("top_k must be at least 1 (use None to disable it)".into());
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(format!("top_p must be in (0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

/// Applies a [`SamplingConfig`] to logits rows.
#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplingConfig,
}

impl Sampler {
    pub fn new(config: SamplingConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    pub fn is_greedy(&self) -> bool {
        self.config.is_greedy()
    }

    /// The warped distribution of a logits row.
    ///
    /// In greedy mode this is the plain softmax (temperature 1, no top-k/p):
    /// the decision is the argmax either way, and the unwarped probabilities
    /// are what a trace should show about the model's confidence.
    pub fn distribution(&self, logits: &[f32]) -> Vec<f32> {
        let (inverse_temperature, top_k, top_p) = if self.is_greedy() {
            (1.0, None, None)
        } else {
            (
                1.0 / self.config.temperature,
                self.config.top_k,
                self.config.top_p,
            )
        };
        let mut values = logits.to_vec();
        // Temperature first (NaN → −∞ on the way), then the mask, then the softmax.
        let max = vector::prepare(&mut values, inverse_temperature);
        let representable = max.is_finite() || (max == f32::NEG_INFINITY && !has_finite(logits));
        if representable {
            if let Some(k) = top_k {
                mask_below_top_k(&mut values, k);
            }
            vector::softmax_prepared(&mut values, max);
        } else {
            values = distribution_in_f64(logits, inverse_temperature, top_k);
        }
        if let Some(p) = top_p {
            keep_top_p(&mut values, p);
        }
        values
    }

    /// Picks a token from a distribution made by [`Sampler::distribution`]:
    /// the argmax when greedy, a draw otherwise.
    pub fn choose(&self, probs: &[f32], rng: &mut DecodeRng) -> u32 {
        if self.is_greedy() {
            argmax(probs)
        } else {
            sample_weighted(probs, rng).unwrap_or_else(|| argmax(probs))
        }
    }
}

/// Index of the largest value; the lowest index wins ties so that every
/// decoding strategy breaks them the same way.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws an index with probability proportional to `weights` (which need not
/// sum to one). `None` when every weight is zero.
pub fn sample_weighted(weights: &[f32], rng: &mut DecodeRng) -> Option<u32> {
    // f64 accumulation: with 150k entries an f32 running sum drifts enough to
    // shift mass between neighbouring tokens.
    let total: f64 = weights.iter().map(|&w| f64::from(w.max(0.0))).sum();
    if total <= 0.0 {
        return None;
    }
    let target = rng.random::<f64>() * total;
    let mut acc = 0.0;
    let mut last_positive = None;
    for (i, &w) in weights.iter().enumerate() {
        if w <= 0.0 {
            continue;
        }
        acc += f64::from(w);
        if acc > target {
            return Some(i as u32);
        }
        last_positive = Some(i as u32);
    }
    // Only reachable through rounding: the draw landed at the very top.
    last_positive
}

/// The `k` most likely tokens, most likely first (lowest id first on ties);
/// zero-probability tokens are left out.
pub fn top_tokens(probs: &[f32], k: usize) -> Vec<TokenProb> {
    // k may be anything a caller passed (a filler top-k): only the row bounds the list.
    let mut best: Vec<TokenProb> = Vec::with_capacity(k.min(probs.len()).saturating_add(1));
    if k == 0 {
        return best;
    }
    // Only chunks holding a value above the k-th best so far are looked at: after the
    // first few, almost none of a 150k vocabulary.
    let best_cell = std::cell::RefCell::new(&mut best);
    vector::scan_candidates(
        probs,
        || {
            let best = best_cell.borrow();
            if best.len() == k {
                best[k - 1].prob
            } else {
                0.0
            }
        },
        |i, p| {
            let mut best = best_cell.borrow_mut();
            if p <= 0.0 || (best.len() == k && p <= best[k - 1].prob) {
                return;
            }
            let at = best.partition_point(|t| t.prob >= p);
            best.insert(
                at,
                TokenProb {
                    token: i as u32,
                    prob: p,
                },
            );
            best.truncate(k);
        },
    );
    best
}

/// Probability of `token` in `probs`, 0 outside the row (a narrower vocabulary).
pub fn prob_of(probs: &[f32], token: u32) -> f32 {
    probs.get(token as usize).copied().unwrap_or(0.0)
}

fn has_finite(values: &[f32]) -> bool {
    values.iter().any(|v| v.is_finite())
}

/// The warped distribution of a row that the f32 path cannot represent: an infinite
/// logit (its max minus itself is NaN), or logits · (1/T) past f32's range under a tiny
/// temperature (every finite logit becomes ±∞, which would tie them all). Here the
/// logits are shifted by their maximum before scaling, in f64, so the result is the
/// true softmax, or its limit: the +∞ logits share all the mass, and a temperature
/// near 0 puts it on the argmax. Rare, so written plainly.
fn distribution_in_f64(logits: &[f32], inverse_temperature: f32, top_k: Option<usize>) -> Vec<f32> {
    let infinite = logits.iter().filter(|&&x| x == f32::INFINITY).count();
    if infinite > 0 {
        let share = 1.0 / infinite as f32;
        return logits
            .iter()
            .map(|&x| if x == f32::INFINITY { share } else { 0.0 })
            .collect();
    }
    // NaN counts as −∞, as on the fast path; the caller saw a finite logit.
    let max = f64::from(
        logits
            .iter()
            .copied()
            .filter(|x| !x.is_nan())
            .fold(f32::NEG_INFINITY, f32::max),
    );
    let scale = f64::from(inverse_temperature);
    let mut scaled: Vec<f64> = logits
        .iter()
        .map(|&x| {
            if x.is_nan() {
                f64::NEG_INFINITY
            } else {
                (f64::from(x) - max) * scale
            }
        })
        .collect();
    if let Some(k) = top_k.filter(|&k| k > 0 && k < scaled.len()) {
        let mut scratch = scaled.clone();
        let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        let threshold = *kth;
        scaled
            .iter_mut()
            .filter(|v| **v < threshold)
            .for_each(|v| *v = f64::NEG_INFINITY);
    }
    // The maximum maps to e^0 = 1, so the sum is at least 1.
    let total: f64 = scaled.iter().map(|v| v.exp()).sum();
    scaled.iter().map(|v| (v.exp() / total) as f32).collect()
}

/// Sets every logit below the k-th largest to -inf.
fn mask_below_top_k(logits: &mut [f32], k: usize) {
    if k >= logits.len() {
        return;
    }
    let mut scratch = logits.to_vec();
    let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let threshold = *kth;
    for v in logits.iter_mut() {
        if *v < threshold {
            *v = f32::NEG_INFINITY;
        }
    }
}

/// Zeroes everything outside the smallest most-likely set whose mass reaches
/// `top_p`, then renormalizes.
fn keep_top_p(probs: &mut [f32], top_p: f32) {
    if top_p >= 1.0 {
        return;
    }
    // Only tokens above (1 - top_p) / V can be kept: the tokens at or below the
    // cut-off token c hold more than 1 - top_p of the mass and there are at
    // most V of them, so p_c > (1 - top_p) / V. Sorting just those candidates
    // keeps this O(V) on a 150k vocabulary instead of a full sort per row.
    let floor = (1.0 - top_p) / probs.len() as f32;
    let mut candidates: Vec<u32> = (0..probs.len() as u32)
        .filter(|&i| probs[i as usize] > floor)
        .collect();
    candidates.sort_unstable_by(|&a, &b| {
        probs[b as usize]
            .total_cmp(&probs[a as usize])
            .then(a.cmp(&b))
    });
    let mut keep = vec![false; probs.len()];
    let mut mass = 0.0f64;
    for &i in &candidates {
        keep[i as usize] = true;
        mass += f64::from(probs[i as usize]);
        if mass >= f64::from(top_p) {
            break;
        }
    }
    let mut kept_mass = 0.0f64;
    for (p, &k) in probs.iter_mut().zip(&keep) {
        if k {
            kept_mass += f64::from(*p);
        } else {
            *p = 0.0;
        }
    }
    let inverse = (1.0 / kept_mass) as f32;
    probs.iter_mut().for_each(|p| *p *= inverse);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    fn softmax(logits: &[f32]) -> Vec<f32> {
        let mut v = logits.to_vec();
        vector::softmax_in_place(&mut v, 1.0);
        v
    }

    #[test]
    fn greedy_distribution_is_the_plain_softmax() {
        let sampler = Sampler::new(SamplingConfig::greedy().with_top_k(1));
        let logits = [1.0, 2.0, 0.5];
        assert!(close(&sampler.distribution(&logits), &softmax(&logits)));
        let mut rng = seeded_rng(0);
        assert_eq!(sampler.choose(&sampler.distribution(&logits), &mut rng), 1);
    }

    #[test]
    fn temperature_divides_logits() {
        let sampler = Sampler::new(SamplingConfig::random(2.0, 0));
        let got = sampler.distribution(&[2.0, 4.0, 0.0]);
        assert!(close(&got, &softmax(&[1.0, 2.0, 0.0])));
    }

    #[test]
    fn top_k_keeps_the_k_largest_and_ties_at_the_edge() {
        let sampler = Sampler::new(SamplingConfig::random(1.0, 0).with_top_k(2));
        let got = sampler.distribution(&[1.0, 3.0, 2.0, 0.0]);
        let kept = softmax(&[3.0, 2.0]);
        assert!(close(&got, &[0.0, kept[0], kept[1], 0.0]));

        let tied = sampler.distribution(&[1.0, 3.0, 1.0, 0.0]);
        let kept = softmax(&[1.0, 3.0, 1.0]);
        assert!(close(&tied, &[kept[0], kept[1], kept[2], 0.0]));
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_p() {
        // probs 0.5, 0.3, 0.15, 0.05
        let logits: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        let at = |p: f32| Sampler::new(SamplingConfig::random(1.0, 0).with_top_p(p));
        assert!(close(&at(0.5).distribution(&logits), &[1.0, 0.0, 0.0, 0.0]));
        assert!(close(
            &at(0.6).distribution(&logits),
            &[0.625, 0.375, 0.0, 0.0]
        ));
        assert!(close(
            &at(0.9).distribution(&logits),
            &[0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0]
        ));
        assert!(close(
            &at(1.0).distribution(&logits),
            &[0.5, 0.3, 0.15, 0.05]
        ));
    }

    #[test]
    fn warpers_apply_temperature_then_top_k_then_top_p() {
        // After T = 0.5 the logits [ln .5, ln .3, ln .15, ln .05] become
        // probs ∝ .25, .09, .0225, .0025. Top-k 3 drops the last, so the first
        // holds .25 / .3625 = 0.6897 >= 0.687 and top-p keeps it alone. Any
        // other order keeps two: top-p before top-k sees .25 / .365 = 0.6849,
        // and top-p before the temperature sees .5 / .95.
        let logits: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        let config = SamplingConfig::random(0.5, 0)
            .with_top_k(3)
            .with_top_p(0.687);
        let got = Sampler::new(config).distribution(&logits);
        assert!(close(&got, &[1.0, 0.0, 0.0, 0.0]));
    }

    #[test]
    fn sampling_follows_the_weights() {
        let mut rng = seeded_rng(7);
        let weights = [0.0, 1.0, 3.0, 0.0];
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[sample_weighted(&weights, &mut rng).unwrap() as usize] += 1;
        }
        assert_eq!(counts[0] + counts[3], 0);
        let share = counts[2] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "share {share}");
        assert_eq!(sample_weighted(&[0.0, 0.0], &mut rng), None);
    }

    #[test]
    fn same_seed_same_draws() {
        let sampler = Sampler::new(SamplingConfig::random(1.0, 0));
        let probs = sampler.distribution(&[0.1, 0.2, 0.3, 0.4, 0.5]);
        let draw = |seed| {
            let mut rng = seeded_rng(seed);
            (0..32)
                .map(|_| sampler.choose(&probs, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn argmax_prefers_the_lowest_id_on_ties() {
        assert_eq!(argmax(&[0.1, 0.4, 0.4, 0.1]), 1);
    }

    #[test]
    fn top_tokens_are_sorted_and_skip_zeros() {
        let got = top_tokens(&[0.1, 0.0, 0.5, 0.1, 0.3], 3);
        let ids: Vec<u32> = got.iter().map(|t| t.token).collect();
        assert_eq!(ids, vec![2, 4, 0]);
        assert_eq!(top_tokens(&[0.0, 1.0], 5).len(), 1);
    }

    #[test]
    fn prob_of_is_zero_outside_the_row() {
        assert_eq!(prob_of(&[0.25, 0.75], 1), 0.75);
        assert_eq!(prob_of(&[0.25, 0.75], 5), 0.0);
    }

    #[test]
    fn top_tokens_takes_any_k() {
        let probs = [0.1, 0.0, 0.5, 0.4];
        assert!(top_tokens(&probs, 0).is_empty());
        // k past the row (a filler top-k of a million, or usize::MAX) is the whole row.
        for k in [1_000_000, usize::MAX / 2, usize::MAX] {
            let ids: Vec<u32> = top_tokens(&probs, k).iter().map(|t| t.token).collect();
            assert_eq!(ids, vec![2, 3, 0], "k = {k}");
        }
    }

    #[test]
    fn a_temperature_whose_inverse_overflows_is_refused() {
        let err = SamplingConfig::random(1e-40, 0).validate().unwrap_err();
        assert!(err.contains("1e-40"), "{err}");
        assert!(SamplingConfig::random(1e-30, 0).validate().is_ok());
    }

    #[test]
    fn a_tiny_temperature_keeps_the_argmax() {
        // 1/T is finite but logit · (1/T) overflows f32: the limit is the argmax.
        let sampler = Sampler::new(SamplingConfig::random(1e-38, 0));
        for logits in [[10.0, 20.0, 19.0, -3.0], [-10.0, -2.0, -5.0, -3.0]] {
            let probs = sampler.distribution(&logits);
            assert_eq!(probs, vec![0.0, 1.0, 0.0, 0.0], "{logits:?}");
            let with_top_k = Sampler::new(SamplingConfig::random(1e-38, 0).with_top_k(2));
            assert_eq!(with_top_k.distribution(&logits), vec![0.0, 1.0, 0.0, 0.0]);
        }
    }

    #[test]
    fn an_infinite_logit_takes_all_the_mass() {
        let logits = [1.0, 2.0, f32::INFINITY, 0.5, f32::NAN];
        let want = vec![0.0, 0.0, 1.0, 0.0, 0.0];
        let samplers = [
            Sampler::new(SamplingConfig::greedy()),
            Sampler::new(SamplingConfig::random(1.0, 0)),
            Sampler::new(SamplingConfig::random(0.5, 0).with_top_k(2)),
            Sampler::new(SamplingConfig::random(1.0, 0).with_top_p(0.9)),
        ];
        for sampler in &samplers {
            let probs = sampler.distribution(&logits);
            assert_eq!(probs, want, "{:?}", sampler.config());
            assert_eq!(sampler.choose(&probs, &mut seeded_rng(1)), 2);
        }
        // Two infinite logits share the mass.
        let probs = samplers[1].distribution(&[f32::INFINITY, 0.0, f32::INFINITY]);
        assert_eq!(probs, vec![0.5, 0.0, 0.5]);
    }

    #[test]
    fn validation_catches_bad_settings() {
        assert!(SamplingConfig::random(-1.0, 0).validate().is_err());
        assert!(SamplingConfig::random(1.0, 0)
            .with_top_k(0)
            .validate()
            .is_err());
        assert!(SamplingConfig::random(1.0, 0)
            .with_top_p(0.0)
            .validate()
            .is_err());
        assert!(SamplingConfig::random(0.7, 0)
            .with_top_k(40)
            .with_top_p(0.9)
            .validate()
            .is_ok());
    }
}
