//! EOS, the token budget, stop strings and cancellation, including when one
//! step emits several tokens. `run_checked` asserts after every step that the
//! caches hold exactly what was emitted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::support::{counting_lm, counting_lm_except, greedy, letters, run_checked, Strategy};
use crate::error::DecodeError;
use crate::gamma::{GammaPolicy, GammaRule};
use crate::generate::{generate, GenerationConfig, Hooks, Mode};
use crate::trace::{GenerationEvent, StopReason, TokenOrigin};

use TokenOrigin::{AcceptedDraft, Corrected, NgramHit};

fn perfect_draft() -> Strategy {
    Strategy::Speculative(Box::new(counting_lm()))
}

fn with_eos(mut config: GenerationConfig, eos: u32) -> GenerationConfig {
    config.eos_token_ids.insert(eos);
    config
}

fn with_stop(mut config: GenerationConfig, stop: &str) -> GenerationConfig {
    config.stop_strings.push(stop.to_owned());
    config
}

#[test]
fn eos_inside_an_accepted_draft_run() {
    // Drafts 1 2 3 0 are all right, but 3 is EOS: the run ends there.
    let config = with_eos(greedy(20, GammaPolicy::Fixed(4)), 3);
    let run = run_checked(counting_lm(), perfect_draft(), &[0], &config, None);
    let result = &run.result;
    assert_eq!(result.tokens, vec![1, 2, 3]);
    assert_eq!(result.origins, vec![AcceptedDraft; 3]);
    assert_eq!(result.summary.stop_reason, StopReason::Eos { token: 3 });
    let step = &result.steps[0];
    assert_eq!((step.drafts.len(), step.judged, step.accepted), (4, 3, 3));
    assert_eq!(step.final_token, None);
    assert_eq!(result.summary.alpha, Some(1.0));
}

#[test]
fn eos_inside_an_ngram_run() {
    let config = with_eos(greedy(20, GammaPolicy::Fixed(4)), 3);
    let strategy = Strategy::Nasd { n: 3, filler: None };
    let run = run_checked(counting_lm(), strategy, &[0, 1, 2, 3, 0], &config, None);
    assert_eq!(run.result.tokens, vec![1, 2, 3]);
    assert_eq!(run.result.origins, vec![NgramHit; 3]);
    assert_eq!(run.result.summary.stop_reason, StopReason::Eos { token: 3 });
}

#[test]
fn eos_as_the_corrected_token() {
    // The draft proposes 0 where the target wants EOS 3.
    let draft = counting_lm_except(|position, _| (position == 3).then_some(0));
    let config = with_eos(greedy(20, GammaPolicy::Fixed(4)), 3);
    let run = run_checked(
        counting_lm(),
        Strategy::Speculative(Box::new(draft)),
        &[0],
        &config,
        None,
    );
    assert_eq!(run.result.tokens, vec![1, 2, 3]);
    assert_eq!(
        run.result.origins,
        vec![AcceptedDraft, AcceptedDraft, Corrected]
    );
    assert_eq!(run.result.summary.stop_reason, StopReason::Eos { token: 3 });
}

#[test]
fn budget_inside_a_run_clamps_gamma() {
    // γ 8 with 5 tokens allowed: 4 drafts and the bonus fill the budget.
    let run = run_checked(
        counting_lm(),
        perfect_draft(),
        &[0],
        &greedy(5, GammaPolicy::Fixed(8)),
        None,
    );
    let result = &run.result;
    assert_eq!(result.tokens, vec![1, 2, 3, 0, 1]);
    assert_eq!(result.steps.len(), 1);
    let gamma = &result.steps[0].gamma;
    assert_eq!(
        (gamma.gamma, gamma.policy_gamma, gamma.rule),
        (4, 8, GammaRule::Budget)
    );
    assert_eq!(result.summary.stop_reason, StopReason::MaxNewTokens);

    for max_new in 1..=9 {
        let strategy = Strategy::Nasd { n: 3, filler: None };
        let config = greedy(max_new, GammaPolicy::Fixed(8));
        let run = run_checked(counting_lm(), strategy, &[0, 1, 2, 3, 0], &config, None);
        assert_eq!(run.result.tokens.len(), max_new);
        assert_eq!(run.result.summary.stop_reason, StopReason::MaxNewTokens);
    }
}

