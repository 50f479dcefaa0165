#!/usr/bin/env python3
"""Exports the datasets shipped in data/ (run once; the outputs are committed).

- data/digits.safetensors: scikit-learn's 8x8 handwritten digits (1797 samples), tensors
  `images` (1797, 64) uint8 in 0..16 and `labels` (1797,) uint8.
  Needs: pip install scikit-learn safetensors numpy
- data/kjv.txt: the opening books of the King James Bible, plain text, verse references
  removed, cut at a line boundary below 1 MB; data/kjv-full.txt: all of it.
  Needs: apt-get install bible-kjv (for the `bible` program and its text).

See data/ATTRIBUTION.md for sources and licences.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from sklearn.datasets import load_digits

out = Path(__file__).resolve().parent.parent / "data"
out.mkdir(exist_ok=True)

digits = load_digits()
save_file(
    {"images": digits.data.astype(np.uint8), "labels": digits.target.astype(np.uint8)},
    str(out / "digits.safetensors"),
)
print("wrote", out / "digits.safetensors", digits.data.shape)

LIMIT = 1_000_000
text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
lines, size = [], 0
for line in text.splitlines():
    # "Gen1:1 In the beginning..." -> "In the beginning..."
    parts = line.split(" ", 1)
    verse = parts[1] if len(parts) == 2 and ":" in parts[0] else line
    verse = verse.strip()
    if not verse:
        continue
    if size + len(verse) + 1 > LIMIT:
        break
    lines.append(verse)
    size += len(verse) + 1
(out / "kjv.txt").write_text("\n".join(lines) + "\n", encoding="ascii")
print("wrote", out / "kjv.txt", size, "bytes", file=sys.stdout)

# The whole Bible, the same way (the BPE GPT-2 job trains on it).
verses = []
for line in text.splitlines():
    parts = line.split(" ", 1)
    verse = (parts[1] if len(parts) == 2 and ":" in parts[0] else line).strip()
    if verse:
        verses.append(verse)
(out / "kjv-full.txt").write_text("\n".join(verses) + "\n", encoding="ascii")
print("wrote", out / "kjv-full.txt", len(verses), "verses", file=sys.stdout)
