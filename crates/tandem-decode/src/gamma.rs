//! Choosing γ, the number of tokens drafted per step.

use serde::{Deserialize, Serialize};

/// How γ is chosen for each step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum GammaPolicy {
    /// Always draft `k` tokens.
    Fixed(usize),
    /// Hugging Face's heuristic: +2 after a step whose drafts were all
    /// accepted, −1 otherwise, kept within `min..=max`.
    Heuristic {
        start: usize,
        min: usize,
        max: usize,
    },
    /// The γ in `1..=max` that maximizes [`expected_speedup`] at the running
    /// acceptance rate and a draft/target cost ratio fixed for the run (measured
    /// before it, see `GenerationConfig::draft_cost_ratio`): γ then depends only on
    /// what was emitted, so a seed fixes the tokens.
    Goodput { max: usize },
    /// Draft up to `max` tokens, stopping after the first one the draft model gives
    /// less than `min_prob` (that token is still proposed). A draft's own probability
    /// predicts whether the target accepts it, so the drafts a fixed γ would waste
    /// after an unsure one are never computed, and runs of sure tokens can be long
    /// (transformers' `assistant_confidence_threshold`). Exact like every rule: when
    /// to stop depends only on the draft's own outputs. n-gram drafts (q = 1) always
    /// run to `max`.
    Confident { max: usize, min_prob: f32 },
}

impl GammaPolicy {
    /// The most drafts of the default [`Confident`](Self::Confident) rule …
    pub const CONFIDENT_MAX: usize = 8;
    /// … and its threshold: about the fastest on the default suite with the
    /// Qwen2.5-Coder pair (docs/benchmarks.md). The app's default is the same.
    pub const CONFIDENT_MIN_PROB: f32 = 0.7;

    pub fn validate(&self) -> Result<(), String> {
        match *self {
            GammaPolicy::Fixed(_) => Ok(()),
            GammaPolicy::Heuristic { start, min, max } => {
                if min == 0 || min > start || start > max {
                    Err(format!(
                        "heuristic γ needs 1 <= min <= start <= max, got min {min}, start {start}, max {max}"
                    ))
                } else {
                    Ok(())
                }
            }
            GammaPolicy::Goodput { max: 0 } => Err("goodput γ needs max >= 1".into()),
            GammaPolicy::Goodput { .. } => Ok(()),
            GammaPolicy::Confident { max: 0, .. } => Err("confident γ needs max >= 1".into()),
            GammaPolicy::Confident { min_prob, .. } if !(0.0..=1.0).contains(&min_prob) => Err(
                format!("confident γ needs a probability in 0..=1, got {min_prob}"),
            ),
            GammaPolicy::Confident { .. } => Ok(()),
        }
    }

    /// The draft probability below which a model drafter stops proposing (0: never).
    pub fn min_draft_prob(&self) -> f32 {
        match *self {
            GammaPolicy::Confident { min_prob, .. } => min_prob,
            _ => 0.0,
        }
    }
}

/// Which rule set a step's γ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GammaRule {
    /// Plain decoding: nothing is drafted.
    Plain,
    Fixed,
    Heuristic,
    /// The goodput rule while α still came from a prior.
    GoodputPrior,
    Goodput,
    /// Up to `max` drafts, fewer where the draft grew unsure.
    Confident,
    /// The policy wanted more, but only `remaining budget − 1` drafts can be
    /// used (the bonus token fills the last slot).
    Budget,
}

/// The γ of one step and how it was chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GammaChoice {
    /// γ used.
    pub gamma: usize,
    /// γ the policy asked for, before the budget clamp.
    pub policy_gamma: usize,
    pub rule: GammaRule,
    /// α the goodput rule used (prior or measured); `None` for other rules.
    pub alpha_estimate: Option<f64>,
    /// Draft/target cost ratio the goodput rule used; `None` for other rules.
    pub cost_ratio: Option<f64>,
}

impl GammaChoice {
    pub fn plain() -> Self {
        Self {
            gamma: 0,
            policy_gamma: 0,
            rule: GammaRule::Plain,
            alpha_estimate: None,
            cost_ratio: None,
        }
    }

