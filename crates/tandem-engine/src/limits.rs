//! Upper bounds on what a request may ask for, checked where requests enter (the CLI,
//! the app's IPC commands, and the engine itself before anything runs), so a typo or a
//! hostile request gets a message naming the field instead of a run that allocates
//! without end or never finishes.
//!
//! The bounds are far above any useful value: each says why it is where it is.

use crate::compare::CompareRequest;
use crate::error::{EngineError, Result};
use crate::run::{GenerateRequest, RunMode};
use tandem_decode::GammaPolicy;

/// Drafts per step: a verify pass of γ + 1 rows is one chunk of the CPU engine (32
/// rows), and acceptance makes drafts past a dozen nearly worthless anyway.
pub const MAX_GAMMA: usize = 31;
/// Tokens per run: four times the longest context of the models Tandem runs today.
pub const MAX_NEW_TOKENS: usize = 1 << 19;
/// Stop strings per request (OpenAI's API takes 4, llama.cpp's server a handful).
pub const MAX_STOP_STRINGS: usize = 16;
/// Characters per stop string: the streamed text is held back by the longest one.
pub const MAX_STOP_STRING_CHARS: usize = 256;
/// NASD's filler: how many of the target's top tokens pad a short n-gram proposal.
pub const MAX_FILLER_TOP_K: usize = 256;
/// NASD's n-gram length: longer n-grams never repeat in a prompt-sized store.
pub const MAX_NGRAM_N: usize = 16;
/// Prompt size in bytes (4 MiB: about a million tokens of text, more than any context).
pub const MAX_PROMPT_BYTES: usize = 4 << 20;
/// Sampling's top-k: the largest vocabularies hold about a quarter of a million ids.
pub const MAX_TOP_K: usize = 1 << 20;
/// Modes in one race (each of plain, speculative and NASD a few times over at most).
pub const MAX_RACE_MODES: usize = 8;
/// Warm-up tokens before a race.
pub const MAX_WARMUP_TOKENS: usize = 256;

fn invalid(message: String) -> Result<()> {
    Err(EngineError::InvalidRequest(message))
}

fn at_most(field: &str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return invalid(format!(
            "{field} is {value}; the most Tandem accepts is {max}"
        ));
    }
    Ok(())
}

/// Checks every number and list of a run request against the bounds above (the decoder
/// checks the rest: sampling ranges, γ rule consistency).
pub fn check_generate(request: &GenerateRequest) -> Result<()> {
    at_most(
        "the prompt's size in bytes",
        request.prompt.len(),
        MAX_PROMPT_BYTES,
    )?;
    if request.max_new_tokens == 0 {
        return invalid("max new tokens must be at least 1".into());
    }
    at_most("max new tokens", request.max_new_tokens, MAX_NEW_TOKENS)?;
    if let Some(k) = request.sampling.top_k {
        at_most("top-k", k, MAX_TOP_K)?;
    }
    check_gamma(&request.gamma)?;
    check_mode(&request.mode)?;
    at_most(
        "the number of stop strings",
        request.stop_strings.len(),
        MAX_STOP_STRINGS,
    )?;
    for stop in &request.stop_strings {
        if stop.is_empty() {
            return invalid("a stop string is empty".into());
        }
        let chars = stop.chars().count();
        if chars > MAX_STOP_STRING_CHARS {
            let start: String = stop.chars().take(20).collect();
            return invalid(format!(
                "the stop string starting {start:?} has {chars} characters; the most Tandem accepts is {MAX_STOP_STRING_CHARS}"
            ));
        }
    }
    Ok(())
}

/// [`check_generate`] for the shared request, and the race's own numbers.
pub fn check_compare(request: &CompareRequest) -> Result<()> {
    check_generate(&request.request)?;
    at_most(
        "the number of modes to race",
        request.modes.len(),
        MAX_RACE_MODES,
    )?;
    request.modes.iter().try_for_each(check_mode)?;
    at_most("warm-up tokens", request.warmup_tokens, MAX_WARMUP_TOKENS)
}

fn check_gamma(gamma: &GammaPolicy) -> Result<()> {
    let largest = match *gamma {
        GammaPolicy::Fixed(k) => k,
        GammaPolicy::Heuristic { start, min, max } => start.max(min).max(max),
        GammaPolicy::Goodput { max } | GammaPolicy::Confident { max, .. } => max,
    };
    at_most("γ (tokens guessed per step)", largest, MAX_GAMMA)
}

