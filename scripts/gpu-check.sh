#!/usr/bin/env bash
# The GPU check: one command on a GPU machine that proves the CUDA path correct and
# measures it, writing one JSON file ($OUT/gpu-check.json) and printing a summary.
#
#   On the device (the `device` tool; no Rust there, so the binary is built here):
#     CUDARC_CUDA_VERSION=13000 cargo build --release -p tandem-cli --features cuda
#     mkdir -p bench-out && strip -o bench-out/tandem-cuda target/release/tandem
#     gzip -9f bench-out/tandem-cuda      # 82 MB stripped, 20 MB gzipped: the carry limit is 64 MiB
#     bash scripts/gpu-check.sh --tandem bench-out/tandem-cuda.gz      # (carry bench-out)
#   Dry run here, on the CPU (tiny shapes, burn's flex backend in place of cuda; the
#   peer runs where PYTHON has torch and transformers, else it is skipped):
#     PYTHON=.venv/bin/python bash scripts/gpu-check.sh --backend flex --tiny
#
# What it runs (every step timed; the whole is sized for under 8 minutes on an H200):
#   1. Environment: nvidia-smi, then a tiny synthetic model on the backend, which fails
#      early and clearly when CUDA or NVRTC cannot be loaded.
#   2. Correctness on every fixture of tests/fixtures: logits of one forward against
#      transformers' (reference.json; ≤ 1e-3 on cuda, ≤ 1e-4 on flex), each row computed
#      alone (`tandem logits --stepwise`) against the same row of the one forward (the
#      max difference), int8 top-1 agreement with f32; f16 weights within 1e-2 of the
#      logits' scale (transformers' own f16 is 0.006–0.024 off its f32 here:
#      scripts/f16_transformers.py); the fused cuda backend against the unfused one
#      (f32, f16 and int8 logits of three fixtures; cuda only); greedy speculative (γ = 1..8, a second
#      fixture as the draft) and greedy NASD identical to plain.
#   3. Speed on synthetic Llama 3.2 1B and Llama 3.1 8B shapes (seeded random weights,
#      `tandem bench --synthetic`), f16 and int8: decode tok/s at 512 context, prefill,
#      verify passes of 2/4/8/16 tokens relative to 1, GB/s and % of the device's copy
#      bandwidth; the predicted speculative speedup of the 1B drafting for the 8B at
#      α = 0.6/0.7/0.8; and the peer, transformers' `generate` at f16 on the same shapes
#      (scripts/gpu_peer_transformers.py, which also measures the copy bandwidth).
#
#   4. A real speculative run of the 1B shape drafting for the 8B (int8), plain and at
#      γ = 1..8: the time of a step (random weights: acceptance means nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND=cuda
TANDEM=target/release/tandem
TINY=0
while (($#)); do
  case $1 in
    --backend) BACKEND=$2; shift 2 ;;
    --tandem) TANDEM=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    *) echo "usage: $0 [--backend cuda|flex] [--tandem PATH] [--tiny]" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-bench-out/gpu-check}"
mkdir -p "$OUT/raw"
export TANDEM_DATA_DIR="$OUT/history"
T0=$(date +%s)
log() { printf '\n== %s (%ss)\n' "$1" "$(( $(date +%s) - T0 ))"; }
fail() { echo "gpu-check: $*" >&2; exit 1; }

if [[ $TANDEM == *.gz ]]; then
  [[ -f $TANDEM ]] || fail "no tandem binary at $TANDEM (build it: see the top of this script)"
  gzip -dc "$TANDEM" > "$OUT/tandem" && chmod +x "$OUT/tandem"
  TANDEM=$OUT/tandem
fi
[[ -x $TANDEM ]] || fail "no tandem binary at $TANDEM (build it: see the top of this script)"

log "environment"
if [[ $BACKEND == cuda ]]; then
  command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: is this a GPU machine?"
  nvidia-smi | tee "$OUT/raw/nvidia-smi.txt"
  # burn-cuda loads the driver and NVRTC at run time (cudarc): put every folder that
  # holds an NVRTC (the CUDA toolkit's, the one PyTorch's wheels bring) on the path.
  nvrtc_dirs=$( { find /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu -maxdepth 4 -name 'libnvrtc.so*' 2>/dev/null
                  python3 -c 'import nvidia, os; print(*nvidia.__path__)' 2>/dev/null |
                    xargs -r -I{} find {} -name 'libnvrtc.so*' 2>/dev/null; } | xargs -r -n1 dirname | sort -u | paste -sd: )
  echo "NVRTC found in: ${nvrtc_dirs:-nowhere on the usual paths}"
  export LD_LIBRARY_PATH="${nvrtc_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/raw/gpu.txt" || true
  # cubecl compiles every kernel again in each process unless it keeps the PTX, and
  # every `tandem` call below is a process: keep them in target/ for this run (its
  # autotune results land there by default already). A cubecl.toml of one's own wins.
  if [[ ! -e cubecl.toml ]]; then
    printf '[compilation]\ncache = "target"\n' > cubecl.toml
    trap 'rm -f cubecl.toml' EXIT
  fi
