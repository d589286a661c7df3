//! Measuring a run: the step traces folded into α, τ and per-position
//! acceptance for the summary.

use crate::trace::{GenerationSummary, ModeKind, PositionAcceptance, StepTrace, StopReason};

/// Running totals over the steps of one generation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunMetrics {
    steps: usize,
    drafted: usize,
    accepted: usize,
    /// (drafted, accepted) at each draft position.
    by_position: Vec<(usize, usize)>,
    target_forwards: usize,
    draft_forwards: usize,
    new_tokens: usize,
    draft_ms: f64,
    verify_ms: f64,
}

/// How a run ended, for [`RunMetrics::summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct RunEnd {
    pub mode: ModeKind,
    pub prompt_len: usize,
    pub wall_ms: f64,
    pub time_to_first_token_ms: Option<f64>,
    /// Time inside model forwards.
    pub model_ms: f64,
    pub cancelled: bool,
    pub stop_reason: StopReason,
}

impl RunMetrics {
    pub fn record_step(&mut self, step: &StepTrace) {
        self.steps += 1;
        self.drafted += step.judged;
        self.accepted += step.accepted;
        if self.by_position.len() < step.judged {
            self.by_position.resize(step.judged, (0, 0));
        }
        // Drafts are accepted in order, so the first `accepted` of the judged
        // ones are the accepted ones.
        for (i, slot) in self.by_position.iter_mut().take(step.judged).enumerate() {
            slot.0 += 1;
            if i < step.accepted {
                slot.1 += 1;
            }
        }
        self.target_forwards += step.target_forwards;
        self.draft_forwards += step.draft_forwards;
        self.new_tokens = self.new_tokens + step.emitted.len() - step.retracted;
        self.draft_ms += step.draft_ms;
        self.verify_ms += step.verify_ms;
    }

    pub fn new_tokens(&self) -> usize {
        self.new_tokens
    }

    pub fn summary(&self, end: RunEnd) -> GenerationSummary {
        let ratio = |num: usize, den: usize| {
            if den == 0 {
                0.0
            } else {
                num as f64 / den as f64
            }
        };
        GenerationSummary {
            mode: end.mode,
            prompt_len: end.prompt_len,
            new_tokens: self.new_tokens,
            steps: self.steps,
            drafted: self.drafted,
            accepted: self.accepted,
            alpha: (self.drafted > 0).then(|| ratio(self.accepted, self.drafted)),
            tau: ratio(self.new_tokens, self.target_forwards),
            acceptance_by_position: self
                .by_position
                .iter()
                .map(|&(drafted, accepted)| PositionAcceptance {
                    drafted,
                    accepted,
                    rate: ratio(accepted, drafted),
                })
                .collect(),
            target_forwards: self.target_forwards,
            draft_forwards: self.draft_forwards,
            tokens_per_second: if end.wall_ms > 0.0 {
                self.new_tokens as f64 / (end.wall_ms / 1000.0)
            } else {
                0.0
            },
            wall_ms: end.wall_ms,
            time_to_first_token_ms: end.time_to_first_token_ms,
            draft_ms: self.draft_ms,
            verify_ms: self.verify_ms,
            model_ms: end.model_ms,
            cancelled: end.cancelled,
            stop_reason: end.stop_reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gamma::GammaChoice;
    use crate::trace::{EmittedToken, TokenOrigin};

    fn step(judged: usize, accepted: usize, emitted: usize) -> StepTrace {
        StepTrace {
            step: 0,
            gamma: GammaChoice::plain(),
            drafts: vec![],
            verified: vec![],
            judged,
            accepted,
            final_token: None,
            emitted: vec![
                EmittedToken {
                    token: 0,
                    origin: TokenOrigin::Target
                };
                emitted
            ],
            retracted: 0,
            draft_ms: 1.0,
            verify_ms: 4.0,
            draft_forwards: judged,
            target_forwards: 1,
        }
    }

    #[test]
    fn alpha_tau_and_positions_by_hand() {
        let mut metrics = RunMetrics::default();
        // γ=3: all accepted + bonus; γ=3: first rejected; γ=3: two accepted,
        // third rejected; plain step.
        for s in [step(3, 3, 4), step(1, 0, 1), step(3, 2, 3), step(0, 0, 1)] {
            metrics.record_step(&s);
        }
        let summary = metrics.summary(RunEnd {
            mode: ModeKind::Speculative,
            prompt_len: 5,
            wall_ms: 500.0,
            time_to_first_token_ms: Some(10.0),
            model_ms: 0.0,
            cancelled: false,
            stop_reason: StopReason::MaxNewTokens,
        });
        assert_eq!((summary.drafted, summary.accepted), (7, 5));
        assert_eq!(summary.alpha, Some(5.0 / 7.0));
        // 9 tokens over 4 target forwards.
        assert_eq!(summary.tau, 2.25);
        let rates: Vec<(usize, usize)> = summary
            .acceptance_by_position
            .iter()
            .map(|p| (p.drafted, p.accepted))
            .collect();
        assert_eq!(rates, vec![(3, 2), (2, 2), (2, 1)]);
        assert_eq!(summary.acceptance_by_position[0].rate, 2.0 / 3.0);
        assert_eq!(summary.tokens_per_second, 18.0);
        assert_eq!((summary.target_forwards, summary.draft_forwards), (4, 7));
        assert_eq!((summary.draft_ms, summary.verify_ms), (4.0, 16.0));
    }

    #[test]
    fn nothing_drafted_has_no_alpha() {
        let mut metrics = RunMetrics::default();
        metrics.record_step(&step(0, 0, 1));
        let summary = metrics.summary(RunEnd {
            mode: ModeKind::Plain,
            prompt_len: 1,
            wall_ms: 0.0,
            time_to_first_token_ms: None,
            model_ms: 0.0,
            cancelled: true,
            stop_reason: StopReason::Cancelled,
        });
        assert_eq!(summary.alpha, None);
        assert_eq!(summary.tau, 1.0);
        assert!(summary.acceptance_by_position.is_empty());
        assert_eq!(summary.tokens_per_second, 0.0);
    }
}
