#!/usr/bin/env bash
# Tandem's CPU engine beside llama.cpp, in one run on this machine (figures drift between
# runs on shared machines, so only ratios from the same run compare):
#
#   - decode tok/s: llama-bench (Q8_0, -p 0 -n 64) vs `tandem bench --int8` (context 128)
#     on SmolLM2-135M, Qwen2.5-Coder-0.5B and -1.5B, with GB/s and the roofline;
#   - the cost of a pass over 1/2/4/8/16 new tokens on 128 cached ones, relative to one
#     (llama-bench -p N -n 0 -d 128 vs tandem bench's verify passes);
#   - speculative decoding on the Qwen pair, greedy, code prompt, 128 tokens:
#     llama-speculative vs `tandem compare --int8 --draft-int8`, with γ = 4 and with the
#     default γ rule (`confident`) and the draft's logits limited to DRAFT_VOCAB ids;
#   - the default suite's speculative speedup over plain on the Qwen pair, with the whole
#     draft vocabulary and with DRAFT_VOCAB (SUITE=0 skips).
#
#   bash ../shared/models/fetch.sh smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b
#   bash scripts/bench-vs-llamacpp.sh [OUT_DIR]      # default: bench-out/vs-llamacpp
#
# Writes every tool's raw output and summary.md (the tables docs/benchmarks.md quotes).
set -euo pipefail
cd "$(dirname "$0")/.."

M="${TANDEM_MODELS:-$HOME/.cache/tandem-test-models}"
L="${LLAMACPP_HOME:-$HOME/.cache/llamacpp}"
OUT="${1:-bench-out/vs-llamacpp}"
THREADS="${TANDEM_THREADS:-2}"
SUITE="${SUITE:-1}"
DRAFT_VOCAB="${DRAFT_VOCAB:-65536}"
PROMPT="${PROMPT:-Write a Python function that checks whether a number is prime, with a docstring and a short example of its use.}"
mkdir -p "$OUT"
export TANDEM_THREADS="$THREADS" TANDEM_DATA_DIR="$OUT/history"
log() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

if [[ ! -x "$L/bin/llama-bench" ]]; then
  log "building llama.cpp"
  # The build script lists the unpacked sources with `ls | head` under pipefail, which
  # fails before the first unpack (on a fresh machine it downloads the archive, then
  # stops there): unpack the archive when it is all there is, and run it again.
  mkdir -p "$L"
  unpack() {
    if ls "$L"/llama_cpp_python-*.tar.gz >/dev/null 2>&1 && ! ls -d "$L"/llama_cpp_python-*/ >/dev/null 2>&1; then
      tar xzf "$L"/llama_cpp_python-*.tar.gz -C "$L"
    fi
  }
  unpack
  if ! bash ../shared/bench/build-llamacpp.sh; then
    unpack
    bash ../shared/bench/build-llamacpp.sh
  fi
fi
# On a CPU that reports AMX, llama.cpp repacks Q8_0 weights for its AMX backend (its
# fastest decode there), and where the system does not grant a process the AMX state
# (seen in VMs) batched products then die with SIGILL. Batched runs (passes of several
# tokens, speculative decoding) then go without repacking, llama.cpp's plain CPU path
# (the one it takes on a CPU without AMX, such as an EPYC); decode is measured both ways.
LB="$L/bin"
BATCH=()
if ! "$LB/llama-bench" -m "$L/gguf/smollm2-Q8_0.gguf" -t 1 -p 8 -n 0 -r 1 >/dev/null 2>&1; then
  BATCH=(--repack 0)
  echo "llama.cpp's batched path crashes with repacking here: batched runs use --repack 0" |
    tee "$OUT/llama-batch.txt"
fi

cargo build --release -p tandem-cli
T="${CARGO_TARGET_DIR:-target}/release/tandem"

