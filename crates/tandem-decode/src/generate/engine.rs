//! The step loop shared by every mode: a plain step is a speculative step
//! with no drafts, so one loop serves all three and they cannot drift apart.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::drafter::{Draft, TRACE_TOP_K};
use crate::error::{forward_checked, take_forward_ms, DecodeError, ModelRole};
use crate::gamma::{GammaChoice, GammaController, StepObservation};
use crate::generate::{DynDrafter, GenerationConfig, GenerationResult, Hooks};
use crate::metrics::{RunEnd, RunMetrics};
use crate::model::{CausalLm, Logits};
use crate::sampling::{prob_of, seeded_rng, top_tokens, DecodeRng, Sampler};
use crate::stopping::check_stop_strings_per_token;
use crate::trace::{
    EmittedToken, GenerationEvent, ModeKind, StepTrace, StopReason, TokenOrigin, VerifyTrace,
};
use crate::verify::{judge_draft, target_token, Verdict, VerifyRule};

pub(super) struct Engine<'a, 'h> {
    target: &'a mut dyn CausalLm,
    drafter: DynDrafter<'a>,
    mode: ModeKind,
    config: &'a GenerationConfig,
    hooks: Hooks<'h>,
    sampler: Sampler,
    rule: VerifyRule,
    rng: DecodeRng,
    gamma: Option<GammaController>,
    /// Prompt followed by every emitted token.
    sequence: Vec<u32>,
    prompt_len: usize,
    origins: Vec<TokenOrigin>,
    steps: Vec<StepTrace>,
    metrics: RunMetrics,
    started: Instant,
    first_token_ms: Option<f64>,
    /// Output text cut before a stop string, once one was found.
    stop_text: Option<String>,
    /// The target's logits, reused from step to step.
    target_logits: Logits,
}

impl<'a, 'h> Engine<'a, 'h> {
    pub(super) fn new(
        target: &'a mut dyn CausalLm,
        drafter: DynDrafter<'a>,
        mode: ModeKind,
        prompt: &[u32],
        config: &'a GenerationConfig,
        hooks: Hooks<'h>,
    ) -> Self {
        let sampler = Sampler::new(config.sampling.clone());
        let rule = VerifyRule::for_sampler(&sampler, config.rejection_variant);
        let gamma = drafter.as_ref().map(|d| {
            let cost_ratio = config
                .draft_cost_ratio
                .unwrap_or_else(|| d.cost_ratio_prior());
            GammaController::new(config.gamma.clone(), cost_ratio)
        });
        Self {
            target,
            drafter,
            mode,
            config,
            hooks,
            rng: seeded_rng(config.sampling.seed),
            sampler,
            rule,
            gamma,
            sequence: prompt.to_vec(),
            prompt_len: prompt.len(),
            origins: Vec::new(),
            steps: Vec::new(),
            metrics: RunMetrics::default(),
            started: Instant::now(),
            first_token_ms: None,
            stop_text: None,
            target_logits: Logits::empty(),
        }
    }

    pub(super) fn run(mut self) -> Result<GenerationResult, DecodeError> {
        // Forwards before this run (another run on this thread) are not its own.
        take_forward_ms();
        self.emit(&GenerationEvent::Started {
            mode: self.mode.clone(),
            prompt_len: self.prompt_len,
            max_new_tokens: self.config.max_new_tokens,
            sampling: self.config.sampling.clone(),
            gamma_policy: self.gamma.is_some().then(|| self.config.gamma.clone()),
        });
        let stop_reason = loop {
            if self.output_len() >= self.config.max_new_tokens {
                break StopReason::MaxNewTokens;
            }
            if self.cancelled() {
                break StopReason::Cancelled;
            }
            if let Some(reason) = self.step()? {
                break reason;
            }
        };
        let tokens = self.sequence[self.prompt_len..].to_vec();
        let text = match (self.stop_text.take(), self.hooks.detokenize) {
            (Some(cut), _) => Some(cut),
            (None, Some(detokenize)) => Some(detokenize(&tokens)),
            (None, None) => None,
        };
        let summary = self.metrics.summary(RunEnd {
            mode: self.mode.clone(),
            prompt_len: self.prompt_len,
            wall_ms: elapsed_ms(self.started),
            time_to_first_token_ms: self.first_token_ms,
            model_ms: take_forward_ms(),
            cancelled: stop_reason == StopReason::Cancelled,
            stop_reason,
        });
        self.emit(&GenerationEvent::Finished(summary.clone()));
        Ok(GenerationResult {
            tokens,
            origins: self.origins,
            text,
            steps: self.steps,
            summary,
        })
    }

