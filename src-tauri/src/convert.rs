//! From the engine's records and events to what the UI shows: each emitted token with
//! the text it released, the text of every token id a step mentions (for the token
//! inspector), step end times, and races grouped from the history's runs.

use std::collections::BTreeMap;

use tandem_engine::compare::{Comparison, GreedyCheck};
use tandem_engine::record::RunRecord as EngineRecord;
use tandem_engine::{GammaPolicy, GenerateRequest, RunMode, StepTrace};
use tandem_model::Tokenizer;

use crate::ipc::{ComparisonRecord, GreedyVerdict, Lane, RunRecord, StepRecord, TokenText};

pub fn lane_of(mode: &RunMode) -> Lane {
    match mode {
        RunMode::Plain => Lane::Plain,
        RunMode::Speculative => Lane::Speculative,
        RunMode::Nasd { .. } => Lane::Nasd,
    }
}

/// The mode a lane runs, taking NASD's settings from `request` when it has them.
pub fn mode_of(lane: Lane, request: &GenerateRequest) -> RunMode {
    match (lane, &request.mode) {
        (Lane::Plain, _) => RunMode::Plain,
        (Lane::Speculative, _) => RunMode::Speculative,
        (Lane::Nasd, RunMode::Nasd { .. }) => request.mode.clone(),
        (Lane::Nasd, _) => RunMode::Nasd {
            ngram_n: 3,
            filler_top_k: None,
        },
    }
}

/// The inverse of GPT-2's byte-to-unicode table: byte-level BPE vocabularies spell
/// every byte as a printable character ('Ġ' is a space, 'Ċ' a newline).
fn byte_of(c: char) -> Option<u8> {
    let code = c as u32;
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    if code < 256 && printable(code) {
        return Some(code as u8);
    }
    // The other bytes were shifted to 256.. in byte order.
    let mut shifted = 256;
    for b in 0u32..256 {
        if !printable(b) {
            if shifted == code {
                return Some(b as u8);
            }
            shifted += 1;
        }
    }
    None
}

/// A vocabulary entry as readable text: byte-level BPE spelling undone, SentencePiece's
/// '▁' as a space, `<0x0A>` byte tokens as their byte.
pub fn display_token(raw: &str) -> String {
    if let Some(hex) = raw.strip_prefix("<0x").and_then(|r| r.strip_suffix('>')) {
        if let Ok(byte) = u8::from_str_radix(hex, 16) {
            return String::from_utf8_lossy(&[byte]).into_owned();
        }
    }
    if raw.starts_with("<|")
        || raw.starts_with("</")
        || (raw.starts_with('<') && raw.ends_with('>') && raw.len() > 2)
    {
        return raw.to_string();
    }
    if raw.contains('▁') {
        return raw.replace('▁', " ");
    }
    match raw.chars().map(byte_of).collect::<Option<Vec<u8>>>() {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => raw.to_string(),
    }
}

/// Decodes a lane's tokens as they arrive, giving each the text it completed.
pub struct LaneDecoder<'t> {
    tokenizer: Option<&'t Tokenizer>,
    tokens: Vec<u32>,
    released_chars: usize,
}

impl<'t> LaneDecoder<'t> {
    pub fn new(tokenizer: Option<&'t Tokenizer>) -> Self {
        Self {
            tokenizer,
            tokens: Vec::new(),
            released_chars: 0,
        }
    }

    fn decode(&self) -> Option<String> {
        self.tokenizer?.decode(&self.tokens).ok()
    }

    /// The emitted tokens of a step with their text. Without a tokenizer, the step's
    /// released pieces go to its last tokens (a piece ends with the token that completed it).
    pub fn step(
        &mut self,
        trace: &StepTrace,
        pieces: &[tandem_engine::TextPiece],
    ) -> Vec<TokenText> {
        if self.tokenizer.is_none() {
            let n = trace.emitted.len();
            let skip = n.saturating_sub(pieces.len());
            return trace
                .emitted
                .iter()
                .enumerate()
                .map(|(i, e)| TokenText {
                    id: e.token,
                    text: if i >= skip {
                        pieces[i - skip].text.clone()
                    } else {
                        String::new()
                    },
                    origin: e.origin,
                })
                .collect();
        }
        if trace.retracted > 0 {
            let keep = self.tokens.len().saturating_sub(trace.retracted);
            self.tokens.truncate(keep);
            self.released_chars = self.decode().map_or(0, |t| t.chars().count());
        }
        trace
            .emitted
            .iter()
            .map(|e| {
                self.tokens.push(e.token);
                let text = match self.decode() {
                    Some(all) if !all.ends_with('\u{FFFD}') => {
                        let total = all.chars().count();
                        let piece: String = all.chars().skip(self.released_chars).collect();
                        self.released_chars = total;
                        piece
                    }
                    _ => String::new(),
                };
                TokenText {
                    id: e.token,
                    text,
                    origin: e.origin,
                }
            })
            .collect()
    }
}