fn check_mode(mode: &RunMode) -> Result<()> {
    if let RunMode::Nasd {
        ngram_n,
        filler_top_k,
    } = *mode
    {
        at_most("NASD's n-gram length", ngram_n, MAX_NGRAM_N)?;
        match filler_top_k {
            Some(0) => return invalid("NASD's filler top-k must be at least 1".into()),
            Some(k) => at_most("NASD's filler top-k", k, MAX_FILLER_TOP_K)?,
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> GenerateRequest {
        GenerateRequest::new("Hello", RunMode::Speculative)
    }

    fn message(result: Result<()>) -> String {
        match result {
            Err(EngineError::InvalidRequest(m)) => m,
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn a_default_request_and_the_bounds_themselves_pass() {
        check_generate(&request()).unwrap();
        let mut r = request();
        r.gamma = GammaPolicy::Fixed(MAX_GAMMA);
        r.max_new_tokens = MAX_NEW_TOKENS;
        r.stop_strings = vec!["x".repeat(MAX_STOP_STRING_CHARS); MAX_STOP_STRINGS];
        r.mode = RunMode::Nasd {
            ngram_n: MAX_NGRAM_N,
            filler_top_k: Some(MAX_FILLER_TOP_K),
        };
        check_generate(&r).unwrap();
    }

    /// A change to a good request, and what the refusal must mention.
    type Case = (Box<dyn Fn(&mut GenerateRequest)>, &'static str);

    #[test]
    fn each_bound_names_its_field_and_value() {
        let cases: Vec<Case> = vec![
            (Box::new(|r| r.gamma = GammaPolicy::Fixed(1000)), "γ"),
            (
                Box::new(|r| {
                    r.gamma = GammaPolicy::Confident {
                        max: 64,
                        min_prob: 0.5,
                    }
                }),
                "is 64",
            ),
            (
                Box::new(|r| r.gamma = GammaPolicy::Goodput { max: usize::MAX }),
                "γ",
            ),
            (Box::new(|r| r.max_new_tokens = 1 << 40), "max new tokens"),
            (Box::new(|r| r.max_new_tokens = 0), "at least 1"),
            (
                Box::new(|r| r.stop_strings = vec!["stop".into(); 1000]),
                "number of stop strings is 1000",
            ),
            (Box::new(|r| r.stop_strings = vec![String::new()]), "empty"),
            (
                Box::new(|r| r.stop_strings = vec!["ab".repeat(1000)]),
                "2000 characters",
            ),
            (
                Box::new(|r| {
                    r.mode = RunMode::Nasd {
                        ngram_n: 3,
                        filler_top_k: Some(100_000),
                    }
                }),
                "filler top-k is 100000",
            ),
            (
                Box::new(|r| {
                    r.mode = RunMode::Nasd {
                        ngram_n: 3,
                        filler_top_k: Some(0),
                    }
                }),
                "filler top-k must be at least 1",
            ),
            (
                Box::new(|r| {
                    r.mode = RunMode::Nasd {
                        ngram_n: 500,
                        filler_top_k: None,
                    }
                }),
                "n-gram length is 500",
            ),
            (Box::new(|r| r.sampling.top_k = Some(usize::MAX)), "top-k"),
            (
                Box::new(|r| r.prompt = "x".repeat(MAX_PROMPT_BYTES + 1)),
                "prompt",
            ),
        ];
        for (edit, expected) in cases {
            let mut r = request();
            edit(&mut r);
            let m = message(check_generate(&r));
            assert!(m.contains(expected), "{m:?} should mention {expected:?}");
            // The app maps messages that mention the draft model to "needs a draft".
            assert!(!m.contains("draft"), "{m}");
        }
    }

    #[test]
    fn a_race_checks_its_modes_and_warm_up() {
        let mut race = CompareRequest::new(request(), vec![RunMode::Plain; 20]);
        assert!(message(check_compare(&race)).contains("modes to race is 20"));
        race.modes = vec![
            RunMode::Plain,
            RunMode::Nasd {
                ngram_n: 3,
                filler_top_k: Some(0),
            },
        ];
        assert!(message(check_compare(&race)).contains("filler top-k"));
        race.modes = vec![RunMode::Plain];
        race.warmup_tokens = 1 << 30;
        assert!(message(check_compare(&race)).contains("warm-up tokens"));
        race.warmup_tokens = 8;
        check_compare(&race).unwrap();
    }
}