    /// One draft-and-verify round; returns why the run must stop, if it must.
    fn step(&mut self) -> Result<Option<StopReason>, DecodeError> {
        let start_len = self.sequence.len();
        let choice = self.choose_gamma();

        let draft_clock = Instant::now();
        let draft = match self.drafter.as_deref_mut() {
            Some(drafter) if choice.gamma > 0 => {
                drafter.propose(&self.sequence, choice.gamma, &self.sampler, &mut self.rng)?
            }
            _ => Draft::default(),
        };
        let draft_ms = elapsed_ms(draft_clock);

        let verify_clock = Instant::now();
        let verdicts = self.verify(&draft)?;
        let verify_ms = elapsed_ms(verify_clock);

        let mut emitted = verdicts.emitted;
        let mut stop = verdicts.stop;
        self.sequence.extend(emitted.iter().map(|e| e.token));
        self.origins.extend(emitted.iter().map(|e| e.origin));
        let mut retracted = 0;
        if let Some(reason) = self.apply_stop_strings(start_len, &mut emitted, &mut retracted) {
            stop = Some(reason);
        }
        self.roll_back_caches(&verdicts.target_rows, start_len);

        let trace = StepTrace {
            step: self.steps.len(),
            gamma: choice,
            drafts: draft.tokens.iter().map(|d| d.trace()).collect(),
            verified: verdicts.traces,
            judged: verdicts.judged,
            accepted: verdicts.accepted,
            final_token: verdicts.final_token,
            emitted,
            retracted,
            draft_ms,
            verify_ms,
            draft_forwards: draft.forwards,
            target_forwards: 1,
        };
        if let Some(gamma) = &mut self.gamma {
            gamma.observe(&StepObservation {
                drafted: draft.tokens.len(),
                judged: trace.judged,
                accepted: trace.accepted,
            });
        }
        self.metrics.record_step(&trace);
        if self.first_token_ms.is_none() && !trace.emitted.is_empty() {
            self.first_token_ms = Some(elapsed_ms(self.started));
        }
        self.emit(&GenerationEvent::Step(trace.clone()));
        self.steps.push(trace);
        Ok(stop)
    }

    fn choose_gamma(&self) -> GammaChoice {
        match &self.gamma {
            None => GammaChoice::plain(),
            // With r tokens left, r − 1 drafts plus the bonus token fill the
            // budget; more drafts could never be emitted.
            Some(gamma) => {
                let remaining = self.config.max_new_tokens - self.output_len();
                gamma.choose().clamped(remaining - 1)
            }
        }
    }

