//! The target's rulings on drafted tokens (Leviathan et al. 2023, Chen et al.
//! 2023), kept apart from how drafts are proposed and how runs are measured.
//!
//! All rules work on *warped* distributions: p from the target's logits row,
//! q from the drafter. Widths may differ: a probability outside a row is 0.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::sampling::{argmax, prob_of, sample_weighted, DecodeRng, Sampler};

/// What the verifier knows about how a draft token was chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum DraftDistribution {
    /// A draft model's warped distribution q, over the draft's vocabulary.
    Sampled(Vec<f32>),
    /// A deterministic proposal (n-gram lookup): q is a point mass on the token.
    PointMass,
}

impl DraftDistribution {
    /// q(token) for a draft that proposed `drafted`.
    pub fn q_of(&self, drafted: u32, token: u32) -> f32 {
        match self {
            DraftDistribution::Sampled(q) => prob_of(q, token),
            DraftDistribution::PointMass => {
                if token == drafted {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// What to do after a sampling-mode rejection. Only `Exact` is correct; the
/// other exists so the distribution tests can show they detect the bias.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionVariant {
    /// Draw from norm(max(0, p − q)); for a point-mass q that is p without
    /// the rejected token, renormalized.
    #[default]
    Exact,
    /// BIASED: draw afresh from p, as the reference implementation does.
    ResampleFromTarget,
}

/// How drafts are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyRule {
    /// Accept while the draft is the target's argmax; output equals plain greedy.
    Greedy,
    /// Speculative sampling: output is distributed exactly as the target's.
    Sampling(RejectionVariant),
}

impl VerifyRule {
    pub fn for_sampler(sampler: &Sampler, variant: RejectionVariant) -> Self {
        if sampler.is_greedy() {
            VerifyRule::Greedy
        } else {
            VerifyRule::Sampling(variant)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// The draft is rejected and `replacement` is emitted in its place.
    Reject {
        replacement: u32,
    },
}

/// Rules on one drafted token at a position whose target distribution is `p`.
pub fn judge_draft(
    rule: VerifyRule,
    p: &[f32],
    drafted: u32,
    q: &DraftDistribution,
    rng: &mut DecodeRng,
) -> Verdict {
    match rule {
        // Greedy decoding is deterministic, so the ruling must be too: accept
        // exactly when the draft is what plain greedy would emit, and on a
        // mismatch emit that token. The reference Python implementation runs
        // the random ratio test p(d)/q(d) ≥ u here and emits the argmax of
        // max(0, p − q) on rejection. Both are wrong for greedy: the ratio test
        // can accept a draft that is not argmax p (whenever p(d) ≥ u·q(d)), and
        // the residual's argmax is not argmax p whenever q also puts much of
        // its mass there (p − q is then small at exactly the greedy token). Its
        // output therefore depends on the RNG and drifts from the target's
        // greedy continuation.
        VerifyRule::Greedy => {
            let best = argmax(p);
            if drafted == best {
                Verdict::Accept
            } else {
                Verdict::Reject { replacement: best }
            }
        }
        VerifyRule::Sampling(variant) => {
            let p_d = f64::from(prob_of(p, drafted));
            let q_d = f64::from(q.q_of(drafted, drafted));
            if q_d <= 0.0 {
                // A draft q gives no mass was not drawn from q (a drafter bug, or ids
                // past q's width), so the ratio test means nothing: drop the draft
                // and let the target pick from p, which is exact whatever was drafted.
                return Verdict::Reject {
                    replacement: sample_from(p, rng),
                };
            }
            // Accept with probability min(1, p/q). Strict `<` with u in [0, 1)
            // never accepts a token the target gives probability 0 (e.g.
            // outside its top-k), which `u <= p/q` would at u = 0.
            let u: f64 = rng.random();
            if u < p_d / q_d {
                return Verdict::Accept;
            }
            let replacement = match variant {
                RejectionVariant::Exact => sample_weighted(&residual(p, drafted, q), rng),
                // BIASED. A step rejects with overall probability
                // r = Σ_x (q(x) − p(x))⁺, and drawing from p again after that
                // emits each x with probability min(p(x), q(x)) + r·p(x)
                // instead of p(x). With a point-mass q (NASD) r = 1 − p(d), so
                // d comes out with p + (1 − p)·p: over-weighted, because the
                // fresh draw can return the very token just rejected.
                RejectionVariant::ResampleFromTarget => sample_weighted(p, rng),
            };
            Verdict::Reject {
                // The residual is empty only through rounding (rejection implies
                // q(d) > p(d), so p − q is positive somewhere): p and q agree to
                // rounding, and the residual's limit as q → p is p itself.
                replacement: replacement.unwrap_or_else(|| sample_from(p, rng)),
            }
        }
    }
}

/// max(0, p − q) over p's width, unnormalized; q is 0 past its own width.
///
/// Drawing from it after rejecting d restores exactly the mass of p that the
/// accept test under-delivered. For a point-mass q it is p with d removed.
pub fn residual(p: &[f32], drafted: u32, q: &DraftDistribution) -> Vec<f32> {
    match q {
        DraftDistribution::Sampled(q) => p
            .iter()
            .enumerate()
            .map(|(i, &p_i)| (p_i - q.get(i).copied().unwrap_or(0.0)).max(0.0))
            .collect(),
        DraftDistribution::PointMass => {
            let mut r = p.to_vec();
            if let Some(slot) = r.get_mut(drafted as usize) {
                *slot = 0.0;
            }
            r
        }
    }
}

/// The token the target itself contributes when no draft is left to judge
/// (the bonus token, or a plain step).
pub fn target_token(rule: VerifyRule, p: &[f32], rng: &mut DecodeRng) -> u32 {
    match rule {
        VerifyRule::Greedy => argmax(p),
        VerifyRule::Sampling(_) => sample_from(p, rng),
    }
}

/// A draw from p; argmax p only for a row with no mass at all, which the sampler
/// never makes (a row with nothing finite becomes uniform).
fn sample_from(p: &[f32], rng: &mut DecodeRng) -> u32 {
    sample_weighted(p, rng).unwrap_or_else(|| argmax(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::seeded_rng;
    use crate::testing::chi_square::chi_square_test;

    const EXACT: VerifyRule = VerifyRule::Sampling(RejectionVariant::Exact);

    #[test]
    fn greedy_accepts_only_the_argmax() {
        let mut rng = seeded_rng(0);
        let p = [0.1, 0.6, 0.3];
        let q = DraftDistribution::Sampled(vec![0.0, 0.0, 1.0]);
        assert_eq!(
            judge_draft(VerifyRule::Greedy, &p, 1, &q, &mut rng),
            Verdict::Accept
        );
        assert_eq!(
            judge_draft(VerifyRule::Greedy, &p, 2, &q, &mut rng),
            Verdict::Reject { replacement: 1 }
        );
    }

    #[test]
    fn draft_more_likely_under_p_than_q_is_always_accepted() {
        let p = [0.2, 0.5, 0.3];
        let q = DraftDistribution::Sampled(vec![0.3, 0.4, 0.3]);
        for seed in 0..200 {
            let mut rng = seeded_rng(seed);
            assert_eq!(judge_draft(EXACT, &p, 1, &q, &mut rng), Verdict::Accept);
        }
    }

    #[test]
    fn draft_impossible_under_p_is_never_accepted() {
        let p = [0.5, 0.5, 0.0];
        for seed in 0..200 {
            let mut rng = seeded_rng(seed);
            let verdict = judge_draft(EXACT, &p, 2, &DraftDistribution::PointMass, &mut rng);
            assert!(matches!(verdict, Verdict::Reject { replacement } if replacement < 2));
        }
    }

    /// How often each token comes out of one judged draft, over `n` seeds.
    fn emitted_counts(p: &[f32], drafted: u32, q: &DraftDistribution, n: u64) -> Vec<u64> {
        let mut counts = vec![0u64; p.len()];
        for seed in 0..n {
            let token = match judge_draft(EXACT, p, drafted, q, &mut seeded_rng(seed)) {
                Verdict::Accept => drafted,
                Verdict::Reject { replacement } => replacement,
            };
            counts[token as usize] += 1;
        }
        counts
    }

    fn assert_distributed_as(counts: &[u64], p: &[f32]) {
        let expected: Vec<f64> = p.iter().map(|&x| f64::from(x)).collect();
        let test = chi_square_test(counts, &expected, 5.0);
        assert!(test.p_value > 1e-4, "{counts:?} against {p:?}: {test:?}");
    }

    #[test]
    fn a_draft_q_gives_zero_is_judged_by_p_alone() {
        // q(1) = 0: the draft cannot have come from q, so min(1, p/q) is meaningless;
        // accepting it always would emit token 1 with probability 1 instead of 0.8.
        let p = [0.2, 0.8, 0.0];
        let q = DraftDistribution::Sampled(vec![1.0, 0.0, 0.0]);
        let counts = emitted_counts(&p, 1, &q, 20_000);
        assert_distributed_as(&counts, &p);
        // Past q's width counts as q = 0 too.
        let narrow = DraftDistribution::Sampled(vec![1.0]);
        assert_distributed_as(&emitted_counts(&p, 1, &narrow, 20_000), &p);
    }

    #[test]
    fn an_empty_residual_falls_back_to_sampling_p() {
        // q is p with rounding error on token 1: q(1) > p(1) rejects 1 now and then,
        // yet max(0, p − q) is 0 everywhere. The replacement must still follow p (by
        // the limit p → q of the residual's mass), not always be argmax p.
        let p = [0.5, 0.5];
        let q = DraftDistribution::Sampled(vec![0.5, 0.6]);
        assert!(residual(&p, 1, &q).iter().all(|&r| r == 0.0));
        let mut replacements = [0u64; 2];
        for seed in 0..20_000 {
            if let Verdict::Reject { replacement } =
                judge_draft(EXACT, &p, 1, &q, &mut seeded_rng(seed))
            {
                replacements[replacement as usize] += 1;
            }
        }
        assert!(replacements.iter().sum::<u64>() > 1000, "{replacements:?}");
        assert_distributed_as(&replacements, &p);
    }

    #[test]
    fn residual_is_positive_part_of_p_minus_q() {
        let p = [0.2, 0.5, 0.3];
        let q = DraftDistribution::Sampled(vec![0.6, 0.1, 0.3]);
        let r = residual(&p, 0, &q);
        let want = [0.0, 0.4, 0.0];
        assert!(r.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn narrower_q_counts_as_zero() {
        let p = [0.2, 0.5, 0.3];
        let q = DraftDistribution::Sampled(vec![0.6, 0.4]);
        let r = residual(&p, 0, &q);
        let want = [0.0, 0.1, 0.3];
        assert!(r.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6));
        assert_eq!(q.q_of(0, 2), 0.0);
    }

    #[test]
    fn point_mass_residual_removes_the_draft() {
        let p = [0.2, 0.5, 0.3];
        assert_eq!(
            residual(&p, 1, &DraftDistribution::PointMass),
            vec![0.2, 0.0, 0.3]
        );
        // A draft past p's width (a wider draft vocabulary) leaves p as is.
        assert_eq!(residual(&p, 7, &DraftDistribution::PointMass), p.to_vec());
    }

    #[test]
    fn point_mass_acceptance_rate_is_p_of_the_draft() {
        let p = [0.7, 0.3];
        let accepted = (0..20_000)
            .filter(|&seed| {
                let mut rng = seeded_rng(seed);
                judge_draft(EXACT, &p, 1, &DraftDistribution::PointMass, &mut rng)
                    == Verdict::Accept
            })
            .count();
        let rate = accepted as f64 / 20_000.0;
        assert!((rate - 0.3).abs() < 0.015, "rate {rate}");
    }

    #[test]
    fn target_token_is_argmax_when_greedy() {
        let mut rng = seeded_rng(3);
        assert_eq!(
            target_token(VerifyRule::Greedy, &[0.3, 0.2, 0.5], &mut rng),
            2
        );
        assert_eq!(target_token(EXACT, &[0.0, 1.0, 0.0], &mut rng), 1);
    }
}
