#!/usr/bin/env bash
# GPT-2 small (12 layers of 768, 12 heads, 50,257 ids, tied head; context 256, batch 4: 1,024
# tokens a step) trained on random token ids, candle (tensorgrid) against PyTorch, same thread
# count: tokens/s from each side's median timing round, peak RSS from /usr/bin/time.
#
#   scripts/bench-gpt2-small.sh [--threads N] [--python PATH]
#
# Uses the dev build (`cargo build -p tensorgrid-cli`) and a Python with torch, numpy and
# safetensors (default: the venv scripts/bench-training.sh makes).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
threads=1 python="${TENSORGRID_CACHE:-$HOME/.cache/tensorgrid}/torch-venv/bin/python"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$python" - "$dir" <<'PY'
import hashlib, json, sys
import numpy as np
d = sys.argv[1]
ids = np.random.default_rng(0).integers(0, 50257, size=200_000).astype("<u2").tobytes()
open(f"{d}/tokens.bin", "wb").write(ids)
spec = {"version": 1,
        "dataset": {"uri": "file:tokens.bin", "sha256": hashlib.sha256(ids).hexdigest(),
                    "format": {"kind": "tokens", "dtype": "u16", "vocab_size": 50257}, "eval_fraction": 0.05},
        "model": {"kind": "gpt2", "layers": 12, "d_model": 768, "heads": 12, "context": 256},
        "training": {"steps": 100, "batch_size": 4, "optimizer": {"kind": "adamw", "lr": 0.0006}, "seed": 1},
        "evaluation": {"metric": "perplexity", "threshold": 1e9},
        "limits": {"max_dataset_bytes": 1000000, "max_wall_time_s": 3600}}
open(f"{d}/gpt2-small.json", "w").write(json.dumps(spec, indent=2))
PY
cd "$root"
cargo build -q -p tensorgrid-cli >&2
/usr/bin/time -f "candle peak RSS %M KiB" ./target/debug/tensorgrid bench --threads "$threads" --device cpu \
  --specs "$dir/gpt2-small.json" --rounds 3 --round-secs 1 2>&1 | grep -v '^{"device"'
/usr/bin/time -f "PyTorch peak RSS %M KiB" "$python" scripts/bench_torch.py --threads "$threads" \
  --gpt2-spec "$dir/gpt2-small.json" --rounds 3 --round-secs 1 2>&1 | grep -v Warning