/// The text of every token id a step mentions: drafts, both top-5 lists, emitted tokens.
pub fn step_vocab(
    trace: &StepTrace,
    tokenizer: Option<&Tokenizer>,
    into: &mut BTreeMap<String, String>,
) {
    let Some(tokenizer) = tokenizer else { return };
    let ids = trace
        .drafts
        .iter()
        .flat_map(|d| std::iter::once(d.token).chain(d.q_top.iter().map(|t| t.token)))
        .chain(
            trace
                .verified
                .iter()
                .flat_map(|v| v.p_top.iter().map(|t| t.token)),
        )
        .chain(trace.emitted.iter().map(|e| e.token));
    for id in ids {
        into.entry(id.to_string()).or_insert_with(|| {
            tokenizer
                .id_to_token(id)
                .map(|raw| display_token(&raw))
                .unwrap_or_default()
        });
    }
}

/// Step end times for a run read back from the history, which keeps each step's draft
/// and verify time but not the clock: the steps laid end to end after the prefill.
pub fn replayed_elapsed(steps: &[StepTrace], time_to_first_token_ms: Option<f64>) -> Vec<f64> {
    let first = steps.first().map_or(0.0, |s| s.draft_ms + s.verify_ms);
    let mut clock = time_to_first_token_ms.map_or(0.0, |t| (t - first).max(0.0));
    steps
        .iter()
        .map(|s| {
            clock += s.draft_ms + s.verify_ms;
            clock
        })
        .collect()
}

/// The request a record answered, rebuilt from its header.
pub fn request_of(record: &EngineRecord) -> GenerateRequest {
    let h = &record.header;
    GenerateRequest {
        prompt: h.prompt.clone(),
        chat: h.chat,
        enable_thinking: h.enable_thinking,
        mode: h.mode.clone(),
        sampling: h.sampling.clone(),
        max_new_tokens: h.max_new_tokens,
        gamma: h.gamma_policy.clone().unwrap_or(GammaPolicy::Fixed(4)),
        stop_strings: h.stop_strings.clone(),
        ignore_eos: h.ignore_eos,
        // The ratio γ auto ran with: a rerun then gives the same tokens for the seed.
        gamma_cost_ratio: h.gamma_cost_ratio,
    }
}

/// An engine record as the UI keeps it. `elapsed` gives step end times measured live;
/// without them the steps are replayed from their timings.
pub fn run_record(
    record: &EngineRecord,
    tokenizer: Option<&Tokenizer>,
    elapsed: Option<&[f64]>,
) -> RunRecord {
    let traces: Vec<StepTrace> = record.steps.iter().map(|s| s.trace.clone()).collect();
    let replayed;
    let elapsed = match elapsed {
        Some(e) if e.len() == traces.len() => e,
        _ => {
            replayed = replayed_elapsed(&traces, record.summary().time_to_first_token_ms);
            &replayed
        }
    };
    let mut decoder = LaneDecoder::new(tokenizer);
    let mut vocab = BTreeMap::new();
    let steps = record
        .steps
        .iter()
        .zip(elapsed)
        .map(|(step, &elapsed_ms)| {
            step_vocab(&step.trace, tokenizer, &mut vocab);
            StepRecord {
                tokens: decoder.step(&step.trace, &step.pieces),
                trace: step.trace.clone(),
                elapsed_ms,
            }
        })
        .collect();
    let h = &record.header;
    RunRecord {
        id: h.run_id.clone(),
        created_at: h.created_at.clone(),
        lane: lane_of(&h.mode),
        request: request_of(record),
        target: h
            .target
            .repo_id
            .clone()
            .unwrap_or_else(|| h.target.name.clone()),
        draft: h
            .draft
            .as_ref()
            .map(|d| d.repo_id.clone().unwrap_or_else(|| d.name.clone())),
        precision: h.target.precision.clone(),
        backend: h.backend.clone(),
        prompt_text: h.prompt_text.clone(),
        text: record.outcome.text.clone(),
        steps,
        summary: record.outcome.summary.clone(),
        vocab,
    }
}