    /// Caps γ at `max`, recording the budget as the rule when it bites.
    pub fn clamped(mut self, max: usize) -> Self {
        if self.gamma > max {
            self.gamma = max;
            self.rule = GammaRule::Budget;
        }
        self
    }
}

/// α assumed by the goodput rule until [`MIN_DRAFTS_FOR_ALPHA`] drafts were judged.
pub const ALPHA_PRIOR: f64 = 0.6;
/// Judged drafts needed before the running α replaces [`ALPHA_PRIOR`].
pub const MIN_DRAFTS_FOR_ALPHA: usize = 16;
/// Cost ratio assumed for a draft model when none was measured before the run.
pub const MODEL_COST_RATIO_PRIOR: f64 = 0.1;

/// Expected tokens per unit of target time for one step relative to plain
/// decoding: `(1 − α^{γ+1}) / ((1 − α)(γc + 1))`, where α is the per-draft
/// acceptance probability, γ the drafts per step and c the cost of one draft
/// token relative to one target forward.
///
/// The numerator is evaluated as the geometric sum `Σ_{i=0..=γ} α^i`, which
/// equals the closed form for α < 1, gives the limit γ + 1 at α = 1, and has
/// no 0/0 cancellation near 1.
pub fn expected_speedup(alpha: f64, gamma: usize, c: f64) -> f64 {
    let alpha = alpha.clamp(0.0, 1.0);
    let mut expected_tokens = 0.0;
    let mut power = 1.0;
    for _ in 0..=gamma {
        expected_tokens += power;
        power *= alpha;
    }
    expected_tokens / (gamma as f64 * c + 1.0)
}

/// The γ in `1..=max` with the highest [`expected_speedup`] (smallest γ on ties).
///
/// γ = 0 is never chosen: a step without drafts would stop α from being
/// measured, so a run could never recover from a pessimistic estimate.
pub fn goodput_gamma(alpha: f64, c: f64, max: usize) -> usize {
    let mut best = (1, expected_speedup(alpha, 1, c));
    for gamma in 2..=max {
        let speedup = expected_speedup(alpha, gamma, c);
        if speedup > best.1 {
            best = (gamma, speedup);
        }
    }
    best.0
}

/// What the controller learns from a finished step: counts only. Timings are left
/// out on purpose: γ read from the clock would change from run to run, and with it
/// the random draws, so a seed would no longer fix the tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepObservation {
    /// Drafts proposed.
    pub drafted: usize,
    /// Drafts the target ruled on.
    pub judged: usize,
    pub accepted: usize,
}

/// Keeps the state a [`GammaPolicy`] needs across steps.
#[derive(Clone, Debug)]
pub struct GammaController {
    policy: GammaPolicy,
    heuristic_gamma: usize,
    judged: usize,
    accepted: usize,
    cost_ratio: f64,
}

impl GammaController {
    /// `cost_ratio`: the draft/target cost ratio the goodput rule assumes for the
    /// whole run (measured before it, or [`MODEL_COST_RATIO_PRIOR`] for a draft
    /// model, 0 for n-gram drafts).
    pub fn new(policy: GammaPolicy, cost_ratio: f64) -> Self {
        let heuristic_gamma = match policy {
            GammaPolicy::Heuristic { start, .. } => start,
            _ => 0,
        };
        Self {
            policy,
            heuristic_gamma,
            judged: 0,
            accepted: 0,
            cost_ratio,
        }
    }