    /// Feeds the target what it lacks plus the drafts in one forward, then
    /// rules on the drafts in order until a rejection or a stop.
    fn verify(&mut self, draft: &Draft) -> Result<Verdicts, DecodeError> {
        let mut feed = self.sequence[self.target.cached_len()..].to_vec();
        feed.extend(draft.tokens.iter().map(|d| d.token));
        // Only the rows from the pending token on judge drafts (row r scores
        // the token after its input), so only those are asked for.
        // Out of `self` while the rows are read (and put back below).
        let mut buffer = std::mem::replace(&mut self.target_logits, Logits::empty());
        let logits = forward_checked(
            &mut *self.target,
            ModelRole::Target,
            &feed,
            draft.tokens.len() + 1,
            &mut buffer,
        )?;
        let first_row = 0;
        let accepted_origin = match self.drafter.as_deref() {
            Some(drafter) => drafter.accepted_origin(),
            None => TokenOrigin::Target,
        };
        let mut out = Verdicts::default();
        for i in 0..=draft.tokens.len() {
            let p = self.sampler.distribution(logits.row(first_row + i));
            let mut trace = VerifyTrace {
                index: self.sequence.len() + i,
                p_draft: None,
                p_top: top_tokens(&p, TRACE_TOP_K),
            };
            let (emitted, run_over) = match draft.tokens.get(i) {
                Some(drafted) => {
                    trace.p_draft = Some(prob_of(&p, drafted.token));
                    out.judged += 1;
                    match judge_draft(self.rule, &p, drafted.token, &drafted.q, &mut self.rng) {
                        Verdict::Accept => {
                            out.accepted += 1;
                            let token = EmittedToken {
                                token: drafted.token,
                                origin: accepted_origin,
                            };
                            (token, false)
                        }
                        Verdict::Reject { replacement } => {
                            let token = EmittedToken {
                                token: replacement,
                                origin: TokenOrigin::Corrected,
                            };
                            out.final_token = Some(token);
                            (token, true)
                        }
                    }
                }
                None => {
                    let origin = if draft.tokens.is_empty() {
                        TokenOrigin::Target
                    } else {
                        TokenOrigin::Bonus
                    };
                    let token = EmittedToken {
                        token: target_token(self.rule, &p, &mut self.rng),
                        origin,
                    };
                    out.final_token = Some(token);
                    (token, true)
                }
            };
            out.traces.push(trace);
            out.target_rows.push(p);
            out.emitted.push(emitted);
            // An accepted run is cut at EOS or the budget; the caches are
            // then rolled back to match what was actually emitted.
            if self.config.eos_token_ids.contains(&emitted.token) {
                out.stop = Some(StopReason::Eos {
                    token: emitted.token,
                });
                break;
            }
            if self.output_len() + out.emitted.len() >= self.config.max_new_tokens {
                out.stop = Some(StopReason::MaxNewTokens);
                break;
            }
            if run_over {
                break;
            }
        }
        self.target_logits = buffer;
        Ok(out)
    }

    /// Cuts the output before a stop string, if the decoded output now holds one.
    fn apply_stop_strings(
        &mut self,
        start_len: usize,
        emitted: &mut Vec<EmittedToken>,
        retracted: &mut usize,
    ) -> Option<StopReason> {
        let detokenize = self.hooks.detokenize?;
        let output = &self.sequence[self.prompt_len..];
        let earlier_output = start_len - self.prompt_len;
        // Token by token, as plain decoding would see the text grow.
        let cut = check_stop_strings_per_token(
            output,
            earlier_output,
            &self.config.stop_strings,
            detokenize,
        )?;
        if cut.keep_tokens < earlier_output {
            *retracted = earlier_output - cut.keep_tokens;
            emitted.clear();
        } else {
            emitted.truncate(cut.keep_tokens - earlier_output);
        }
        self.sequence.truncate(self.prompt_len + cut.keep_tokens);
        self.origins.truncate(cut.keep_tokens);
        self.stop_text = Some(cut.text);
        Some(StopReason::StopString { stop: cut.stop })
    }

    /// Restores the cache invariant (see the module docs of `generate`).
    fn roll_back_caches(&mut self, target_rows: &[Vec<f32>], start_len: usize) {
        let keep = self.target.cached_len().min(self.sequence.len() - 1);
        if keep < self.target.cached_len() {
            self.target.truncate(keep);
        }
        if let Some(drafter) = self.drafter.as_deref_mut() {
            drafter.after_step(&self.sequence, target_rows, start_len);
        }
    }

    fn output_len(&self) -> usize {
        self.sequence.len() - self.prompt_len
    }

    fn cancelled(&self) -> bool {
        self.hooks
            .cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    fn emit(&mut self, event: &GenerationEvent) {
        if let Some(on_event) = self.hooks.on_event.as_deref_mut() {
            on_event(event);
        }
    }
}

/// What verification decided in one step.
#[derive(Default)]
struct Verdicts {
    emitted: Vec<EmittedToken>,
    traces: Vec<VerifyTrace>,
    /// Warped target distribution at each consulted position.
    target_rows: Vec<Vec<f32>>,
    judged: usize,
    accepted: usize,
    final_token: Option<EmittedToken>,
    stop: Option<StopReason>,
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
