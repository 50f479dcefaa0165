#!/usr/bin/env python3
"""Writes GPT-2 small's bench spec and its data into DIR: 12 layers of 768, 12 heads, 50,257
ids, tied head, trained on 200,000 random token ids (`tokens.bin`, u16) — `gpt2-small.json`.
Used by scripts/bench-gpt2-small.sh and scripts/gpu-check.sh.

    python scripts/gpt2_small_spec.py DIR [--context N] [--batch N] [--tiny]

--tiny: 2 layers of 64 (a dry run's model, timed in seconds on a CPU).
"""
import argparse
import hashlib
import json

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--context", type=int, default=256)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--tiny", action="store_true")
a = ap.parse_args()
ids = np.random.default_rng(0).integers(0, 50257, size=200_000).astype("<u2").tobytes()
open(f"{a.dir}/tokens.bin", "wb").write(ids)
model = {"kind": "gpt2", "layers": 12, "d_model": 768, "heads": 12, "context": a.context}
if a.tiny:
    model.update(layers=2, d_model=64, heads=2, context=min(a.context, 64))
spec = {"version": 1,
        "dataset": {"uri": "file:tokens.bin", "sha256": hashlib.sha256(ids).hexdigest(),
                    "format": {"kind": "tokens", "dtype": "u16", "vocab_size": 50257}, "eval_fraction": 0.05},
        "model": model,
        "training": {"steps": 100, "batch_size": a.batch, "optimizer": {"kind": "adamw", "lr": 0.0006}, "seed": 1},
        "evaluation": {"metric": "perplexity", "threshold": 1e9},
        "limits": {"max_dataset_bytes": 1000000, "max_wall_time_s": 3600}}
open(f"{a.dir}/gpt2-small.json", "w").write(json.dumps(spec, indent=2))
