//! α, τ, per-position acceptance, γ choices and cache traffic on cases small
//! enough to work out by hand. The target always predicts `last + 1` (mod 4)
//! from prompt [0], so token i of the sequence is i mod 4.

use super::support::{counting_lm, counting_lm_except, greedy, run_checked, Strategy};
use crate::gamma::{GammaPolicy, GammaRule};
use crate::generate::GenerationConfig;
use crate::sampling::SamplingConfig;
use crate::testing::{RandomNgramLm, TableLm};
use crate::trace::{EmittedToken, StepTrace, TokenOrigin};

use TokenOrigin::{AcceptedDraft, Bonus, Corrected, NgramHit, Target};

/// A draft that agrees with the target except at sequence indices ≡ 3 (mod 4),
/// where it proposes `last + 2`.
fn draft_wrong_at_3() -> Box<TableLm> {
    Box::new(counting_lm_except(|position, last| {
        (position % 4 == 3).then_some((last + 2) % 4)
    }))
}

fn per_step<T>(steps: &[StepTrace], f: impl Fn(&StepTrace) -> T) -> Vec<T> {
    steps.iter().map(f).collect()
}

#[test]
fn speculative_fixed_gamma_by_hand() {
    // γ = 2, 8 new tokens:
    // step 0: drafts 1 2 accepted, bonus 3            → 1 2 3
    // step 1: drafts 0 1 accepted, bonus 2            → 0 1 2
    // step 2: two tokens left, so γ = 1 (budget); the draft at index 7 is
    //         wrong (0), corrected                    → 3
    // step 3: one token left, so γ = 0 (budget)       → 0
    let run = run_checked(
        counting_lm(),
        Strategy::Speculative(draft_wrong_at_3()),
        &[0],
        &greedy(8, GammaPolicy::Fixed(2)),
        None,
    );
    let result = &run.result;
    assert_eq!(result.tokens, vec![1, 2, 3, 0, 1, 2, 3, 0]);
    assert_eq!(
        result.origins,
        vec![
            AcceptedDraft,
            AcceptedDraft,
            Bonus,
            AcceptedDraft,
            AcceptedDraft,
            Bonus,
            Corrected,
            Target
        ]
    );
    let steps = &result.steps;
    assert_eq!(per_step(steps, |s| s.drafts.len()), vec![2, 2, 1, 0]);
    assert_eq!(per_step(steps, |s| s.judged), vec![2, 2, 1, 0]);
    assert_eq!(per_step(steps, |s| s.accepted), vec![2, 2, 0, 0]);
    assert_eq!(per_step(steps, |s| s.gamma.gamma), vec![2, 2, 1, 0]);
    assert_eq!(
        per_step(steps, |s| s.gamma.rule),
        vec![
            GammaRule::Fixed,
            GammaRule::Fixed,
            GammaRule::Budget,
            GammaRule::Budget
        ]
    );
    assert_eq!(
        per_step(steps, |s| s.final_token),
        vec![
            Some(EmittedToken {
                token: 3,
                origin: Bonus
            }),
            Some(EmittedToken {
                token: 2,
                origin: Bonus
            }),
            Some(EmittedToken {
                token: 3,
                origin: Corrected
            }),
            Some(EmittedToken {
                token: 0,
                origin: Target
            }),
        ]
    );
    // Verified positions: both drafts and the bonus; then the rejection only.
    assert_eq!(per_step(steps, |s| s.verified.len()), vec![3, 3, 1, 1]);
    let indices: Vec<usize> = steps[0].verified.iter().map(|v| v.index).collect();
    assert_eq!(indices, vec![1, 2, 3]);
    let sure = 8f32.exp() / (8f32.exp() + 3.0);
    assert!((steps[0].verified[0].p_draft.unwrap() - sure).abs() < 1e-6);
    assert!((steps[2].verified[0].p_draft.unwrap() - (1.0 - sure) / 3.0).abs() < 1e-6);
    assert_eq!(steps[2].drafts[0].token, 0);
    assert!((steps[2].drafts[0].q - sure).abs() < 1e-6);
    assert_eq!(steps[0].verified[0].p_top[0].token, 1);
    assert_eq!(steps[0].drafts[0].q_top.len(), 4);

    let summary = &result.summary;
    assert_eq!((summary.drafted, summary.accepted), (5, 4));
    assert_eq!(summary.alpha, Some(0.8));
    assert_eq!(summary.tau, 2.0);
    let by_position: Vec<(usize, usize)> = summary
        .acceptance_by_position
        .iter()
        .map(|p| (p.drafted, p.accepted))
        .collect();
    assert_eq!(by_position, vec![(3, 2), (2, 2)]);
    assert_eq!(summary.acceptance_by_position[0].rate, 2.0 / 3.0);
    assert_eq!((summary.target_forwards, summary.draft_forwards), (4, 5));
    assert_eq!(summary.new_tokens, 8);
    assert!(summary.time_to_first_token_ms.is_some());
    assert!(summary.tokens_per_second > 0.0 && summary.wall_ms > 0.0);

    // Cache traffic: the target is fed prompt + 2 drafts, pending + 2 drafts,
    // pending + 1 draft, then the pending token: 3 + 3 + 2 + 1. The draft is
    // fed 0 then 1; the last draft and the bonus (2 3) together, then 0; and
    // again the last draft and the bonus (1 2).
    assert_eq!(run.target.tokens_fed, 9);
    assert_eq!(run.draft.as_ref().unwrap().tokens_fed, 7);
}

