//! Greedy speculative and greedy NASD decoding emit exactly what plain greedy
//! decoding emits, token for token, whatever the draft and γ.

use super::support::{greedy, run_checked, Strategy};
use crate::gamma::GammaPolicy;
use crate::model::CausalLm;
use crate::testing::{PaddedLm, RandomNgramLm};
use crate::trace::TokenOrigin;

const VOCAB: usize = 12;
const NEW_TOKENS: usize = 40;

/// Prompts with repeated stretches, so NASD has n-grams to draft from.
const PROMPTS: [&[u32]; 3] = [
    &[1, 2, 3, 4, 1, 2, 3, 4, 1, 2],
    &[7, 7, 5, 9, 0, 7, 5, 9, 0, 7, 5],
    &[3],
];

fn target(seed: u64) -> RandomNgramLm {
    RandomNgramLm::new(seed, VOCAB, 2, 4.0)
}

/// (name, target, draft).
type Pair = (&'static str, Box<dyn CausalLm>, Box<dyn CausalLm>);

/// A target and a draft for it: the target itself as draft, a noisy copy
/// (weaker draft), an unrelated model, and a noisy copy drafting for a target
/// whose vocabulary is padded wider (Qwen-style), so the target's logits are
/// wider than the draft's.
fn pairs(seed: u64) -> Vec<Pair> {
    let base = target(seed);
    let noisy = || Box::new(base.with_noise(seed + 100, 2.0));
    vec![
        ("perfect", Box::new(base.clone()), Box::new(base.clone())),
        ("noisy", Box::new(base.clone()), noisy()),
        (
            "unrelated",
            Box::new(base.clone()),
            Box::new(RandomNgramLm::new(seed + 200, VOCAB, 2, 4.0)),
        ),
        (
            "padded target",
            Box::new(PaddedLm::new(base.clone(), 4)),
            noisy(),
        ),
    ]
}

#[test]
fn speculative_greedy_equals_plain_greedy() {
    let mut accepted_somewhere = false;
    let mut rejected_somewhere = false;
    for seed in 0..4 {
        for prompt in PROMPTS {
            let plain = run_checked(
                target(seed),
                Strategy::Plain,
                prompt,
                &greedy(NEW_TOKENS, GammaPolicy::Fixed(1)),
                None,
            )
            .result;
            assert_eq!(plain.tokens.len(), NEW_TOKENS);
            assert!(plain.origins.iter().all(|&o| o == TokenOrigin::Target));
            for gamma in 1..=8 {
                for (name, target, draft) in pairs(seed) {
                    let config = greedy(NEW_TOKENS, GammaPolicy::Fixed(gamma));
                    let run =
                        run_checked(target, Strategy::Speculative(draft), prompt, &config, None);
                    assert_eq!(
                        run.result.tokens, plain.tokens,
                        "seed {seed}, γ {gamma}, {name} draft, prompt {prompt:?}"
                    );
                    let summary = &run.result.summary;
                    accepted_somewhere |= summary.accepted > 0;
                    rejected_somewhere |= summary.accepted < summary.drafted;
                    if name == "perfect" {
                        assert_eq!(summary.alpha, Some(1.0));
                    }
                }
            }
        }
    }
    assert!(accepted_somewhere && rejected_somewhere);
}

#[test]
fn nasd_greedy_equals_plain_greedy() {
    for seed in 0..4 {
        for prompt in PROMPTS {
            let plain = run_checked(
                target(seed),
                Strategy::Plain,
                prompt,
                &greedy(NEW_TOKENS, GammaPolicy::Fixed(1)),
                None,
            )
            .result;
            let mut drafted = 0;
            let mut accepted = 0;
            for gamma in 1..=8 {
                for (n, filler) in [(2, None), (3, None), (4, Some(2))] {
                    let run = run_checked(
                        target(seed),
                        Strategy::Nasd { n, filler },
                        prompt,
                        &greedy(NEW_TOKENS, GammaPolicy::Fixed(gamma)),
                        None,
                    );
                    assert_eq!(
                        run.result.tokens, plain.tokens,
                        "seed {seed}, γ {gamma}, n {n}, filler {filler:?}, prompt {prompt:?}"
                    );
                    drafted += run.result.summary.drafted;
                    accepted += run.result.summary.accepted;
                }
            }
            // The repetition must actually make NASD draft and hit.
            assert!(
                drafted > 0 && accepted > 0,
                "seed {seed}, prompt {prompt:?}"
            );
        }
    }
}

#[test]
fn adaptive_gamma_keeps_greedy_exact() {
    for seed in 0..3 {
        let prompt = PROMPTS[0];
        let plain = run_checked(
            target(seed),
            Strategy::Plain,
            prompt,
            &greedy(NEW_TOKENS, GammaPolicy::Fixed(1)),
            None,
        )
        .result;
        for policy in [
            GammaPolicy::Heuristic {
                start: 3,
                min: 1,
                max: 8,
            },
            GammaPolicy::Goodput { max: 8 },
            GammaPolicy::Confident {
                max: 8,
                min_prob: 0.6,
            },
        ] {
            let config = greedy(NEW_TOKENS, policy);
            let draft = Box::new(target(seed).with_noise(seed + 100, 2.0));
            let speculative = run_checked(
                target(seed),
                Strategy::Speculative(draft),
                prompt,
                &config,
                None,
            );
            assert_eq!(speculative.result.tokens, plain.tokens);
            let nasd = run_checked(
                target(seed),
                Strategy::Nasd { n: 3, filler: None },
                prompt,
                &config,
                None,
            );
            assert_eq!(nasd.result.tokens, plain.tokens);
        }
    }
}

#[test]
fn a_draft_wider_than_the_target_drafts_only_the_targets_ids() {
    use super::support::counting_lm;
    use crate::sampling::SamplingConfig;
    use crate::testing::TableLm;
    // The draft's rows are 6 wide and rate ids 4 and 5, which the 4-token target does
    // not have, above everything: q must be cut to the target's width, or the target
    // is fed ids it has no embedding for.
    let wide_draft = || {
        TableLm::new(6, |_, previous| {
            let next = (previous.last().unwrap() + 1) % 4;
            (0..6u32)
                .map(|t| match t {
                    4 | 5 => 9.0,
                    t if t == next => 8.0,
                    _ => 0.0,
                })
                .collect()
        })
    };
    let plain = run_checked(
        counting_lm(),
        Strategy::Plain,
        &[0],
        &greedy(12, GammaPolicy::Fixed(1)),
        None,
    )
    .result;
    for sampling in [SamplingConfig::greedy(), SamplingConfig::random(1.0, 3)] {
        let config = crate::generate::GenerationConfig {
            sampling: sampling.clone(),
            ..greedy(12, GammaPolicy::Fixed(3))
        };
        let run = run_checked(
            counting_lm(),
            Strategy::Speculative(Box::new(wide_draft())),
            &[0],
            &config,
            None,
        )
        .result;
        let drafts = run.steps.iter().flat_map(|s| &s.drafts);
        assert!(drafts.clone().count() > 0);
        assert!(drafts.clone().all(|d| d.token < 4), "{sampling:?}");
        if sampling.is_greedy() {
            assert_eq!(run.tokens, plain.tokens);
            assert_eq!(run.summary.alpha, Some(1.0));
        }
    }
}