else
  echo "backend $BACKEND: no GPU needed" | tee "$OUT/raw/gpu.txt"
fi
if ! timeout 300 "$TANDEM" bench --synthetic tiny --backend "$BACKEND" --decode-tokens 4 \
    --prefill-tokens 8 --verify-context 16 --repeats 1 --no-bandwidth > "$OUT/raw/probe.json" 2> "$OUT/raw/probe.err"; then
  grep -m5 -i -E "unable|error|panicked" "$OUT/raw/probe.err" >&2 || tail -20 "$OUT/raw/probe.err" >&2
  fail "the $BACKEND backend could not run a tiny model (CUDA driver or NVRTC not loadable?): $OUT/raw/probe.err"
fi
echo "the $BACKEND backend runs a tiny model"

log "correctness: fixtures"
FIXTURES=(llama-gqa llama3-tied qwen2-bias mistral-linear qwen3-qknorm gemma-mqa gemma2-softcap gemma3-text gemma3-vlm phi3-longrope smollm3-nope)
UNFUSED=(llama-gqa qwen2-bias gemma2-softcap)   # GQA, QKV bias, soft-capping and sandwich norms
for f in "${FIXTURES[@]}"; do
  dir=tests/fixtures/$f
  tokens=$(python3 -c "import json; print(','.join(map(str, json.load(open('$dir/reference.json'))['tokens'])))")
  "$TANDEM" logits --backend "$BACKEND" --model "$dir" --tokens "$tokens" --all-positions > "$OUT/raw/$f-f32.json"
  "$TANDEM" logits --backend "$BACKEND" --model "$dir" --tokens "$tokens" --all-positions --stepwise > "$OUT/raw/$f-f32-stepwise.json"
  "$TANDEM" logits --backend "$BACKEND" --model "$dir" --tokens "$tokens" --all-positions --int8 > "$OUT/raw/$f-int8.json"
  # f16 and the unfused backend are new on the GPU: a failure is reported, and the rest runs.
  "$TANDEM" logits --backend "$BACKEND" --model "$dir" --tokens "$tokens" --all-positions --f16 > "$OUT/raw/$f-f16.json" ||
    { echo "$f: f16 FAILED"; rm -f "$OUT/raw/$f-f16.json"; }
  if [[ $BACKEND == cuda && " ${UNFUSED[*]} " == *" $f "* ]]; then
    # burn 0.21's fusion has picked wrong kernels (burn#5264, #5122): the same forwards
    # without it, each op a kernel of its own (three fixtures: each call is a process
    # that compiles its kernels again).
    for p in f32 f16 int8; do
      flag=(); [[ $p != f32 ]] && flag=(--$p)
      "$TANDEM" logits --backend cuda-unfused --model "$dir" --tokens "$tokens" --all-positions "${flag[@]}" > "$OUT/raw/$f-$p-unfused.json" ||
        { echo "$f: unfused $p FAILED"; rm -f "$OUT/raw/$f-$p-unfused.json"; }
    done
  fi
  echo "$f: logits (one forward, stepwise, int8, f16)"
done

log "correctness: greedy speculative (γ = 1..8) and NASD against plain"
PROMPT=$(python3 -c "import json; print(json.load(open('tests/fixtures/llama-gqa/reference.json'))['text'])")
greedy() { # name, then compare's arguments
  local name=$1; shift
  if "$TANDEM" compare --backend "$BACKEND" --max-new-tokens 32 --prompt "$PROMPT" "$@" > "$OUT/raw/greedy-$name.txt" 2>&1 &&
     grep -q "identical to plain ✓" "$OUT/raw/greedy-$name.txt"; then
    echo "$name: identical"; echo "$name true" >> "$OUT/raw/greedy.txt"
  else
    echo "$name: DIFFERS or failed ($OUT/raw/greedy-$name.txt)"; echo "$name false" >> "$OUT/raw/greedy.txt"
  fi
}
: > "$OUT/raw/greedy.txt"
for g in 1 2 3 4 5 6 7 8; do
  greedy "speculative-gamma$g" --target tests/fixtures/llama-gqa --draft tests/fixtures/mistral-linear \
    --modes plain,speculative --gamma "$g"
done
greedy "speculative-int8-self" --target tests/fixtures/qwen2-bias --draft tests/fixtures/qwen2-bias \
  --draft-int8 --modes plain,speculative --gamma 4
