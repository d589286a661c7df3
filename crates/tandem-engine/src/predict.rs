//! Predicting the speedup of a draft/target pair before racing it.
//!
//! Leviathan et al. (2023) give the expected speedup of speculative decoding with
//! per-draft acceptance rate α, γ drafts per step and draft cost c = t_draft / t_target:
//!
//! ```text
//! speedup(γ) = (1 − α^{γ+1}) / ((1 − α)(γc + 1))
//! ```
//!
//! The `1` in the denominator assumes that verifying γ + 1 tokens costs one target
//! forward. It does not quite (more rows through every matmul, more attention), so we
//! multiply that term by the measured verify cost r(γ) = t_verify(γ + 1) / t_target(1):
//!
//! ```text
//! speedup(γ) = (1 − α^{γ+1}) / ((1 − α)(γc + r(γ)))
//! ```
//!
//! α is measured by short greedy speculative runs; the times by single forwards over a
//! cached context, the median of a few repeats.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tandem_decode::{CausalLm, DecodeError, GammaPolicy, ModelRole};

use crate::error::{EngineError, Result};
use crate::pair::LoadedPair;
use crate::run::{run_generation, GenerateRequest, RunMode};

/// The speedup formula with the verify cost folded in; `gamma` may be fractional (a
/// run's mean γ). At α = 1 it is the limit (γ + 1) / (γc + r).
pub fn predicted_speedup(alpha: f64, gamma: f64, c: f64, verify_ratio: f64) -> f64 {
    let alpha = alpha.clamp(0.0, 1.0);
    let expected_tokens = if 1.0 - alpha < 1e-12 {
        gamma + 1.0
    } else {
        (1.0 - alpha.powf(gamma + 1.0)) / (1.0 - alpha)
    };
    expected_tokens / (gamma * c + verify_ratio)
}

/// How to measure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PredictRequest {
    /// Predict for γ = 1..=max_gamma.
    pub max_gamma: usize,
    /// Repeats of each timed forward; the median is used.
    pub repeats: usize,
    /// Tokens cached before the timed forwards (a typical prompt length).
    pub context_tokens: usize,
    /// Prompts of the short speculative runs that estimate α.
    pub alpha_prompts: Vec<String>,
    pub alpha_tokens: usize,
    /// γ of those runs.
    pub alpha_gamma: usize,
    /// Wrap the α prompts in the chat template.
    pub chat: bool,
    /// The chat template's `enable_thinking` (see [`GenerateRequest::enable_thinking`]).
    #[serde(default)]
    pub enable_thinking: Option<bool>,
}

impl Default for PredictRequest {
    fn default() -> Self {
        Self {
            max_gamma: 10,
            repeats: 5,
            context_tokens: 64,
            alpha_prompts: default_alpha_prompts(),
            alpha_tokens: 32,
            alpha_gamma: 4,
            chat: false,
            enable_thinking: None,
        }
    }
}

/// A few short prompts of different kinds, so α is not one genre's.
pub fn default_alpha_prompts() -> Vec<String> {
    [
        "Explain in two sentences why the sky is blue.",
        "Write a Python function that returns the n-th Fibonacci number.",
        "Rewrite this sentence more formally: the meeting got moved to next week because half the team was out sick.",
    ]
    .map(String::from)
    .to_vec()
}

/// Measured forward times, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardCosts {
    /// One token through the target.
    pub target_ms: f64,
    /// One token through the draft.
    pub draft_ms: f64,
    /// `verify_ms[n - 1]`: n tokens through the target in one forward, n = 1..=γmax+1.
    pub verify_ms: Vec<f64>,
}

/// One row of the prediction table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow {
    pub gamma: usize,
    /// r(γ) = t_verify(γ + 1) / t_target(1).
    pub verify_ratio: f64,
    pub speedup: f64,
    /// The textbook formula (r = 1), for comparison.
    pub speedup_free_verify: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub alpha: f64,
    pub drafted: usize,
    pub accepted: usize,
    /// c = t_draft / t_target.
    pub cost_ratio: f64,
    pub costs: ForwardCosts,
    pub rows: Vec<PredictionRow>,
    pub best_gamma: usize,
}

