#!/usr/bin/env python3
"""Runs `tandem logits --all-positions` on every transformers fixture, in both config
layouts (config.json and, where present, config.legacy.json), on both backends, and
prints the max |logit difference| from the fixture's reference.json.

Usage: python3 scripts/check-fixture-logits.py [path/to/tandem]   (no third-party modules)
"""
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TOLERANCE = 1e-4


def logits(tandem: str, model: Path, tokens: list[int], backend: str) -> list[list[float]]:
    out = subprocess.run(
        [tandem, "logits", "--model", str(model), "--tokens", ",".join(map(str, tokens)),
         "--all-positions", "--backend", backend],
        check=True, capture_output=True, text=True,
    ).stdout
    return [p["logits"] for p in json.loads(out)["positions"]]


def main() -> int:
    tandem = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "tandem")
    worst = 0.0
    for folder in sorted(p for p in FIXTURES.iterdir() if (p / "reference.json").exists()):
        ref = json.loads((folder / "reference.json").read_text())
        layouts = [("config.json", folder)]
        tmp = None
        if (folder / "config.legacy.json").exists():
            tmp = Path(tempfile.mkdtemp(prefix=f"tandem-{folder.name}-"))
            for f in folder.iterdir():
                if f.is_file() and f.name not in ("config.json", "config.legacy.json"):
                    shutil.copy(f, tmp / f.name)
            shutil.copy(folder / "config.legacy.json", tmp / "config.json")
            layouts.append(("config.legacy.json", tmp))
        for layout, model in layouts:
            for backend in ("cpu", "flex"):
                ours = logits(tandem, model, ref["tokens"], backend)
                diff = max(abs(a - b) for ra, rb in zip(ours, ref["logits"]) for a, b in zip(ra, rb))
                worst = max(worst, diff)
                flag = "ok" if diff <= TOLERANCE else "FAIL"
                print(f"{folder.name:16} {layout:19} {backend:5} max |logit difference| {diff:.2e} {flag}")
        if tmp:
            shutil.rmtree(tmp)
    print(f"worst: {worst:.2e} (tolerance {TOLERANCE:g})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
