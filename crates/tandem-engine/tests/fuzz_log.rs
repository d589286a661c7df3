//! Seeded mutation fuzzing of the run-log reader (`tandem replay`, the history): a log
//! someone shared is untrusted input. For every mutation of the golden log the reader
//! must return, fail with a typed [`EngineError::BadFile`] (or `Io`) naming the log, and
//! never ask for one allocation over [`MAX_ALLOCATION`] (a counting global allocator
//! watches this test binary). `TANDEM_FUZZ_SEED` and `TANDEM_FUZZ_CASES` change the run.

use std::path::Path;
use std::time::Instant;

use tandem_model::fuzzing::{CountingAllocator, Rng};

use tandem_engine::error::EngineError;
use tandem_engine::export::jsonl::read_log;

/// The largest single allocation the reader may make on these small inputs.
const MAX_ALLOCATION: usize = 64 << 20;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const HOSTILE: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "-1e308",
    "NaN",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "null",
    "\"\"",
    "[]",
    "{}",
    "\n",
    "\r\n",
    "\u{0}",
    "\\ud800",
    "{\"type\":\"header\"}",
    "{\"type\":\"summary\",\"summary\":{}}",
];

fn insertion(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("\"{}\"", "a".repeat(1 + rng.below(100_000))),
        1 => "[".repeat(1 + rng.below(5_000)),
        2 => "{\"a\":".repeat(1 + rng.below(2_000)),
        _ => HOSTILE[rng.below(HOSTILE.len())].to_string(),
    }
}

/// Replaces one run of digits with a hostile number (aimed at ids, counts and sizes).
fn replace_number(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
        .collect();
    if starts.is_empty() {
        return;
    }
    let start = starts[rng.below(starts.len())];
    let end = (start..bytes.len())
        .find(|&i| !bytes[i].is_ascii_digit())
        .unwrap_or(bytes.len());
    let number = HOSTILE[rng.below(9)].as_bytes().to_vec();
    bytes.splice(start..end, number);
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => bytes.truncate(rng.below(len)),
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                bytes.drain(start..end);
            }
            3 if len > 0 => {
                // Duplicate a stretch, often whole lines (a repeated header or step).
                let start = rng.below(len);
                let end = (start + 1 + rng.below(4_096)).min(len);
                let copy = bytes[start..end].to_vec();
                let at = rng.below(len + 1);
                bytes.splice(at..at, copy);
            }
            4 | 5 => replace_number(rng, &mut bytes),
            _ => {
                let at = rng.below(len + 1);
                let text = insertion(rng);
                bytes.splice(at..at, text.into_bytes());
            }
        }
    }
    bytes
}

/// The golden log with its placeholders for timings (numbers) filled in.
fn seed_log() -> Vec<u8> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/speculative-run.jsonl"),
    )
    .unwrap();
    let mut text = text;
    for timing in [
        "draft_ms",
        "verify_ms",
        "model_ms",
        "wall_ms",
        "time_to_first_token_ms",
        "tokens_per_second",
    ] {
        text = text.replace(&format!("\"<{timing}>\""), "1.25");
    }
    text.into_bytes()
}

#[test]
fn mutated_run_logs_give_typed_errors_within_bounds() {
    let seed = std::env::var("TANDEM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x10c5_eed5_u64);
    let cases: usize = std::env::var("TANDEM_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        * 20_000;
    let golden = seed_log();
    read_log(golden.as_slice(), "golden").expect("the seed log reads");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut parsed, mut refused) = (0, 0);
    for case in 0..cases {
        let input = mutate(&mut rng, &golden);
        CountingAllocator::reset();
        let outcome = std::panic::catch_unwind(|| read_log(input.as_slice(), "fuzz.jsonl"));
        let largest = CountingAllocator::largest();
        let show = || String::from_utf8_lossy(&input[..input.len().min(4_000)]).into_owned();
        assert!(
            largest <= MAX_ALLOCATION,
            "log #{case}: an allocation of {largest} bytes; input:\n{}",
            show()
        );
        match outcome {
            Err(_) => panic!("log #{case}: the reader panicked; input:\n{}", show()),
            Ok(Ok(_)) => parsed += 1,
            Ok(Err(err)) => {
                assert!(
                    matches!(err, EngineError::BadFile { .. } | EngineError::Io { .. }),
                    "log #{case}: unexpected error kind: {err:?}"
                );
                assert!(err.to_string().contains("fuzz.jsonl"), "log #{case}: {err}");
                refused += 1;
            }
        }
    }
    eprintln!(
        "{cases} logs ({parsed} read, {refused} refused) in {:?}",
        started.elapsed()
    );
    assert!(
        parsed > 100 && refused > 1_000,
        "{parsed} read, {refused} refused"
    );
}