/// The table for γ = 1..=`costs.verify_ms.len() − 1`, and the best γ (smallest on ties).
pub fn prediction_table(alpha: f64, costs: &ForwardCosts) -> (Vec<PredictionRow>, usize) {
    let c = costs.draft_ms / costs.target_ms;
    let rows: Vec<PredictionRow> = (1..costs.verify_ms.len())
        .map(|gamma| {
            let verify_ratio = costs.verify_ms[gamma] / costs.target_ms;
            PredictionRow {
                gamma,
                verify_ratio,
                speedup: predicted_speedup(alpha, gamma as f64, c, verify_ratio),
                speedup_free_verify: predicted_speedup(alpha, gamma as f64, c, 1.0),
            }
        })
        .collect();
    let best = rows
        .iter()
        .fold(None::<&PredictionRow>, |best, row| match best {
            Some(b) if b.speedup >= row.speedup => Some(b),
            _ => Some(row),
        })
        .map_or(1, |row| row.gamma);
    (rows, best)
}

/// Measures the pair and predicts. The models' caches are left empty.
pub fn predict(pair: &mut LoadedPair, request: &PredictRequest) -> Result<Prediction> {
    if pair.draft.is_none() {
        return Err(EngineError::InvalidRequest(
            "the predictor needs a draft model".into(),
        ));
    }
    if request.max_gamma == 0 || request.alpha_prompts.is_empty() {
        return Err(EngineError::InvalidRequest(
            "the predictor needs max γ >= 1 and at least one prompt".into(),
        ));
    }
    let (drafted, accepted) = estimate_alpha(pair, request)?;
    let costs = measure_costs(pair, request)?;
    let alpha = if drafted == 0 {
        0.0
    } else {
        accepted as f64 / drafted as f64
    };
    let (rows, best_gamma) = prediction_table(alpha, &costs);
    Ok(Prediction {
        alpha,
        drafted,
        accepted,
        cost_ratio: costs.draft_ms / costs.target_ms,
        costs,
        rows,
        best_gamma,
    })
}

/// (drafts judged, drafts accepted) over short greedy speculative runs.
pub fn estimate_alpha(pair: &mut LoadedPair, request: &PredictRequest) -> Result<(usize, usize)> {
    let (mut drafted, mut accepted) = (0, 0);
    for prompt in &request.alpha_prompts {
        let mut run = GenerateRequest::new(prompt.clone(), RunMode::Speculative);
        run.chat = request.chat;
        run.enable_thinking = request.enable_thinking;
        run.max_new_tokens = request.alpha_tokens;
        run.gamma = GammaPolicy::Fixed(request.alpha_gamma.max(1));
        run.ignore_eos = true;
        let output = run_generation(
            &mut pair.target,
            pair.draft.as_mut(),
            &run,
            &mut |_, _| {},
            None,
        )?;
        drafted += output.result.summary.drafted;
        accepted += output.result.summary.accepted;
    }
    Ok((drafted, accepted))
}

