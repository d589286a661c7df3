//! Speculative and NASD sampling keep the target's distribution exactly: the
//! empirical joint distribution of the first three emitted tokens over 10⁵
//! seeded runs passes a χ² test against the exact joint computed from the
//! target's table, while the biased rejection variants fail the same test.
//!
//! The models are hand-written tables over 4 tokens (64 joint cells) with a
//! draft q far from p, so rejections are frequent and bias is visible.

use crate::gamma::GammaPolicy;
use crate::generate::{generate, GenerationConfig, Hooks, Mode};
use crate::sampling::{Sampler, SamplingConfig};
use crate::testing::chi_square::{chi_square_test, ChiSquare};
use crate::testing::TableLm;
use crate::verify::RejectionVariant;

const VOCAB: usize = 4;
const DRAWS: u64 = 100_000;
const EMITTED: usize = 3;
/// Repetitive, so the n-gram store can always draft (every token has a known
/// continuation).
const PROMPT: [u32; 8] = [0, 1, 2, 3, 0, 1, 2, 3];
const SIGNIFICANCE: f64 = 0.001;

fn rotated(probs: [f32; VOCAB], by: usize) -> Vec<f32> {
    (0..VOCAB)
        .map(|i| probs[(i + VOCAB - by % VOCAB) % VOCAB])
        .collect()
}

/// p(next | position, last token): three shapes cycling with the position,
/// rotated by the last token.
fn target_lm() -> TableLm {
    TableLm::from_probs(VOCAB, |position, previous| {
        let shape = match position % 3 {
            0 => [0.5, 0.25, 0.15, 0.10],
            1 => [0.1, 0.2, 0.3, 0.4],
            _ => [0.25, 0.05, 0.4, 0.3],
        };
        rotated(shape, *previous.last().unwrap() as usize)
    })
}

/// q: sharply peaked where p usually is not.
fn draft_lm() -> TableLm {
    TableLm::from_probs(VOCAB, |position, previous| {
        let last = *previous.last().unwrap() as usize;
        rotated([0.05, 0.1, 0.15, 0.7], last + position)
    })
}

/// q over 6 ids, 40% of it on ids 4 and 5, which the 4-token target does not have
/// (a draft whose logits are padded wider than the target's).
fn wide_draft_lm() -> TableLm {
    TableLm::from_probs(VOCAB + 2, |position, previous| {
        let last = *previous.last().unwrap() as usize;
        let mut q: Vec<f32> = rotated([0.05, 0.1, 0.15, 0.7], last + position)
            .iter()
            .map(|p| p * 0.6)
            .collect();
        q.extend([0.2, 0.2]);
        q
    })
}

#[derive(Clone, Copy, Debug)]
enum Strategy {
    Plain,
    Speculative,
    WideSpeculative,
    Nasd { filler: Option<usize> },
}

fn config(
    sampling: SamplingConfig,
    variant: RejectionVariant,
    gamma: GammaPolicy,
) -> GenerationConfig {
    GenerationConfig {
        sampling,
        max_new_tokens: EMITTED,
        gamma,
        rejection_variant: variant,
        ..GenerationConfig::default()
    }
}

/// P(t1, t2, t3) under the target's warped distribution, cell t1·16 + t2·4 + t3.
fn exact_joint(sampling: &SamplingConfig) -> Vec<f64> {
    let sampler = Sampler::new(sampling.clone());
    let target = target_lm();
    let next = |history: &[u32]| sampler.distribution(&target.next_logits(history));
    let mut joint = vec![0.0; VOCAB.pow(EMITTED as u32)];
    let mut history = PROMPT.to_vec();
    let p1 = next(&history);
    for t1 in 0..VOCAB as u32 {
        history.push(t1);
        let p2 = next(&history);
        for t2 in 0..VOCAB as u32 {
            history.push(t2);
            let p3 = next(&history);
            for t3 in 0..VOCAB as u32 {
                let cell = ((t1 as usize * VOCAB) + t2 as usize) * VOCAB + t3 as usize;
                joint[cell] = f64::from(p1[t1 as usize])
                    * f64::from(p2[t2 as usize])
                    * f64::from(p3[t3 as usize]);
            }
            history.pop();
        }
        history.pop();
    }
    joint
}

/// Runs `DRAWS` generations with seeds 0.. and counts the first three tokens.
fn sampled_joint(strategy: Strategy, config: &GenerationConfig) -> Vec<u64> {
    let mut target = target_lm();
    let mut draft = draft_lm();
    let mut wide_draft = wide_draft_lm();
    let mut config = config.clone();
    let mut counts = vec![0; VOCAB.pow(EMITTED as u32)];
    for seed in 0..DRAWS {
        config.sampling.seed = seed;
        let mode = match strategy {
            Strategy::Plain => Mode::Plain,
            Strategy::Speculative => Mode::Speculative { draft: &mut draft },
            Strategy::WideSpeculative => Mode::Speculative {
                draft: &mut wide_draft,
            },
            Strategy::Nasd { filler } => Mode::Nasd {
                ngram_n: 3,
                filler_top_k: filler,
            },
        };
        let result = generate(&mut target, mode, &PROMPT, &config, Hooks::new()).unwrap();
        let cell = result
            .tokens
            .iter()
            .fold(0, |cell, &t| cell * VOCAB + t as usize);
        counts[cell] += 1;
    }
    counts
}

