#!/usr/bin/env python3
"""How far f16 logits lie from the f32 reference on every fixture: transformers' own f16
forward beside Tandem's f16 linear layers (`tandem logits --f16`).

The bar of Tandem's f16 test (crates/tandem-model/tests/transformers_fixtures.rs) rests
on these figures: an absolute 1e-2 against the f32 reference would fail transformers
itself, so the test asks for 1e-2 of the logits' scale.

    .venv/bin/python scripts/f16_transformers.py [--tandem target/release/tandem] [--backend flex]

Needs torch and transformers (the .venv of tests/fixtures/make_fixtures.py). Prints a
table; with --json, one JSON object.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def max_diff(a, b):
    return max(abs(x - y) for r, s in zip(a, b) for x, y in zip(r, s))


def transformers_f16(directory, reference):
    """transformers' f16 rows, fed as the reference was (a prefix per row for "prefix")."""
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float16).eval()
    tokens = reference["tokens"]
    with torch.no_grad():
        if reference.get("reference_mode") == "prefix":
            return [model(torch.tensor([tokens[: p + 1]])).logits[0, -1].float().tolist()
                    for p in range(len(tokens))]
        return model(torch.tensor([tokens])).logits[0].float().tolist()


def tandem_f16(binary, backend, directory, tokens):
    out = subprocess.run(
        [binary, "logits", "--backend", backend, "--model", str(directory), "--f16",
         "--all-positions", "--tokens", ",".join(map(str, tokens))],
        check=True, capture_output=True, text=True).stdout
    return [p["logits"] for p in json.loads(out)["positions"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tandem", help="a tandem binary: also measure its --f16 logits")
    parser.add_argument("--backend", default="flex")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for directory in sorted(d for d in FIXTURES.iterdir() if (d / "reference.json").is_file()):
        reference = json.loads((directory / "reference.json").read_text())
        row = {
            "fixture": directory.name,
            "scale": max(abs(v) for r in reference["logits"] for v in r),
            "transformers_f16": max_diff(transformers_f16(directory, reference), reference["logits"]),
        }
        if args.tandem:
            ours = tandem_f16(args.tandem, args.backend, directory, reference["tokens"])
            row["tandem_f16"] = max_diff(ours, reference["logits"])
        rows.append(row)
    if args.json:
        json.dump({"torch": torch.__version__, "fixtures": rows}, sys.stdout, indent=1)
        return
    print(f"max |f16 logit − f32 reference| (torch {torch.__version__})")
    print(f"{'fixture':16} {'scale':>6} {'transformers':>12} {'tandem':>8}")
    for r in rows:
        tandem = f"{r['tandem_f16']:.4f}" if "tandem_f16" in r else "—"
        print(f"{r['fixture']:16} {r['scale']:6.2f} {r['transformers_f16']:12.4f} {tandem:>8}")


if __name__ == "__main__":
    main()