/// Times one-token forwards of both models and (γ+1)-token forwards of the target.
///
/// The repeats go round-robin over every measurement (target with 1..=γmax+1 tokens,
/// then the draft) rather than one measurement at a time: on a shared machine the load
/// drifts, and round-robin makes every figure see the same drift, so their ratios (c and
/// r(γ), all the formula uses) stay meaningful.
pub fn measure_costs(pair: &mut LoadedPair, request: &PredictRequest) -> Result<ForwardCosts> {
    let context = context_tokens(pair, request)?;
    let draft = pair
        .draft
        .as_mut()
        .ok_or_else(|| EngineError::InvalidRequest("the predictor needs a draft model".into()))?;
    let mut target = TimedModel::prefill(
        pair.target.lm(),
        ModelRole::Target,
        &context,
        request.max_gamma + 1,
    )?;
    let mut draft = TimedModel::prefill(
        draft.lm(),
        ModelRole::Draft,
        &context,
        request.max_gamma + 1,
    )?;
    // One untimed pass of each shape first: the first forward of a shape pays for
    // allocations.
    for n in 1..=request.max_gamma + 1 {
        target.forward_ms(n)?;
    }
    draft.forward_ms(1)?;
    let mut verify_times = vec![Vec::new(); request.max_gamma + 1];
    let mut draft_times = Vec::new();
    for _ in 0..request.repeats.max(1) {
        for (i, times) in verify_times.iter_mut().enumerate() {
            times.push(target.forward_ms(i + 1)?);
        }
        draft_times.push(draft.forward_ms(1)?);
    }
    target.lm.reset();
    draft.lm.reset();
    let verify_ms: Vec<f64> = verify_times.into_iter().map(median).collect();
    Ok(ForwardCosts {
        target_ms: verify_ms[0],
        draft_ms: median(draft_times),
        verify_ms,
    })
}

/// Tokens of context under the timed forwards of [`measure_cost_ratio`]: enough for the
/// forward to be a decode step, few enough that the prefill costs next to nothing.
const COST_CONTEXT_TOKENS: usize = 16;
/// Timed repeats of each forward in [`measure_cost_ratio`]; the median is used.
const COST_REPEATS: usize = 5;

/// c = t_draft / t_target for γ auto, measured once before a run: one-token forwards of
/// both models over the start of `prompt`, round-robin like [`measure_costs`], the
/// median of a few. The caches are left empty. A ratio that cannot be measured (a
/// clock too coarse for a tiny model) falls back to the decode crate's prior.
pub fn measure_cost_ratio(
    target: &mut (dyn CausalLm + Send),
    draft: &mut (dyn CausalLm + Send),
    prompt: &[u32],
) -> Result<f64> {
    if prompt.is_empty() {
        return Err(EngineError::InvalidRequest("the prompt is empty".into()));
    }
    // The prompt repeated, so even a one-token prompt leaves a context and a token to time.
    let context: Vec<u32> = prompt
        .iter()
        .copied()
        .cycle()
        .take(prompt.len().min(COST_CONTEXT_TOKENS) + 1)
        .collect();
    let mut target = TimedModel::prefill(target, ModelRole::Target, &context, 1)?;
    let mut draft = TimedModel::prefill(draft, ModelRole::Draft, &context, 1)?;
    // One untimed pass each: the first forward of a shape pays for allocations.
    target.forward_ms(1)?;
    draft.forward_ms(1)?;
    let (mut target_times, mut draft_times) = (Vec::new(), Vec::new());
    for _ in 0..COST_REPEATS {
        target_times.push(target.forward_ms(1)?);
        draft_times.push(draft.forward_ms(1)?);
    }
    target.lm.reset();
    draft.lm.reset();
    let ratio = median(draft_times) / median(target_times);
    Ok(if ratio.is_finite() && ratio >= 0.0 {
        ratio
    } else {
        tandem_decode::gamma::MODEL_COST_RATIO_PRIOR
    })
}

/// Real text as the cached context: the α prompts' tokens, repeated to length.
fn context_tokens(pair: &LoadedPair, request: &PredictRequest) -> Result<Vec<u32>> {
    let text = request.alpha_prompts.join("\n");
    let tokens = pair.target.tokenizer.encode(&text)?;
    if tokens.is_empty() {
        return Err(EngineError::InvalidRequest("the prompts are empty".into()));
    }
    let wanted = request.context_tokens.max(1) + request.max_gamma + 1;
    Ok(tokens.iter().copied().cycle().take(wanted).collect())
}

