#!/usr/bin/env python3
"""Exports the datasets shipped in data/ (run once; the outputs are committed).

- data/digits.safetensors: scikit-learn's 8x8 handwritten digits (1797 samples), tensors
  `images` (1797, 64) uint8 in 0..16 and `labels` (1797,) uint8.
  Needs: pip install scikit-learn safetensors numpy
- data/kjv.txt: the opening books of the King James Bible, plain text, verse references
  removed, cut at a line boundary below 1 MB; data/kjv-full.txt: all of it.
  Needs: apt-get install bible-kjv (for the `bible` program and its text).
- data/web-nt.txt: the World English Bible's New Testament, one verse per line, in ASCII.
  Needs: apt-get install sword-text-web diatheke.

See data/ATTRIBUTION.md for sources and licences.
"""
import re
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

# The World English Bible's New Testament (public domain, modern English), for the fine-tune
# of the KJV GPT-2: one verse per line, as the KJV, footnotes removed, quotes and dashes in
# ASCII (the KJV tokenizer learned ASCII; curly quotes would cost it three byte-ids each).
web = subprocess.run(
    ["diatheke", "-b", "engWEB2015eb", "-f", "plain", "-o", "f",
     "-k", "Matthew 1:1-Revelation of John 22:21"],
    check=True, capture_output=True, text=True,
).stdout
reference = re.compile(r"^(?:[1-3] )?[A-Z][A-Za-z ]+? \d+:\d+: ")
ascii_of = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'",
                          "\u2014": "--", "\u2013": "-", "\u00a0": " "})
verses = []
for line in web.splitlines():
    if line.startswith("(engWEB") or line.lstrip().startswith("The following words"):
        continue
    if reference.match(line):
        verses.append(reference.sub("", line))
    elif line.strip() and verses:
        # A verse set as poetry continues on the following lines.
        verses[-1] += " " + line
clean = []
for v in verses:
    v = re.sub(r"\s*\[[^\]]*\]", "", v).translate(ascii_of)
    v = re.sub(r"\s+", " ", v).strip()
    if v:
        clean.append(v)
(out / "web-nt.txt").write_text("\n".join(clean) + "\n", encoding="ascii")
print("wrote", out / "web-nt.txt", len(clean), "verses", file=sys.stdout)

# Generated images in CIFAR-10's binary format, for the shipped ResNet job: 1,000 records of a
# label byte and 3x32x32 pixel bytes (red plane, green, blue). Ten classes of shapes drawn at a
# random place and size in a random bright colour on a random dark background, with noise: a filled disc, a ring, a
# filled square, a square outline, a horizontal bar, a vertical bar, a triangle pointing up,
# one pointing down, a plus and an X (all unchanged by a horizontal flip, which the job's
# augmentation uses). Seeded: the same file every run.
rng = np.random.default_rng(2026)
yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)


def shape_mask(kind, cy, cx, r):
    dy, dx = yy - cy, xx - cx
    d = np.sqrt(dy * dy + dx * dx)
    t = max(1.5, r / 4)
    if kind == 0:
        return d <= r
    if kind == 1:
        return (d <= r) & (d >= r - t)
    if kind == 2:
        return (np.abs(dy) <= r) & (np.abs(dx) <= r)
    if kind == 3:
        box = (np.abs(dy) <= r) & (np.abs(dx) <= r)
        return box & ~((np.abs(dy) <= r - t) & (np.abs(dx) <= r - t))
    if kind == 4:
        return (np.abs(dy) <= t) & (np.abs(dx) <= r)
    if kind == 5:
        return (np.abs(dx) <= t) & (np.abs(dy) <= r)
    if kind == 6:
        return (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) / 2)
    if kind == 7:
        return (dy <= r) & (dy >= -r) & (np.abs(dx) <= (r - dy) / 2)
    if kind == 8:
        return ((np.abs(dy) <= t) & (np.abs(dx) <= r)) | ((np.abs(dx) <= t) & (np.abs(dy) <= r))
    return ((np.abs(dy - dx) <= t) | (np.abs(dy + dx) <= t)) & (np.abs(dy) <= r) & (np.abs(dx) <= r)


records = bytearray()
for i in range(1000):
    label = i % 10
    r = rng.uniform(6, 11)
    cy, cx = rng.uniform(r + 1, 31 - r, size=2)
    fg = rng.integers(150, 256, size=3)
    bg = rng.integers(0, 90, size=3)
    mask = shape_mask(label, cy, cx, r)
    img = np.where(mask[None], fg[:, None, None], bg[:, None, None]).astype(np.float32)
    img += rng.normal(0, 12, size=img.shape)
    records.append(label)
    records += np.clip(img, 0, 255).astype(np.uint8).tobytes()
(out / "shapes-cifar.bin").write_bytes(bytes(records))
print("wrote", out / "shapes-cifar.bin", len(records), "bytes", file=sys.stdout)