models=("smollm2-135m smollm2" "qwen2.5-coder-0.5b qwen05" "qwen2.5-coder-1.5b qwen15")
for entry in "${models[@]}"; do
  read -r dir gguf <<<"$entry"
  [[ -f "$M/$dir/.complete" ]] || { echo "missing $M/$dir (fetch it first)" >&2; exit 1; }
  # The first int8 load quantizes and writes the cache; the measured ones read it.
  "$T" bench --model "$M/$dir" --int8 --decode-tokens 1 --prefill-tokens 8 --verify-context 8 \
    --repeats 1 --no-bandwidth >/dev/null
  log "llama.cpp $gguf Q8_0: decode, and passes of 1..16 tokens at depth 128"
  "$LB/llama-bench" -m "$L/gguf/$gguf-Q8_0.gguf" -t "$THREADS" -p 0 -n 64 -o json \
    >"$OUT/llama-$gguf-decode.json"
  "$LB/llama-bench" -m "$L/gguf/$gguf-Q8_0.gguf" -t "$THREADS" -p 0 -n 64 --repack 0 -o json \
    >"$OUT/llama-$gguf-decode-norepack.json"
  "$LB/llama-bench" -m "$L/gguf/$gguf-Q8_0.gguf" -t "$THREADS" -p 1,2,4,8,16 -n 0 -d 128 \
    "${BATCH[@]}" -o json >"$OUT/llama-$gguf-passes.json"
  log "tandem $dir int8"
  "$T" bench --model "$M/$dir" --int8 --decode-tokens 64 --prefill-tokens 64 \
    --verify-context 128 --repeats 5 --output "$OUT/tandem-$gguf.json" >/dev/null
done

log "speculative: llama-speculative, Qwen 1.5B with the 0.5B drafting (Q8_0, greedy)"
"$LB/llama-speculative" -m "$L/gguf/qwen15-Q8_0.gguf" -md "$L/gguf/qwen05-Q8_0.gguf" \
  -t "$THREADS" -td "$THREADS" --temp 0 -n 128 --spec-draft-n-max 4 -p "$PROMPT" \
  ${BATCH:+--no-repack} >"$OUT/llama-speculative.txt" 2>&1
log "speculative: tandem compare (int8 target and draft, greedy, γ = 4)"
"$T" compare --target "$M/qwen2.5-coder-1.5b" --draft "$M/qwen2.5-coder-0.5b" --int8 \
  --draft-int8 --modes plain,speculative --max-new-tokens 128 --gamma 4 --color never \
  --prompt "$PROMPT" --export "$OUT/compare-qwen" >"$OUT/tandem-compare.txt" 2>&1
log "speculative: tandem compare (default γ rule, draft logits of $DRAFT_VOCAB ids)"
"$T" compare --target "$M/qwen2.5-coder-1.5b" --draft "$M/qwen2.5-coder-0.5b" --int8 \
  --draft-int8 --draft-vocab "$DRAFT_VOCAB" --modes plain,speculative --max-new-tokens 128 \
  --color never --prompt "$PROMPT" --export "$OUT/compare-qwen-confident" \
  >"$OUT/tandem-compare-confident.txt" 2>&1

if [[ "$SUITE" == 1 ]]; then
  log "the default suite on the Qwen pair (int8, default γ rule)"
  "$T" bench --suite suites/default.jsonl --model "$M/qwen2.5-coder-1.5b" --int8 \
    --draft "$M/qwen2.5-coder-0.5b" --draft-int8 --modes plain,speculative --color never \
    --export "$OUT/suite" >"$OUT/tandem-suite.txt" 2>&1
  log "the default suite on the Qwen pair (int8, default γ rule, draft logits of $DRAFT_VOCAB ids)"
  "$T" bench --suite suites/default.jsonl --model "$M/qwen2.5-coder-1.5b" --int8 \
    --draft "$M/qwen2.5-coder-0.5b" --draft-int8 --draft-vocab "$DRAFT_VOCAB" \
    --modes plain,speculative --color never --export "$OUT/suite-vocab" \
    >"$OUT/tandem-suite-vocab.txt" 2>&1
fi