/// A model with a context cached, timing forwards of new tokens on top of it.
struct TimedModel<'a> {
    lm: &'a mut (dyn CausalLm + Send),
    role: ModelRole,
    /// The cached context followed by the tokens the timed forwards feed.
    tokens: &'a [u32],
    cached: usize,
}

impl<'a> TimedModel<'a> {
    /// Caches all of `tokens` but the last `max_new`.
    fn prefill(
        lm: &'a mut (dyn CausalLm + Send),
        role: ModelRole,
        tokens: &'a [u32],
        max_new: usize,
    ) -> Result<Self> {
        let cached = tokens.len() - max_new;
        lm.reset();
        lm.forward_last(&tokens[..cached], 1)
            .map_err(|source| DecodeError::Model { role, source })?;
        Ok(Self {
            lm,
            role,
            tokens,
            cached,
        })
    }

    /// Time of one forward over `n` new tokens (a decode step when n = 1, a verify pass
    /// of γ = n − 1 drafts otherwise), rolled back afterwards.
    fn forward_ms(&mut self, n: usize) -> Result<f64> {
        let started = Instant::now();
        let result = self.lm.forward(&self.tokens[self.cached..self.cached + n]);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.lm.truncate(self.cached);
        result.map_err(|source| DecodeError::Model {
            role: self.role,
            source,
        })?;
        Ok(ms)
    }
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_against_hand_computed_values() {
        // (1 − 0.8⁵) / (0.2 · (4 · 0.1 + 1)) = 0.67232 / 0.28
        assert!((predicted_speedup(0.8, 4.0, 0.1, 1.0) - 2.401_142_857).abs() < 1e-8);
        assert_eq!(
            format!("{:.5}", predicted_speedup(0.8, 4.0, 0.1, 1.0)),
            "2.40114"
        );
        // The textbook formula is the decode crate's expected_speedup.
        for (alpha, gamma, c) in [(0.8, 4, 0.1), (0.3, 1, 0.5), (0.95, 10, 0.02)] {
            let ours = predicted_speedup(alpha, gamma as f64, c, 1.0);
            assert!((ours - tandem_decode::expected_speedup(alpha, gamma, c)).abs() < 1e-12);
        }
        // A verify pass of 5 tokens costing 1.5 decode steps: 0.67232 / (0.2 · 1.9).
        assert!((predicted_speedup(0.8, 4.0, 0.1, 1.5) - 0.67232 / 0.38).abs() < 1e-12);
        // α = 1: every draft accepted, γ + 1 tokens per step.
        assert_eq!(predicted_speedup(1.0, 4.0, 0.25, 1.0), 2.5);
        // α = 0: one token per step, at the price of the drafts.
        assert_eq!(predicted_speedup(0.0, 4.0, 0.25, 1.0), 0.5);
    }

    #[test]
    fn table_and_best_gamma() {
        // Target 10 ms, draft 1 ms (c = 0.1); verifying n tokens costs 10 + 2(n − 1) ms.
        let costs = ForwardCosts {
            target_ms: 10.0,
            draft_ms: 1.0,
            verify_ms: (1..=11).map(|n| 10.0 + 2.0 * (n - 1) as f64).collect(),
        };
        let (rows, best) = prediction_table(0.8, &costs);
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[3].gamma, 4);
        assert!((rows[3].verify_ratio - 1.8).abs() < 1e-12);
        assert!((rows[3].speedup - 0.67232 / (0.2 * 2.2)).abs() < 1e-12);
        assert!((rows[3].speedup_free_verify - 2.401_142_857).abs() < 1e-8);
        let by_hand = (1..=10)
            .max_by(|&a, &b| {
                let f = |g: usize| predicted_speedup(0.8, g as f64, 0.1, 1.0 + 0.2 * g as f64);
                f(a).total_cmp(&f(b))
            })
            .unwrap();
        assert_eq!(best, by_hand);
        assert!(rows.iter().all(|r| r.speedup <= rows[best - 1].speedup));
    }
}
