"""Simulates int8 weight schemes in f32 with Hugging Face transformers and reports
next-token top-1 agreement with the f32 model, the figures behind the scheme table in
docs/benchmarks.md ("int8 accuracy"). A second table keeps Tandem's weights (or f32
weights, to isolate the activations' share) and varies how the activations are
quantized (the CPU engine's kernels multiply int8 activations): levels, channel
grouping, Hadamard rotations; the figures behind the verify pass's cost ("What one
activation level costs"). `--activations` runs the second table alone.

It runs outside Tandem on purpose: an independent check of what each rounding choice
costs. Texts are the ones `crates/tandem-model/tests/int8.rs` measures on; the
calibration text is Tandem's (`crates/tandem-model/src/quant/calibration.txt`).

    python3 -m venv .venv && .venv/bin/pip install torch transformers tokenizers
    .venv/bin/python scripts/int8_schemes.py ~/.cache/tandem-test-models/smollm2-135m [--activations]

Takes about ten minutes for SmolLM2-135M on 2 cores.
"""
import re
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

torch.set_grad_enabled(False)
ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = 64  # scales max/127 … max/64, as tandem_model::quant::SCALE_CANDIDATES


def rust_str(source, name):
    """A `const NAME: &str = "…";` literal of a Rust file, unescaped."""
    m = re.search(r'const %s: &str = "(.*?)";\n' % name, source, re.S)
    return re.sub(r"\\\n\s*", "", m.group(1)).replace("\\n", "\n").replace('\\"', '"')