    /// γ for the next step.
    pub fn choose(&self) -> GammaChoice {
        match self.policy {
            GammaPolicy::Fixed(k) => GammaChoice {
                gamma: k,
                policy_gamma: k,
                rule: GammaRule::Fixed,
                alpha_estimate: None,
                cost_ratio: None,
            },
            GammaPolicy::Heuristic { .. } => GammaChoice {
                gamma: self.heuristic_gamma,
                policy_gamma: self.heuristic_gamma,
                rule: GammaRule::Heuristic,
                alpha_estimate: None,
                cost_ratio: None,
            },
            GammaPolicy::Confident { max, .. } => GammaChoice {
                gamma: max,
                policy_gamma: max,
                rule: GammaRule::Confident,
                alpha_estimate: None,
                cost_ratio: None,
            },
            GammaPolicy::Goodput { max } => {
                let (alpha, alpha_measured) = self.alpha_estimate();
                let c = self.cost_ratio;
                let gamma = goodput_gamma(alpha, c, max);
                GammaChoice {
                    gamma,
                    policy_gamma: gamma,
                    rule: if alpha_measured {
                        GammaRule::Goodput
                    } else {
                        GammaRule::GoodputPrior
                    },
                    alpha_estimate: Some(alpha),
                    cost_ratio: Some(c),
                }
            }
        }
    }

    pub fn observe(&mut self, step: &StepObservation) {
        if let GammaPolicy::Heuristic { min, max, .. } = self.policy {
            // A step without drafts says nothing about the draft's quality.
            if step.drafted > 0 {
                self.heuristic_gamma = if step.accepted == step.drafted {
                    self.heuristic_gamma + 2
                } else {
                    self.heuristic_gamma.saturating_sub(1)
                }
                .clamp(min, max);
            }
        }
        self.judged += step.judged;
        self.accepted += step.accepted;
    }

    /// Running α, or [`ALPHA_PRIOR`] while fewer than
    /// [`MIN_DRAFTS_FOR_ALPHA`] drafts were judged; the flag says which.
    pub fn alpha_estimate(&self) -> (f64, bool) {
        if self.judged >= MIN_DRAFTS_FOR_ALPHA {
            (self.accepted as f64 / self.judged as f64, true)
        } else {
            (ALPHA_PRIOR, false)
        }
    }