#[test]
fn heuristic_gamma_by_hand() {
    // start 2: step 0 drafts 2, all accepted + bonus → γ 4;
    // step 1 drafts idx 4–7, idx 7 wrong: 3 accepted + corrected → γ 3;
    // step 2 (5 left, so γ ≤ 4) drafts idx 8–10, all accepted + bonus → γ 4;
    // step 3: 1 left → γ 0 by the budget.
    let policy = GammaPolicy::Heuristic {
        start: 2,
        min: 1,
        max: 4,
    };
    let run = run_checked(
        counting_lm(),
        Strategy::Speculative(draft_wrong_at_3()),
        &[0],
        &greedy(12, policy),
        None,
    );
    let steps = &run.result.steps;
    assert_eq!(per_step(steps, |s| s.gamma.gamma), vec![2, 4, 3, 0]);
    assert_eq!(per_step(steps, |s| s.gamma.policy_gamma), vec![2, 4, 3, 4]);
    assert_eq!(
        per_step(steps, |s| s.gamma.rule),
        vec![
            GammaRule::Heuristic,
            GammaRule::Heuristic,
            GammaRule::Heuristic,
            GammaRule::Budget
        ]
    );
    assert_eq!(per_step(steps, |s| s.emitted.len()), vec![3, 4, 4, 1]);
    let summary = &run.result.summary;
    assert_eq!(summary.alpha, Some(8.0 / 9.0));
    assert_eq!(summary.tau, 3.0);
    let by_position: Vec<(usize, usize)> = summary
        .acceptance_by_position
        .iter()
        .map(|p| (p.drafted, p.accepted))
        .collect();
    assert_eq!(by_position, vec![(3, 3), (3, 3), (2, 2), (1, 0)]);
}

#[test]
fn nasd_by_hand() {
    // Prompt 0 1 2 with bigrams (n = 2): "2" and then "3" have no known
    // continuation, so the first two steps are plain. Then "0 → 1", "1 → 2",
    // "2 → 3", "3 → 0" chain into 4 drafts, all right, plus a bonus; the last
    // token is a plain step again (budget).
    let run = run_checked(
        counting_lm(),
        Strategy::Nasd { n: 2, filler: None },
        &[0, 1, 2],
        &greedy(8, GammaPolicy::Fixed(4)),
        None,
    );
    let result = &run.result;
    assert_eq!(result.tokens, vec![3, 0, 1, 2, 3, 0, 1, 2]);
    assert_eq!(
        result.origins,
        vec![Target, Target, NgramHit, NgramHit, NgramHit, NgramHit, Bonus, Target]
    );
    let steps = &result.steps;
    assert_eq!(per_step(steps, |s| s.drafts.len()), vec![0, 0, 4, 0]);
    assert!(steps[2]
        .drafts
        .iter()
        .all(|d| d.ngram_context_len == Some(1) && d.q == 1.0));
    let summary = &result.summary;
    assert_eq!(summary.alpha, Some(1.0));
    assert_eq!((summary.target_forwards, summary.draft_forwards), (4, 0));
    assert_eq!(summary.tau, 2.0);
    assert_eq!(run.target.tokens_fed, 3 + 1 + 1 + 5);
}

#[test]
fn caches_track_the_output_while_sampling() {
    // Random rejections at random places; `run_checked` asserts the cache
    // invariant after every step and that nothing was recomputed needlessly.
    for seed in 0..20 {
        let target = RandomNgramLm::new(seed, 10, 2, 2.0);
        let config = GenerationConfig {
            sampling: SamplingConfig::random(1.0, seed),
            max_new_tokens: 30,
            gamma: GammaPolicy::Heuristic {
                start: 4,
                min: 1,
                max: 6,
            },
            ..GenerationConfig::default()
        };
        let prompt = [1, 2, 3, 1, 2, 3];
        let draft = Box::new(target.with_noise(seed + 1, 2.0));
        let run = run_checked(
            target.clone(),
            Strategy::Speculative(draft),
            &prompt,
            &config,
            None,
        );
        assert_eq!(run.result.tokens.len(), 30);
        let run = run_checked(
            target,
            Strategy::Nasd {
                n: 3,
                filler: Some(3),
            },
            &prompt,
            &config,
            None,
        );
        assert_eq!(run.result.tokens.len(), 30);
    }
}