def quantize(w, block, search, importance=None):
    """Symmetric int8 of an HF [out, in] weight, one scale per output row per `block`
    inputs, dequantized back to f32. `search`: pick the scale with the smallest
    (importance-weighted) squared error among CANDIDATES, else max/127."""
    out, k = w.shape
    wb = w.reshape(out, k // block, block)
    imp = (importance if importance is not None else torch.ones(k)).reshape(1, k // block, block)
    mx = wb.abs().amax(-1, keepdim=True)
    mx[mx == 0] = 1
    best, best_err = None, None
    for j in range(CANDIDATES if search else 1):
        s = mx / (127 - j)
        q = (wb / s).round().clamp(-127, 127) * s
        err = (((q - wb) ** 2) * imp).sum(-1, keepdim=True)
        if best is None:
            best, best_err = q, err
        else:
            better = err < best_err
            best, best_err = torch.where(better, q, best), torch.minimum(err, best_err)
    return best.reshape(out, k)


def main(model_dir, activations_only):
    tests = (ROOT / "crates/tandem-model/tests/int8.rs").read_text()
    texts = [rust_str(tests, n) for n in ("TEXT", "TEXT2", "TEXT3")]
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    ids = [tok.encode(t).ids for t in texts]
    calib = tok.encode((ROOT / "crates/tandem-model/src/quant/calibration.txt").read_text()).ids
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if model.lm_head.weight is model.model.embed_tokens.weight:
        # Tandem quantizes a copy of a tied head; the embedding table stays f32.
        model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.clone())
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    original = {n: p.clone() for n, p in model.named_parameters()}

    def logits():
        return [model(torch.tensor([t])).logits[0] for t in ids]

    reference = logits()
    print(f"{sum(map(len, ids))} positions, calibration {len(calib)} tokens")

    # Mean square of each input channel of each linear over the calibration text.
    sums, hooks = {}, []
    for name, module in linears:
        def hook(_, inputs, __, name=name):
            x = inputs[0].reshape(-1, inputs[0].shape[-1])
            for size in ROTATIONS:
                r = rotate(x, size).double()
                sums[name, size] = (r * r).sum(0) / r.shape[0]
        hooks.append(module.register_forward_hook(hook))
    model(torch.tensor([calib]))
    for h in hooks:
        h.remove()
    importance = {n: v.float() for (n, size), v in sums.items() if size == 1}

    def report(label, rows):
        agree = sum((r.argmax(-1) == o.argmax(-1)).sum().item() for r, o in zip(reference, rows))
        total = sum(r.shape[0] for r in reference)
        err = sum((r - o).abs().mean().item() for r, o in zip(reference, rows)) / len(rows)
        print(f"{label:<52} top-1 {agree}/{total} = {100 * agree / total:.2f}%  mean |logit error| {err:.4f}")

    schemes = [] if activations_only else [
        ("blocks of 32, max/127", 32, False, False),
        ("blocks of 16, max/127", 16, False, False),
        ("blocks of 16, unweighted search", 16, True, False),
        ("blocks of 32, importance-weighted search", 32, True, True),
        ("blocks of 16, importance-weighted search", 16, True, True),
    ]
    for label, block, search, weighted in schemes:
        for name, p in model.named_parameters():
            p.copy_(original[name])
        for name, module in linears:
            imp = importance[name] if weighted else None
            module.weight.copy_(quantize(module.weight, block, search, imp))
        report(label, logits())

    # Activations: Tandem's weights (blocks of 16, importance-weighted search), and per
    # linear input each row quantized per block of 16 inputs as the kernels take it.
    print("activations (weights as Tandem quantizes them unless the label says f32):")
    for label, levels, grouped, size, int8_weights, top in ACTIVATION_SCHEMES:
        for name, p in model.named_parameters():
            p.copy_(original[name])
        hooks = []
        for name, module in linears:
            imp = sums[name, size].float()
            blocks = imp.numel() // 16
            # Grouped: input channels sorted by calibrated mean square, so each block
            # holds channels of like loudness (the weights' blocks follow).
            order = torch.argsort(imp, descending=True) if grouped else torch.arange(imp.numel())
            back = torch.argsort(order)
            # Rotated: x·H and W·H for a block-diagonal Hadamard H (orthogonal and
            # symmetric, so x·Wᵀ = (x·H)·(W·H)ᵀ), which spreads a loud channel over its
            # rotation block; the weights are quantized after the rotation.
            w = rotate(module.weight, size)[:, order]
            if int8_weights:
                w = quantize(w, 16, True, imp[order])
            module.weight.copy_(w[:, back])
            # Two levels on a share of the blocks: the loudest by calibrated mean square.
            two = torch.zeros(blocks, dtype=torch.bool)
            count = round(levels * blocks)
            if count:
                two[torch.topk(imp[order].reshape(blocks, 16).amax(-1), count).indices] = True

            def pre(_, inputs, order=order, back=back, two=two, size=size, top=top):
                x = rotate(inputs[0], size)[..., order]
                return (quantize_activations(x, two, top)[..., back],)
            hooks.append(module.register_forward_pre_hook(pre))
        report(label, logits())
        for h in hooks:
            h.remove()

    for name, p in model.named_parameters():
        p.copy_(original[name])
    model.to(torch.bfloat16)
    report("the model in bf16 (no int8)", [r.float() for r in logits()])


# (label, share of blocks with two levels, channels grouped by loudness, Hadamard
# rotation size (1: none), weights int8 (else f32), largest integer of the first level)
ACTIVATION_SCHEMES = [
    ("two levels (15 bits), as Tandem's kernels", 1.0, False, 1, True, 127),
    ("one level (8 bits), as llama.cpp's Q8 activations", 0.0, False, 1, True, 127),
    ("one level, channels grouped by loudness", 0.0, True, 1, True, 127),
    ("two levels, channels grouped by loudness", 1.0, True, 1, True, 127),
    ("two levels on the loudest 1/16 of blocks", 1 / 16, False, 1, True, 127),
    ("two levels on the loudest 1/4 of blocks", 1 / 4, False, 1, True, 127),
    ("one level, Hadamard rotation of 16 inputs", 0.0, False, 16, True, 127),
    ("one level, Hadamard rotation of 64 inputs", 0.0, False, 64, True, 127),
    ("two levels, Hadamard rotation of 64 inputs", 1.0, False, 64, True, 127),
    ("two levels, f32 weights", 1.0, False, 1, False, 127),
    ("one level, f32 weights", 0.0, False, 1, False, 127),
    ("one level of 9 bits (sign on weights), f32 weights", 0.0, False, 1, False, 255),
]
ROTATIONS = sorted({s[3] for s in ACTIVATION_SCHEMES})


def hadamard(n):
    """The n × n Sylvester Hadamard matrix over √n (n a power of two)."""
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h / n**0.5


def rotate(x, size):
    """x times the block-diagonal Hadamard rotation of `size` inputs along its last axis."""
    if size == 1:
        return x
    k = x.shape[-1]
    return (x.reshape(*x.shape[:-1], k // size, size) @ hadamard(size)).reshape(x.shape)


def quantize_activations(x, two, top=127):
    """Per row and block of 16 inputs: `hi` = x / (max/top) rounded; where `two` marks the
    block, also `lo`, the remainder at 128 times the resolution (within ±64)."""
    k = x.shape[-1]
    xb = x.reshape(-1, k // 16, 16)
    mx = xb.abs().amax(-1, keepdim=True)
    mx[mx == 0] = 1
    s = mx / top
    y = (xb / s).round().clamp(-top, top) * s
    lo = ((xb - y) / (s / 128)).round().clamp(-64, 64) * s / 128
    return torch.where(two.view(1, -1, 1), y + lo, y).reshape(x.shape)


if __name__ == "__main__":
    main(sys.argv[1], "--activations" in sys.argv[2:])