#[test]
fn zero_budget_does_nothing() {
    let run = run_checked(
        counting_lm(),
        perfect_draft(),
        &[0],
        &greedy(0, GammaPolicy::Fixed(3)),
        None,
    );
    assert!(run.result.tokens.is_empty());
    assert_eq!(run.target.forwards, 0);
    assert_eq!(run.result.summary.stop_reason, StopReason::MaxNewTokens);
}

#[test]
fn stop_string_inside_a_run() {
    // Output b c d a b arrives in one step; "da" cuts it to "bc".
    let config = with_stop(greedy(20, GammaPolicy::Fixed(4)), "da");
    let run = run_checked(
        counting_lm(),
        perfect_draft(),
        &[0],
        &config,
        Some(&letters),
    );
    let result = &run.result;
    assert_eq!(result.tokens, vec![1, 2]);
    assert_eq!(result.text.as_deref(), Some("bc"));
    assert_eq!(
        result.summary.stop_reason,
        StopReason::StopString { stop: "da".into() }
    );
    assert_eq!(result.steps[0].emitted.len(), 2);
    assert_eq!(result.summary.new_tokens, 2);
}

#[test]
fn overlapping_stop_strings_cut_where_plain_decoding_cuts() {
    // Output b c d …: plain stops at "c" (text "b") before "bcd" is complete; a step
    // emitting b c d at once must not let the longer, earlier-starting "bcd" win.
    let mut config = greedy(20, GammaPolicy::Fixed(4));
    config.stop_strings = vec!["c".into(), "bcd".into()];
    let plain = run_checked(
        counting_lm(),
        Strategy::Plain,
        &[0],
        &config,
        Some(&letters),
    );
    assert_eq!(plain.result.tokens, vec![1]);
    assert_eq!(plain.result.text.as_deref(), Some("b"));
    for strategy in [perfect_draft(), Strategy::Nasd { n: 3, filler: None }] {
        let prompt = [0, 1, 2, 3, 0];
        let plain = run_checked(
            counting_lm(),
            Strategy::Plain,
            &prompt,
            &config,
            Some(&letters),
        );
        let run = run_checked(counting_lm(), strategy, &prompt, &config, Some(&letters));
        assert_eq!(run.result.tokens, plain.result.tokens);
        assert_eq!(run.result.text, plain.result.text);
        assert_eq!(run.result.text.as_deref(), Some("b"));
        assert_eq!(
            run.result.summary.stop_reason,
            StopReason::StopString { stop: "c".into() }
        );
    }
}

#[test]
fn stop_string_reaching_back_into_an_earlier_step() {
    // Plain decoding emits one letter per step; "da" completes in step 3 but
    // began with step 2's "d", which is retracted.
    let config = with_stop(greedy(20, GammaPolicy::Fixed(1)), "da");
    let run = run_checked(
        counting_lm(),
        Strategy::Plain,
        &[0],
        &config,
        Some(&letters),
    );
    let result = &run.result;
    assert_eq!(result.tokens, vec![1, 2]);
    assert_eq!(result.text.as_deref(), Some("bc"));
    assert_eq!(result.steps.len(), 4);
    assert_eq!(result.steps[3].retracted, 1);
    assert!(result.steps[3].emitted.is_empty());
    assert_eq!(result.summary.new_tokens, 2);
}

#[test]
fn text_without_a_stop_is_the_decoded_output() {
    let run = run_checked(
        counting_lm(),
        Strategy::Plain,
        &[0],
        &greedy(3, GammaPolicy::Fixed(1)),
        Some(&letters),
    );
    assert_eq!(run.result.text.as_deref(), Some("bcd"));
}

