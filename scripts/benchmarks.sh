#!/usr/bin/env bash
# Reproduces every figure in docs/benchmarks.md on this machine (flex backend, CPU).
# Run it on an idle machine: the figures are wall-clock speeds.
#
#   bash ../shared/models/fetch.sh smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b
#   bash scripts/benchmarks.sh [OUT_DIR]        # default: bench-out/
#
# Writes JSON, text tables, run logs and HTML reports into OUT_DIR; docs/benchmarks.md
# quotes them. Parts can be skipped: PARTS="core int8 decode suite predict" (default all).
set -euo pipefail
cd "$(dirname "$0")/.."

M="${TANDEM_MODELS:-$HOME/.cache/tandem-test-models}"
S="$M/smollm2-135m"
Q05="$M/qwen2.5-coder-0.5b"
Q15="$M/qwen2.5-coder-1.5b"
OUT="${1:-bench-out}"
PARTS="${PARTS:-core int8 decode suite predict}"
mkdir -p "$OUT"

cargo build --release -p tandem-cli
T="${CARGO_TARGET_DIR:-target}/release/tandem"
export TANDEM_DATA_DIR="$OUT/history"
has() { [[ " $PARTS " == *" $1 "* ]]; }
log() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

if has core || has int8; then
  # Resident memory and speed of each model at f32 and int8, each in its own process.
  # The first int8 load quantizes and writes the cache; the timed one reads it.
  for model in "$S" "$Q05" "$Q15"; do
    name=$(basename "$model")
    for precision in f32 int8; do
      flag=(); [[ $precision == int8 ]] && flag=(--int8)
      [[ $precision == int8 ]] && "$T" bench --model "$model" --int8 --decode-tokens 1 \
        --prefill-tokens 8 --verify-context 8 --repeats 1 >/dev/null
      log "bench $name $precision"
      "$T" bench --model "$model" "${flag[@]}" --decode-tokens 32 --prefill-tokens 128 \
        --verify-context 128 --repeats 3 --output "$OUT/bench-$name-$precision.json" >/dev/null
      cat "$OUT/bench-$name-$precision.json"
    done
  done
fi

if has int8; then
  # Top-1 agreement and logit error of int8 against f32 on ~1000 positions of real text.
  log "int8 agreement"
  TANDEM_REQUIRE_MODELS=1 cargo test --release -p tandem-model --test int8 -- \
    --include-ignored --nocapture agrees_with_f32_on_real_text 2>&1 | tee "$OUT/int8-agreement.txt"
fi

if has decode; then
  # Plain vs speculative vs NASD on one prompt each (greedy; outputs must be identical).
  log "decode: SmolLM2 (int8 self-draft of the f32 model)"
  "$T" compare --target "$S" --draft "$S" --draft-int8 --chat --color never --max-new-tokens 128 \
    --prompt "Explain in a short paragraph why the sky is blue." \
    --export "$OUT/compare-smollm2" | tee "$OUT/compare-smollm2.txt"
  log "decode: Qwen2.5-Coder 0.5B -> 1.5B"
  "$T" compare --target "$Q15" --draft "$Q05" --chat --color never --max-new-tokens 96 \
    --prompt "Write a Python function that checks whether a number is prime, with a docstring." \
    --export "$OUT/compare-qwen" | tee "$OUT/compare-qwen.txt"
fi

if has suite; then
  log "suite: SmolLM2 (NASD and int8 self-draft vs f32 plain)"
  "$T" bench --suite suites/default.jsonl --model "$S" --draft "$S" --draft-int8 --chat \
    --color never --max-new-tokens 64 --export "$OUT/suite-smollm2" | tee "$OUT/suite-smollm2.txt"
  log "suite: Qwen2.5-Coder 0.5B -> 1.5B"
  "$T" bench --suite suites/default.jsonl --model "$Q15" --draft "$Q05" --chat \
    --color never --max-new-tokens 40 --export "$OUT/suite-qwen" | tee "$OUT/suite-qwen.txt"
fi

if has predict; then
  log "predict: SmolLM2 int8 self-draft"
  "$T" predict --target "$S" --draft "$S" --draft-int8 --chat | tee "$OUT/predict-smollm2.txt"
  log "predict: Qwen2.5-Coder 0.5B -> 1.5B"
  "$T" predict --target "$Q15" --draft "$Q05" --chat | tee "$OUT/predict-qwen.txt"
fi
log done