greedy "nasd" --target tests/fixtures/llama-gqa --modes plain,nasd --gamma 4

log "speed: synthetic shapes"
if ((TINY)); then SHAPES=(tiny); CONTEXT=64; DECODE=8; else SHAPES=(llama-3.2-1b llama-3.1-8b); CONTEXT=512; DECODE=64; fi
for s in "${SHAPES[@]}"; do
  for p in f16 int8; do
    flag=(--$p)
    "$TANDEM" bench --synthetic "$s" --backend "$BACKEND" "${flag[@]}" --decode-tokens "$DECODE" \
      --prefill-tokens "$CONTEXT" --verify-context "$CONTEXT" --repeats 3 --no-bandwidth \
      > "$OUT/raw/bench-$s-$p.json" 2> "$OUT/raw/bench-$s-$p.err" || echo "bench $s $p failed: $OUT/raw/bench-$s-$p.err"
    echo "$s $p: $(python3 -c "import json; print(round(json.load(open('$OUT/raw/bench-$s-$p.json'))['decode_tokens_per_sec'], 1))" 2>/dev/null || echo '?') tok/s"
  done
done

log "speed: a real speculative run, the small shape drafting for the large (int8)"
# Random weights: acceptance means nothing, so what counts is the time of a step at each γ.
TARGET=${SHAPES[${#SHAPES[@]}-1]}; DRAFT=${SHAPES[0]}
"$TANDEM" bench --synthetic "$TARGET" --synthetic-draft "$DRAFT" --backend "$BACKEND" --int8 \
  --decode-tokens 32 --prefill-tokens 16 --verify-context "$CONTEXT" --repeats 1 --no-bandwidth \
  > "$OUT/raw/speculative.json" 2> "$OUT/raw/speculative.err" || echo "speculative run failed: $OUT/raw/speculative.err"

log "peer: transformers generate (f16) and the device's copy bandwidth"
PY="${PYTHON:-python3}"   # here: PYTHON=.venv/bin/python, with torch and transformers
if "$PY" -c "import torch, transformers" 2>/dev/null; then
  "$PY" scripts/gpu_peer_transformers.py --device "$([[ $BACKEND == cuda ]] && echo cuda || echo cpu)" \
    --context "$CONTEXT" --tokens "$DECODE" --shapes "${SHAPES[@]}" > "$OUT/raw/peer.json" ||
    echo "the peer failed: see above"
else
  echo "skipped: torch and transformers are not importable here"
fi

log "summary"
python3 - "$OUT" "$BACKEND" "${UNFUSED[*]}" <<'EOF'
import json, os, sys
out, backend, unfused_fixtures = sys.argv[1], sys.argv[2], sys.argv[3].split()
raw = os.path.join(out, "raw")
def load(name):
    try:
        with open(os.path.join(raw, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def rows(doc):
    return [p["logits"] for p in doc["positions"]]
def diff(a, b):
    return max(abs(x - y) for r, s in zip(a, b) for x, y in zip(r, s))
tolerance = 1e-3 if backend == "cuda" else 1e-4
fixtures, ok = [], True
for name in sorted(n[:-9] for n in os.listdir(raw) if n.endswith("-f32.json") and not n.startswith("bench-")):
    # (Only the one-forward files end in "-f32.json": stepwise and unfused have suffixes.)
    ref = json.load(open(f"tests/fixtures/{name}/reference.json"))
    one, step, int8 = load(f"{name}-f32.json"), load(f"{name}-f32-stepwise.json"), load(f"{name}-int8.json")
    f16 = load(f"{name}-f16.json")
    # phi3-longrope's row p is the last of a forward over the first p + 1 tokens
    # (tests/fixtures/README.md): what feeding the tokens one at a time computes.
    ours = rows(step) if ref.get("reference_mode") == "prefix" else rows(one)
    ref_diff = diff(ours, ref["logits"])
    row_diff = diff(rows(one), rows(step))
    top1 = lambda r: max(range(len(r)), key=r.__getitem__)
    agree = sum(top1(a) == top1(b) for a, b in zip(rows(one), rows(int8))) / len(rows(one))
    scale = max(abs(v) for r in ref["logits"] for v in r)
    f16_diff = diff(rows(f16), ref["logits"]) if f16 else float("inf")   # inf: it failed
    # Fused against unfused, each precision (cuda only).
    unfused = {p: diff(rows(mine), rows(u)) for p in ("f32", "f16", "int8")
               if (u := load(f"{name}-{p}-unfused.json")) and (mine := load(f"{name}-{p}.json"))}
    if backend == "cuda" and name in unfused_fixtures:
        ok &= len(unfused) == 3   # a failed unfused run fails the check
    fixtures.append({"fixture": name, "max_diff_vs_transformers": ref_diff,
                     "within_tolerance": ref_diff <= tolerance,
                     "max_diff_row_alone_vs_in_pass": row_diff, "int8_top1_agreement": agree,
                     "f16_max_diff_vs_transformers_f32": f16_diff, "logit_scale": scale,
                     "f16_within_tolerance": f16_diff <= 1e-2 * scale,
                     "max_diff_fused_vs_unfused": unfused})
    ok &= ref_diff <= tolerance and f16_diff <= 1e-2 * scale
    # Fusion may reassociate, not change what is computed: f32 and int8 to the f32
    # tolerance, f16 (rounded at other points) to its own bar.
    ok &= all(d <= (1e-2 * scale if p == "f16" else tolerance) for p, d in unfused.items())
greedy = dict(line.split() for line in open(os.path.join(raw, "greedy.txt")))
greedy = {k: v == "true" for k, v in greedy.items()}
ok &= all(greedy.values())
speed = {}
for name in sorted(os.listdir(raw)):
    if name.startswith("bench-") and name.endswith(".json") and (b := load(name)):
        speed[name[6:-5]] = {k: b.get(k) for k in ("decode_tokens_per_sec", "prefill_tokens_per_sec",
                             "weight_bytes_per_token", "decode_gb_per_sec", "load_seconds", "verify")}
peer = load("peer.json")
spec = load("speculative.json")
speculative = spec and spec.get("speculative")
copy = peer and peer.get("copy_gb_per_sec")
for v in speed.values():
    if copy and v["decode_gb_per_sec"]:
        v["percent_of_copy_bandwidth"] = 100 * v["decode_gb_per_sec"] / copy
def predicted(draft, target, alphas=(0.6, 0.7, 0.8)):
    """Speedup of speculative over plain: E[tokens per step] / (γ·c + verify(γ+1)), best γ."""
    c = target["decode_tokens_per_sec"] / draft["decode_tokens_per_sec"]
    cost = {v["new_tokens"]: v["relative_to_one"] for v in target["verify"]}
    best = {}
    for a in alphas:
        options = [((1 - a ** (g + 1)) / (1 - a) / (g * c + cost[g + 1]), g) for g in (1, 3, 7, 15) if g + 1 in cost]
        s, g = max(options)
        best[str(a)] = {"speedup": s, "gamma": g}
    return best
prediction = {}
for p in ("f16", "int8"):
    d, t = speed.get(f"llama-3.2-1b-{p}"), speed.get(f"llama-3.1-8b-{p}")
    if d and t:
        prediction[p] = predicted(d, t)
gpu = open(os.path.join(raw, "gpu.txt")).read().strip()
report = {"backend": backend, "device": gpu, "correct": ok, "fixtures": fixtures, "greedy_identical": greedy,
          "speed": speed, "predicted_speculative_speedup_1b_drafting_8b": prediction,
          "speculative_step_times": speculative, "peer": peer}
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(report, f, indent=1)
print(f"device: {gpu}")
for r in fixtures:
    print(f"{r['fixture']:15} vs transformers {r['max_diff_vs_transformers']:.2e} "
          f"({'ok' if r['within_tolerance'] else 'OVER ' + str(tolerance)}), row alone vs in pass "
          f"{r['max_diff_row_alone_vs_in_pass']:.2e}, int8 top-1 {r['int8_top1_agreement']:.2f}, "
          f"f16 {r['f16_max_diff_vs_transformers_f32']:.2e} ({'ok' if r['f16_within_tolerance'] else 'OVER'})"
          + "".join(f", fused vs unfused {p} {d:.1e}" for p, d in r["max_diff_fused_vs_unfused"].items()))
print("greedy identical to plain:", "all" if all(greedy.values()) else [k for k, v in greedy.items() if not v])
for k, v in speed.items():
    ratios = " ".join(f"{x['new_tokens']}:{x['relative_to_one']:.2f}" for x in v["verify"])
    pct = v.get("percent_of_copy_bandwidth")
    print(f"{k:20} decode {v['decode_tokens_per_sec']:8.1f} tok/s, {v['decode_gb_per_sec']:7.1f} GB/s"
          + (f" ({pct:.0f} % of copy)" if pct else "") + f", verify {ratios}")
for p, best in prediction.items():
    print(f"predicted speedup, 1B drafting for 8B ({p}):", {a: round(b['speedup'], 2) for a, b in best.items()})
for r in speculative or []:
    print(f"speculative γ={r['gamma']}: {r['ms_per_step']:.2f} ms a step (draft {r['draft_ms_per_step']:.2f}, verify {r['verify_ms_per_step']:.2f})")
if peer:
    print("peer:", json.dumps(peer))
print(f"wrote {os.path.join(out, 'gpu-check.json')}")
sys.exit(0 if ok else 1)
EOF
