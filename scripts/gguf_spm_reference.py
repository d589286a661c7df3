#!/usr/bin/env python3
"""A tiny SentencePiece-vocabulary GGUF (tokenizer.ggml.model = llama, as Llama 2 and
Mistral files have) and the tokenizer transformers builds from it, for Tandem's GGUF
tokenizer tests.

Writes tests/fixtures/gguf/spm-tokenizer.gguf (the vocabulary: control tokens, the 256
byte tokens, pieces with scores; no tensors) and spm-reference.json (texts and the ids
transformers' tokenizer gives them, decoded text included).

Usage: ~/.cache/tandem-test-models/.venv/bin/python scripts/gguf_spm_reference.py
(needs gguf, numpy, transformers, tokenizers: fetch.sh's venv has them).
"""
import json
import os

import gguf
import numpy as np
from gguf.constants import GGUFValueType
from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "gguf")

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world",
         "def", "return", "print", "caf", "é", "naïve", "日本", "語", "token", "izer"]


def vocabulary():
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>"); scores.append(0.0); types.append(6)
    pieces = {}
    def add(piece, score):
        if piece not in pieces:
            pieces[piece] = score
    # Single characters, then growing prefixes of words with and without "▁", scored so
    # that longer pieces merge later (as SentencePiece BPE scores do).
    chars = sorted({c for w in WORDS for c in w} | set("abcdefghijklmnopqrstuvwxyz") | {"\u2581"})
    for i, c in enumerate(chars):
        add(c, -1000.0 - i)
    rank = 0
    for w in WORDS:
        for start in ("\u2581", ""):
            s = start + w
            for end in range(2, len(s) + 1):
                rank += 1
                add(s[:end], -float(end) * 10 - rank * 0.01)
    for piece, score in pieces.items():
        tokens.append(piece); scores.append(score); types.append(1)
    return tokens, scores, types


def field_value(f):
    if f.types[0] == GGUFValueType.ARRAY:
        if f.types[1] == GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    if f.types[0] == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode()
    return f.parts[f.data[0]].tolist()[0]


def tokenizer_dict(path):
    """The file's tokenizer.* keys under the names transformers' builders take (the
    torch-free part of transformers' own GGUF loading)."""
    fields = {k: field_value(f) for k, f in gguf.GGUFReader(path).fields.items() if k.startswith("tokenizer.")}
    names = GGUF_TOKENIZER_MAPPING["tokenizer"]
    return {name: fields[f"tokenizer.{key}"] for key, name in names.items() if f"tokenizer.{key}" in fields}


def main():
    os.makedirs(OUT, exist_ok=True)
    tokens, scores, types = vocabulary()
    path = os.path.join(OUT, "spm-tokenizer.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

    backend, _ = convert_gguf_tokenizer("llama", tokenizer_dict(path))
    texts = ["the quick brown fox", "  hello   world", "naïve café 日本語", "def tokenizer(): return 42",
             "<s>hello</s> world", "\tTabs\nand newlines\n", "xyzzy ¿?"]
    cases = []
    for t in texts:
        enc = backend.encode(t)
        cases.append({"text": t, "ids": enc.ids, "decoded": backend.decode(enc.ids, skip_special_tokens=False)})
    with open(os.path.join(OUT, "spm-reference.json"), "w") as f:
        json.dump({"transformers_tokenizer": json.loads(backend.to_str()), "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.normpath(path), "and spm-reference.json")


if __name__ == "__main__":
    main()