#[test]
fn cancel_keeps_what_was_produced() {
    for strategy in ["plain", "speculative"] {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let mut target = counting_lm();
        let mut draft = counting_lm();
        let mut observe = |event: &GenerationEvent| {
            if let GenerationEvent::Step(step) = event {
                if step.step == 1 {
                    flag.store(true, Ordering::Relaxed);
                }
            }
        };
        let mode = match strategy {
            "plain" => Mode::Plain,
            _ => Mode::Speculative { draft: &mut draft },
        };
        let hooks = Hooks::new()
            .with_observer(&mut observe)
            .with_cancel(Arc::clone(&cancel));
        let config = greedy(100, GammaPolicy::Fixed(3));
        let result = generate(&mut target, mode, &[0], &config, hooks).unwrap();
        // Two steps ran: 2 tokens plain, 2 × (3 drafts + bonus) speculative.
        let expected = if strategy == "plain" { 2 } else { 8 };
        assert_eq!(result.tokens.len(), expected, "{strategy}");
        assert_eq!(result.steps.len(), 2);
        assert!(result.summary.cancelled);
        assert_eq!(result.summary.stop_reason, StopReason::Cancelled);
        assert_eq!(result.summary.new_tokens, expected);
    }
}

#[test]
fn cancel_before_the_first_step() {
    let cancel = Arc::new(AtomicBool::new(true));
    let result = generate(
        &mut counting_lm(),
        Mode::Plain,
        &[0],
        &greedy(10, GammaPolicy::Fixed(1)),
        Hooks::new().with_cancel(cancel),
    )
    .unwrap();
    assert!(result.tokens.is_empty() && result.summary.cancelled);
    assert_eq!(result.summary.time_to_first_token_ms, None);
}

#[test]
fn bad_requests_are_refused() {
    let run = |prompt: &[u32], mode: Mode<'_>, config: &GenerationConfig| {
        generate(&mut counting_lm(), mode, prompt, config, Hooks::new()).unwrap_err()
    };
    let config = greedy(5, GammaPolicy::Fixed(2));
    assert!(matches!(
        run(&[], Mode::Plain, &config),
        DecodeError::EmptyPrompt
    ));
    let nasd = Mode::Nasd {
        ngram_n: 1,
        filler_top_k: None,
    };
    assert!(matches!(
        run(&[0], nasd, &config),
        DecodeError::InvalidConfig(_)
    ));
    let stops = with_stop(config.clone(), "x");
    assert!(matches!(
        run(&[0], Mode::Plain, &stops),
        DecodeError::InvalidConfig(_)
    ));
    let mut hot = config.clone();
    hot.sampling.temperature = -1.0;
    assert!(matches!(
        run(&[0], Mode::Plain, &hot),
        DecodeError::InvalidConfig(_)
    ));
    let no_filler = Mode::Nasd {
        ngram_n: 3,
        filler_top_k: Some(0),
    };
    let err = run(&[0], no_filler, &config);
    assert!(
        matches!(&err, DecodeError::InvalidConfig(m) if m.contains("filler_top_k")),
        "{err}"
    );
    for bad in [f64::NAN, -0.5, f64::INFINITY] {
        let mut bad_cost = greedy(5, GammaPolicy::Goodput { max: 4 });
        bad_cost.draft_cost_ratio = Some(bad);
        let err = run(&[0], Mode::Plain, &bad_cost);
        assert!(err.to_string().contains("draft_cost_ratio"), "{err}");
    }
    let bad_gamma = greedy(5, GammaPolicy::Goodput { max: 0 });
    let nasd = Mode::Nasd {
        ngram_n: 3,
        filler_top_k: None,
    };
    assert!(matches!(
        run(&[0], nasd, &bad_gamma),
        DecodeError::InvalidConfig(_)
    ));
}
