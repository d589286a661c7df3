//! Seeded mutation fuzzing of the run-log reader (`tandem replay`, the history): a log
//! someone shared is untrusted input. For every mutation of the golden log the reader
//! must return, fail with a typed [`EngineError::BadFile`] (or `Io`) naming the log, and
//! never ask for one allocation over [`MAX_ALLOCATION`] (a counting global allocator
//! watches this test binary). `TANDEM_FUZZ_SEED` and `TANDEM_FUZZ_CASES` change the run.

use std::path::Path;
use std::time::Instant;

use tandem_model::fuzzing::{mutate, CountingAllocator, Mutations, Rng};

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
    // The first nine hostile values are the numbers; a duplicated stretch is often
    // whole lines (a repeated header or step).
    let mutations = Mutations {
        numbers: &HOSTILE[..9],
        max_duplicate: 4_096,
        insertion: &insertion,
    };
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut parsed, mut refused) = (0, 0);
    for case in 0..cases {
        let input = mutate(&mut rng, &golden, &mutations);
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
