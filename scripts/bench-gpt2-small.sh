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
"$python" "$root/scripts/gpt2_small_spec.py" "$dir"
cd "$root"
cargo build -q -p tensorgrid-cli >&2
/usr/bin/time -f "candle peak RSS %M KiB" ./target/debug/tensorgrid bench --threads "$threads" --device cpu \
  --specs "$dir/gpt2-small.json" --rounds 3 --round-secs 1 2>&1 | grep -v '^{"device"'
/usr/bin/time -f "PyTorch peak RSS %M KiB" "$python" scripts/bench_torch.py --threads "$threads" \
  --gpt2-spec "$dir/gpt2-small.json" --rounds 3 --round-secs 1 2>&1 | grep -v Warning