python3 - "$OUT" <<'PY'
import json, re, sys, pathlib
out = pathlib.Path(sys.argv[1])
rows, passes = [], []
for gguf, name in [("smollm2", "SmolLM2-135M"), ("qwen05", "Qwen2.5-Coder-0.5B"), ("qwen15", "Qwen2.5-Coder-1.5B")]:
    ll = json.loads((out / f"llama-{gguf}-decode.json").read_text())
    llama = next(t["avg_ts"] for t in ll if t["n_gen"] > 0)
    lr = json.loads((out / f"llama-{gguf}-decode-norepack.json").read_text())
    plain_path = next(t["avg_ts"] for t in lr if t["n_gen"] > 0)
    t = json.loads((out / f"tandem-{gguf}.json").read_text())
    bw = t["memory"]["read_gb_per_sec"] if t.get("memory") else float("nan")
    gb = t["weight_bytes_per_token"] / 1e9
    rows.append(f"| {name} | {llama:.1f} | {plain_path:.1f} | {t['decode_tokens_per_sec']:.1f} | {t['decode_tokens_per_sec'] / llama:.2f} | {t['decode_tokens_per_sec'] / plain_path:.2f} | "
                f"{gb:.3f} | {t['decode_gb_per_sec']:.1f} | {bw:.1f} | {bw / gb:.1f} | {t['decode_percent_of_read_bandwidth']:.0f}% |")
    lp = json.loads((out / f"llama-{gguf}-passes.json").read_text())
    ms = {p["n_prompt"]: p["n_prompt"] / p["avg_ts"] * 1e3 for p in lp if p["n_prompt"] > 0}
    tv = {v["new_tokens"]: v["ms"] for v in t["verify"]}
    cells = " | ".join(f"{tv[n] / tv[1]:.2f} / {ms[n] / ms[1]:.2f}" for n in (2, 4, 8, 16))
    passes.append(f"| {name} | {tv[1]:.1f} / {ms[1]:.1f} | {cells} |")
text = ["## Decode (int8 vs llama.cpp Q8_0, same run)", "",
        "| model | llama.cpp tok/s | llama.cpp --repack 0 | Tandem tok/s | ratio | ratio to --repack 0 | GB read per token (Tandem) | GB/s | read bandwidth GB/s | roofline tok/s | of bandwidth |",
        "|---|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        "## A pass over n new tokens on 128 cached, relative to one (Tandem / llama.cpp)", "",
        "| model | 1 token, ms | 2 | 4 | 8 | 16 |", "|---|---|---|---|---|---|", *passes, ""]
spec = (out / "llama-speculative.txt").read_text()
m = re.search(r"decoded\s+(\d+)\s+tokens in\s+([\d.]+)\s+seconds,\s+speed:\s+([\d.]+)\s+t/s", spec)
llama_spec = float(m.group(3)) if m else float("nan")
def tps(mode, name="tandem-compare.txt"):
    m = re.search(rf"^{mode}\s+\d+\s+[\d.]+\s+([\d.]+)", (out / name).read_text(), re.M)
    return float(m.group(1)) if m else float("nan")
conf = "tandem-compare-confident.txt"
over = re.findall(r"^(\w+): decoder overhead ([\d.]+)%", (out / conf).read_text(), re.M)
text += ["## Speculative decoding, Qwen2.5-Coder 0.5B → 1.5B (greedy, 128 tokens)", "",
         "| | tok/s |", "|---|---|",
         f"| llama-speculative (Q8_0, draft max 4) | {llama_spec:.1f} |",
         f"| Tandem plain (int8) | {tps('plain'):.1f} |",
         f"| Tandem speculative (int8, γ = 4) | {tps('speculative'):.1f} |",
         f"| Tandem plain (int8), second race | {tps('plain', conf):.1f} |",
         f"| Tandem speculative (int8, default γ rule, draft vocabulary limited) | {tps('speculative', conf):.1f} |",
         f"| ratio Tandem / llama-speculative (γ = 4; default rule) | {tps('speculative') / llama_spec:.2f}; {tps('speculative', conf) / llama_spec:.2f} |", "",
         "Decoder overhead (wall time outside the models' forwards): " + ", ".join(f"{k} {v}%" for k, v in over), ""]
for name, title in [("tandem-suite.txt", "whole draft vocabulary"), ("tandem-suite-vocab.txt", "draft vocabulary limited")]:
    suite = out / name
    if suite.exists():
        text += [f"## Default suite (Qwen pair, int8, {title})", "", "```", suite.read_text()[-2500:], "```", ""]
(out / "summary.md").write_text("\n".join(text))
print("\n".join(text))
PY
