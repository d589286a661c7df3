#!/usr/bin/env python3
"""Reference dequantizations for Tandem's GGUF reader, from llama.cpp's own Python package.

For each tensor type Tandem reads, random blocks (seeded; the f16 scale fields set to
sane magnitudes so no block is inf/NaN) and what `gguf.quants.dequantize` makes of them.
Writes tests/fixtures/gguf/dequantize.json; the Rust test dequantizes the same bytes and
must give the same floats.

Usage (any Python with `pip install gguf numpy`; fetch.sh's venv has both):
    ~/.cache/tandem-test-models/.venv/bin/python scripts/gguf_quant_reference.py
"""
import base64
import json
import os

import numpy as np
import gguf
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf.quants import dequantize

# Byte offsets of the f16 scale fields inside one block of each type.
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCKS = 4


def blocks_for(qtype, rng):
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    if qtype == T.F16:
        return rng.standard_normal(BLOCKS * 16).astype(np.float16).tobytes(), BLOCKS * 16
    if qtype == T.BF16:
        f = rng.standard_normal(BLOCKS * 16).astype(np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16).tobytes(), BLOCKS * 16
    raw = bytearray(rng.integers(0, 256, BLOCKS * block_bytes, dtype=np.uint8).tobytes())
    for b in range(BLOCKS):
        for off in SCALE_FIELDS[qtype]:
            sign = -1.0 if rng.random() < 0.3 else 1.0
            scale = np.float16(sign * rng.uniform(1e-3, 5e-2))
            raw[b * block_bytes + off: b * block_bytes + off + 2] = scale.tobytes()
    return bytes(raw), BLOCKS * block_elems


def main():
    rng = np.random.default_rng(20261203)
    out = {"gguf_version": gguf.__version__ if hasattr(gguf, "__version__") else "unknown", "types": {}}
    for qtype in [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]:
        data, n = blocks_for(qtype, rng)
        values = dequantize(np.frombuffer(data, dtype=np.uint8), qtype).astype(np.float32).reshape(-1)
        assert values.size == n and np.isfinite(values).all(), qtype.name
        out["types"][qtype.name] = {
            "id": int(qtype),
            "elements": n,
            "bytes_base64": base64.b64encode(data).decode(),
            # f32 bit patterns: exact, whatever JSON does to floats.
            "f32_bits": values.view(np.uint32).tolist(),
        }
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "tests", "fixtures", "gguf", "dequantize.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