fn chi_square(
    strategy: Strategy,
    sampling: SamplingConfig,
    variant: RejectionVariant,
) -> ChiSquare {
    chi_square_with(strategy, sampling, variant, GammaPolicy::Fixed(2))
}

fn chi_square_with(
    strategy: Strategy,
    sampling: SamplingConfig,
    variant: RejectionVariant,
    gamma: GammaPolicy,
) -> ChiSquare {
    let expected = exact_joint(&sampling);
    let observed = sampled_joint(strategy, &config(sampling, variant, gamma.clone()));
    let outcome = chi_square_test(&observed, &expected, 5.0);
    eprintln!("{strategy:?} {variant:?} {gamma:?}: {outcome:?}");
    outcome
}

/// q's peak is 0.7 and its other tokens 0.05–0.15: stopping below 0.5 ends a
/// proposal after every draft off the peak, so proposals vary in length with
/// what was drawn.
fn confident() -> GammaPolicy {
    GammaPolicy::Confident {
        max: 3,
        min_prob: 0.5,
    }
}

fn plain_sampling() -> SamplingConfig {
    SamplingConfig::random(1.0, 0)
}

/// Temperature, top-k and top-p all bite on a 4-token vocabulary: some drafts
/// fall outside the target's top-k and must always be rejected.
fn warped_sampling() -> SamplingConfig {
    SamplingConfig::random(0.8, 0).with_top_k(3).with_top_p(0.9)
}

#[test]
fn plain_sampling_matches_the_target() {
    let outcome = chi_square(Strategy::Plain, plain_sampling(), RejectionVariant::Exact);
    assert!(outcome.p_value > SIGNIFICANCE, "{outcome:?}");
}

#[test]
fn speculative_sampling_matches_the_target() {
    let outcome = chi_square(
        Strategy::Speculative,
        plain_sampling(),
        RejectionVariant::Exact,
    );
    assert!(outcome.p_value > SIGNIFICANCE, "{outcome:?}");
}

#[test]
fn speculative_sampling_with_warping_matches_the_target() {
    let outcome = chi_square(
        Strategy::Speculative,
        warped_sampling(),
        RejectionVariant::Exact,
    );
    assert!(outcome.p_value > SIGNIFICANCE, "{outcome:?}");
}

#[test]
fn speculative_sampling_with_a_wider_draft_matches_the_target() {
    for sampling in [plain_sampling(), warped_sampling()] {
        let outcome = chi_square(Strategy::WideSpeculative, sampling, RejectionVariant::Exact);
        assert!(outcome.p_value > SIGNIFICANCE, "{outcome:?}");
    }
}

#[test]
fn speculative_sampling_with_confidence_stops_matches_the_target() {
    for sampling in [plain_sampling(), warped_sampling()] {
        let outcome = chi_square_with(
            Strategy::Speculative,
            sampling,
            RejectionVariant::Exact,
            confident(),
        );
        assert!(outcome.p_value > SIGNIFICANCE, "{outcome:?}");
    }
}

#[test]
fn confidence_stops_do_not_hide_a_biased_residual() {
    let outcome = chi_square_with(
        Strategy::Speculative,
        plain_sampling(),
        RejectionVariant::ResampleFromTarget,
        confident(),
    );
    assert!(outcome.p_value < SIGNIFICANCE, "{outcome:?}");
}

#[test]
fn speculative_without_residual_is_detected() {
    let outcome = chi_square(
        Strategy::Speculative,
        plain_sampling(),
        RejectionVariant::ResampleFromTarget,
    );
    assert!(outcome.p_value < SIGNIFICANCE, "{outcome:?}");
}

#[test]
fn nasd_sampling_matches_the_target() {
    let outcome = chi_square(
        Strategy::Nasd { filler: None },
        plain_sampling(),
        RejectionVariant::Exact,
    );
    assert!(outcome.p_value > SIGNIFICANCE, "{outcome:?}");
}

#[test]
fn nasd_sampling_with_filler_and_warping_matches_the_target() {
    let outcome = chi_square(
        Strategy::Nasd { filler: Some(2) },
        warped_sampling(),
        RejectionVariant::Exact,
    );
    assert!(outcome.p_value > SIGNIFICANCE, "{outcome:?}");
}

#[test]
fn nasd_with_fresh_draw_after_rejection_is_detected() {
    let outcome = chi_square(
        Strategy::Nasd { filler: None },
        plain_sampling(),
        RejectionVariant::ResampleFromTarget,
    );
    assert!(outcome.p_value < SIGNIFICANCE, "{outcome:?}");
}
