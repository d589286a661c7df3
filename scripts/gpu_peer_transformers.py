"""The GPU check's peer: Hugging Face transformers' plain greedy `generate` on the shapes of
`tandem bench --synthetic` (random weights, f16), and the device's copy bandwidth, as JSON.

    python3 scripts/gpu_peer_transformers.py --device cuda --context 512 --tokens 64 \
        --shapes llama-3.2-1b llama-3.1-8b

Run by scripts/gpu-check.sh. The shapes repeat crates/tandem-model/src/formats/synthetic.rs
(the real models' config.json fields that set the speed); speed does not depend on the
weight values, so the models are built from their configs without a download.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

# (hidden, intermediate, layers, heads, kv heads, vocab, tied)
SHAPES = {
    "tiny": (64, 128, 2, 4, 2, 512, True),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 128_256, True),
    "llama-3.1-8b": (4096, 14_336, 32, 32, 8, 128_256, False),
}


def config(name: str) -> LlamaConfig:
    hidden, intermediate, layers, heads, kv_heads, vocab, tied = SHAPES[name]
    return LlamaConfig(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        max_position_embeddings=131_072,
        rms_norm_eps=1e-5,
        rope_theta=500_000.0,
    )


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(device: str, gib: float = 2.0, repeats: int = 10) -> float:
    """GB/s of `b.copy_(a)` on the device, bytes read plus bytes written."""
    n = int(gib * (1 << 30)) // 4
    a = torch.ones(n, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        b.copy_(a)
    sync(device)
    seconds = time.perf_counter() - start
    return 2 * a.numel() * 4 * repeats / seconds / 1e9


def measure(name: str, device: str, context: int, tokens: int) -> dict:
    dtype = torch.float16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config(name)).to(dtype).eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    vocab = model.config.vocab_size
    prompt = torch.randint(0, vocab, (1, context), device=device)

    def generate(new: int) -> float:
        sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                pad_token_id=0,
            )
        sync(device)
        return time.perf_counter() - start

    generate(2)  # warm-up: kernels, caches
    prefill = min(generate(1) for _ in range(2))
    total = min(generate(tokens + 1) for _ in range(2))
    decode = tokens / max(total - prefill, 1e-9)
    result = {
        "shape": name,
        "dtype": str(dtype).removeprefix("torch."),
        "context": context,
        "decode_tokens": tokens,
        "decode_tokens_per_sec": decode,
        "prefill_seconds": prefill,
        "weight_bytes": weight_bytes,
        "decode_gb_per_sec": weight_bytes * decode / 1e9,
    }
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--shapes", nargs="+", default=["llama-3.2-1b", "llama-3.1-8b"], choices=sorted(SHAPES))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_peer_transformers: torch sees no CUDA device", file=sys.stderr)
        return 1
    import transformers

    report = {
        "peer": "transformers generate (greedy)",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "copy_gb_per_sec": copy_bandwidth(args.device, gib=2.0 if args.device == "cuda" else 0.25),
        "runs": [],
    }
    for name in args.shapes:
        run = measure(name, args.device, args.context, args.tokens)
        run["percent_of_copy_bandwidth"] = 100 * run["decode_gb_per_sec"] / report["copy_gb_per_sec"]
        report["runs"].append(run)
        print(f"{name}: {run['decode_tokens_per_sec']:.1f} tok/s ({run['percent_of_copy_bandwidth']:.0f} % of copy)", file=sys.stderr)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