    /// The cost of one drafted token over one target forward, fixed for the run.
    pub fn cost_ratio(&self) -> f64 {
        self.cost_ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn step(drafted: usize, accepted: usize) -> StepObservation {
        StepObservation {
            drafted,
            judged: drafted,
            accepted,
        }
    }

    #[test]
    fn expected_speedup_matches_hand_computed_values() {
        // (1 − 0.8^5) / (0.2 · 1.4) = 0.67232 / 0.28
        assert_close(expected_speedup(0.8, 4, 0.1), 0.67232 / 0.28);
        assert_close(expected_speedup(0.8, 4, 0.1), 2.401_142_857_142_857);
        // (1 − 0.36) / (0.4 · 1.5)
        assert_close(expected_speedup(0.6, 1, 0.5), 0.64 / 0.6);
        // α = 0: only the target's own token, at the cost of γ drafts.
        assert_close(expected_speedup(0.0, 3, 0.2), 1.0 / 1.6);
        // γ = 0 is plain decoding.
        assert_close(expected_speedup(0.7, 0, 0.3), 1.0);
    }

    #[test]
    fn expected_speedup_handles_the_alpha_one_limit() {
        assert_close(expected_speedup(1.0, 4, 0.25), 5.0 / 2.0);
        let near = expected_speedup(1.0 - 1e-12, 4, 0.25);
        assert!((near - 2.5).abs() < 1e-9);
        assert!(expected_speedup(1.0, 7, 0.0).is_finite());
    }

    #[test]
    fn goodput_picks_the_best_gamma() {
        // α 0.6, c 0.1: γ=3 gives 2.176 / 1.3 = 1.674 > γ=4's 2.3056 / 1.4 = 1.647.
        assert_eq!(goodput_gamma(0.6, 0.1, 8), 3);
        // α 0.8, c 0.1: γ=6 gives 2.4697 > γ=5's 2.4595 and γ=7's 2.4477.
        assert_eq!(goodput_gamma(0.8, 0.1, 8), 6);
        assert_eq!(goodput_gamma(0.8, 0.1, 4), 4);
        // α 0.5, c 0.5: γ=1 gives 1.0, every longer draft less.
        assert_eq!(goodput_gamma(0.5, 0.5, 8), 1);
        // Free drafts (NASD): always the most.
        assert_eq!(goodput_gamma(0.3, 0.0, 6), 6);
    }

    #[test]
    fn heuristic_follows_hf_rule() {
        let policy = GammaPolicy::Heuristic {
            start: 3,
            min: 1,
            max: 6,
        };
        let mut controller = GammaController::new(policy, 0.0);
        let mut seen = vec![controller.choose().gamma];
        // all accepted: 3→5; all: 5→6 (max); miss: 6→5; miss: 5→4; 0 drafts: 4;
        // miss ×4: 3, 2, 1, 1 (min).
        for observation in [
            step(3, 3),
            step(5, 5),
            step(6, 2),
            step(5, 0),
            step(0, 0),
            step(4, 3),
            step(3, 1),
            step(2, 0),
            step(1, 0),
        ] {
            controller.observe(&observation);
            seen.push(controller.choose().gamma);
        }
        assert_eq!(seen, vec![3, 5, 6, 5, 4, 4, 3, 2, 1, 1]);
        assert_eq!(controller.choose().rule, GammaRule::Heuristic);
    }

    #[test]
    fn goodput_uses_the_alpha_prior_then_the_running_alpha_at_a_fixed_cost() {
        let mut controller =
            GammaController::new(GammaPolicy::Goodput { max: 8 }, MODEL_COST_RATIO_PRIOR);
        let first = controller.choose();
        assert_eq!(first.rule, GammaRule::GoodputPrior);
        assert_eq!(first.alpha_estimate, Some(ALPHA_PRIOR));
        assert_eq!(first.cost_ratio, Some(0.1));
        assert_eq!(first.gamma, 3); // α 0.6, c 0.1, as above

        controller.observe(&step(4, 4));
        // Then five steps of 4 drafts with 3 accepted.
        for _ in 0..5 {
            controller.observe(&step(4, 3));
        }
        // α = (4 + 5·3) / (4 + 5·4) = 19 / 24; c stays what it was given.
        assert_eq!(controller.alpha_estimate(), (19.0 / 24.0, true));
        assert_eq!(controller.cost_ratio(), 0.1);
        let choice = controller.choose();
        assert_eq!(choice.cost_ratio, Some(0.1));
        assert_eq!(choice.rule, GammaRule::Goodput);
        assert_eq!(choice.gamma, goodput_gamma(19.0 / 24.0, 0.1, 8));
        assert_eq!(choice.gamma, 6);
    }

    #[test]
    fn budget_clamp_is_recorded() {
        let choice = GammaController::new(GammaPolicy::Fixed(5), 0.0).choose();
        let clamped = choice.clone().clamped(2);
        assert_eq!((clamped.gamma, clamped.policy_gamma), (2, 5));
        assert_eq!(clamped.rule, GammaRule::Budget);
        assert_eq!(choice.clamped(7).rule, GammaRule::Fixed);
    }

    #[test]
    fn policies_are_validated() {
        assert!(GammaPolicy::Heuristic {
            start: 5,
            min: 1,
            max: 4
        }
        .validate()
        .is_err());
        assert!(GammaPolicy::Heuristic {
            start: 1,
            min: 0,
            max: 4
        }
        .validate()
        .is_err());
        assert!(GammaPolicy::Goodput { max: 0 }.validate().is_err());
        assert!(GammaPolicy::Fixed(4).validate().is_ok());
        let confident = |max, min_prob| GammaPolicy::Confident { max, min_prob }.validate();
        assert!(confident(0, 0.5).is_err());
        assert!(confident(4, 1.5).is_err());
        assert!(confident(4, -0.1).is_err());
        assert!(confident(4, f32::NAN).is_err());
        assert!(confident(8, 0.4).is_ok());
    }

    #[test]
    fn confident_asks_for_max_and_names_its_threshold() {
        let policy = GammaPolicy::Confident {
            max: 8,
            min_prob: 0.4,
        };
        let choice = GammaController::new(policy.clone(), 0.1).choose();
        assert_eq!((choice.gamma, choice.rule), (8, GammaRule::Confident));
        assert_eq!(policy.min_draft_prob(), 0.4);
        assert_eq!(GammaPolicy::Fixed(4).min_draft_prob(), 0.0);
    }
}