/// A race as the UI keeps it: its runs, each lane's speedup over plain, and the greedy check.
pub fn comparison_record(comparison: &Comparison, runs: Vec<RunRecord>) -> ComparisonRecord {
    let speedups = comparison
        .stats()
        .iter()
        .zip(&comparison.runs)
        .filter_map(|(stats, run)| stats.speedup.map(|s| (lane_of(&run.header.mode), s)))
        .collect();
    ComparisonRecord {
        id: comparison.id.clone(),
        created_at: comparison
            .runs
            .first()
            .map(|r| r.header.created_at.clone())
            .unwrap_or_default(),
        runs,
        speedups,
        greedy: greedy_verdict(&comparison.greedy_check()),
    }
}

/// The engine's greedy check as the UI's verdict: a race cut short is incomplete,
/// never identical.
pub fn greedy_verdict(check: &GreedyCheck) -> Option<GreedyVerdict> {
    match check {
        GreedyCheck::Identical => Some(GreedyVerdict::Identical),
        GreedyCheck::Diverged { .. } => Some(GreedyVerdict::Different),
        GreedyCheck::Incomplete { .. } => Some(GreedyVerdict::Incomplete),
        GreedyCheck::NotGreedy | GreedyCheck::NoPlainRun => None,
    }
}

/// A prompt shortened for a list.
pub fn title_of(prompt: &str) -> String {
    let line = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 80 {
        let cut: String = line.chars().take(79).collect();
        format!("{}…", cut.trim_end())
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_and_sentencepiece_tokens_read_as_text() {
        assert_eq!(display_token("Ġthe"), " the");
        assert_eq!(display_token("Ċ"), "\n");
        assert_eq!(display_token("ĉ"), "\t");
        assert_eq!(display_token("hello"), "hello");
        assert_eq!(display_token("▁the"), " the");
        assert_eq!(display_token("<0x0A>"), "\n");
        assert_eq!(display_token("<|im_end|>"), "<|im_end|>");
        // "é" in byte-level BPE is two byte characters: Ã (0xC3) and © (0xA9).
        assert_eq!(display_token("Ã©"), "é");
    }

    #[test]
    fn a_race_cut_short_is_incomplete_not_identical() {
        let incomplete = GreedyCheck::Incomplete {
            cut_short: vec!["speculative".into()],
            identical: vec![],
        };
        assert_eq!(greedy_verdict(&incomplete), Some(GreedyVerdict::Incomplete));
        assert_eq!(
            greedy_verdict(&GreedyCheck::Identical),
            Some(GreedyVerdict::Identical)
        );
        assert_eq!(greedy_verdict(&GreedyCheck::NotGreedy), None);
    }

    #[test]
    fn history_steps_are_laid_end_to_end_after_the_prefill() {
        let step = |d: f64, v: f64| {
            let mut s: StepTrace = serde_json::from_value(serde_json::json!({
                "step": 0,
                "gamma": {"gamma": 0, "policy_gamma": 0, "rule": "Plain", "alpha_estimate": null, "cost_ratio": null},
                "drafts": [], "verified": [], "judged": 0, "accepted": 0, "final_token": null,
                "emitted": [], "retracted": 0, "draft_ms": 0.0, "verify_ms": 0.0,
                "draft_forwards": 0, "target_forwards": 1
            }))
            .unwrap();
            s.draft_ms = d;
            s.verify_ms = v;
            s
        };
        let steps = [step(1.0, 9.0), step(2.0, 8.0)];
        assert_eq!(replayed_elapsed(&steps, Some(15.0)), vec![15.0, 25.0]);
        assert_eq!(replayed_elapsed(&steps, None), vec![10.0, 20.0]);
    }

    #[test]
    fn titles_are_one_short_line() {
        assert_eq!(title_of("a\n  b"), "a b");
        let long = "word ".repeat(40);
        let title = title_of(&long);
        assert!(title.chars().count() <= 80 && title.ends_with('…'));
    }
}
