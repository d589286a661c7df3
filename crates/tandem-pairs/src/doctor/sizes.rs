//! Sizes: a draft only pays off when it is much cheaper than the target.
//!
//! Decoding one token costs roughly in proportion to the weights read, so
//! the parameter ratio stands in for the cost ratio c of speculative
//! decoding's speedup formula (`tandem_decode::expected_speedup`).

use serde::{Deserialize, Serialize};
use tandem_decode::expected_speedup;

use super::model_files::ModelFiles;
use super::Findings;
use crate::units::human_params;

/// From this share of the target's size on, the draft saves too little.
const LARGE_DRAFT_SHARE: f64 = 0.5;
/// The range of per-token acceptance rates the hint assumes; real rates
/// depend on the text (code and repetitive text score higher).
const ACCEPTANCE_LOW: f64 = 0.6;
const ACCEPTANCE_HIGH: f64 = 0.8;
/// Below this the hint says "no faster" rather than a number like 0.9×.
const NOTICEABLE_SPEEDUP: f64 = 1.05;
/// The longest run of guesses per step the hint considers.
const MAX_GUESSES: usize = 8;

/// A rough expected speedup over running the target alone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeedupHint {
    /// Draft parameters ÷ target parameters.
    pub draft_share: f64,
    /// Expected speedup at the low assumed acceptance rate…
    pub low: f64,
    /// …and at the high one.
    pub high: f64,
    pub acceptance_low: f64,
    pub acceptance_high: f64,
}

impl SpeedupHint {
    pub fn from_share(draft_share: f64) -> SpeedupHint {
        let best = |alpha: f64| {
            (1..=MAX_GUESSES)
                .map(|guesses| expected_speedup(alpha, guesses, draft_share))
                .fold(0.0, f64::max)
        };
        SpeedupHint {
            draft_share,
            low: best(ACCEPTANCE_LOW),
            high: best(ACCEPTANCE_HIGH),
            acceptance_low: ACCEPTANCE_LOW,
            acceptance_high: ACCEPTANCE_HIGH,
        }
    }
}

pub(super) fn check(
    draft: &ModelFiles,
    target: &ModelFiles,
    findings: &mut Findings,
) -> Option<SpeedupHint> {
    let (Some(draft_config), Some(target_config)) = (draft.config(), target.config()) else {
        return None;
    };
    for (model, config) in [(draft, draft_config), (target, target_config)] {
        findings.note(format!(
            "The {} is a {} model with {} parameters.",
            model.role,
            config.architecture.hf_name(),
            human_params(config.parameter_count() as u64)
        ));
    }
    let draft_params = draft_config.parameter_count() as f64;
    let target_params = target_config.parameter_count() as f64;
    let share = draft_params / target_params;
    let percent = (share * 100.0).round();
    if share >= 1.0 {
        findings.warning(format!(
            "The draft ({}) is not smaller than the target ({}), so the pair would be slower \
             than the target alone. Pick a much smaller draft.",
            human_params(draft_params as u64),
            human_params(target_params as u64)
        ));
        return None;
    }
    if share >= LARGE_DRAFT_SHARE {
        findings.warning(format!(
            "The draft is {percent}% of the target's size, so it costs almost as much to run \
             as the target: expect little speedup. Drafts around a tenth of the target's size \
             work best."
        ));
    } else {
        findings.note(format!("The draft is {percent}% of the target's size."));
    }
    let hint = SpeedupHint::from_share(share);
    if hint.high < NOTICEABLE_SPEEDUP {
        findings.note(
            "Rough guess: no faster than the target alone, since the draft costs too much to run.",
        );
        return Some(hint);
    }
    findings.note(format!(
        "Rough guess: about {:.1}–{:.1}× as fast as the target alone, if the draft guesses \
         {:.0}–{:.0}% of tokens right (it depends on the text).",
        hint.low,
        hint.high,
        hint.acceptance_low * 100.0,
        hint.acceptance_high * 100.0
    ));
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaller_drafts_promise_more() {
        let tenth = SpeedupHint::from_share(0.1);
        let half = SpeedupHint::from_share(0.5);
        assert!(tenth.low > half.low && tenth.high > half.high);
        assert!(tenth.high > tenth.low);
        // α = 0.8, c = 0.1: γ = 6 is best, (1 − 0.8⁷)/(0.2 · 1.6) ≈ 2.4696.
        assert!((tenth.high - 2.4696).abs() < 1e-3, "{}", tenth.high);
        assert!(half.low < 1.2, "{}", half.low);
    }
}
