#!/usr/bin/env bash
# Training throughput, candle (tensorgrid) vs PyTorch, side by side, same thread count.
#
#   scripts/bench-training.sh [--threads N] [--device cpu|cuda] [--precision f32|bf16|f16]
#                             [--repeats N] [--binary PATH] [--python PATH] [--raw FILE]
#                             [--errors FILE] [--write]
#
# Builds `tensorgrid` in release (with `--features cuda` for --device cuda; --binary names a
# build to use instead), finds a Python with PyTorch (--python; else `python3` if it has torch,
# safetensors and numpy; else ~/.cache/tensorgrid/torch-venv, installed on first use: pip's
# default torch wheel, several GB), runs `tensorgrid bench` and scripts/bench_torch.py
# alternately --repeats times (default 2; each reports its median timing round, and the best
# repeat per side is kept, so load from elsewhere on a shared machine hurts neither side
# more), and prints a Markdown table (ratios, and each run as a share of the machine's matmul
# GFLOP/s: f32's, or under --precision bf16/f16 on a GPU the bf16 one). --raw appends every
# JSON line of both sides to FILE (tagged "side": "candle" | "torch"); --errors appends both
# sides' stderr to FILE (a side that fails leaves its rows out); --write replaces the table
# in BENCHMARKS.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
threads=1 device=cpu write=0 repeats=2 features=() precision=f32 binary="" python="" raw="" errors=/dev/null
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --raw) raw="$2"; shift 2 ;;
    --errors) errors="$2"; shift 2 ;;
    --write) write=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$device" = cuda ] && features=(--features cuda)
if [ -z "$python" ]; then
  venv="${TENSORGRID_CACHE:-$HOME/.cache/tensorgrid}/torch-venv"
  if python3 -c "import torch, safetensors, numpy" 2>/dev/null; then
    python=python3
  else
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, safetensors, numpy" 2>/dev/null; then
      echo "[bench] installing PyTorch into $venv" >&2
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q torch numpy safetensors >&2
    fi
    python="$venv/bin/python"
  fi
fi
if [ -z "$binary" ]; then
  cargo build --release -q -p tensorgrid-cli "${features[@]}" >&2
  binary=./target/release/tensorgrid
fi
ours="" theirs=""
for _ in $(seq "$repeats"); do
  # A side that fails keeps what it printed; its errors go to --errors (default: nowhere).
  ours+="$("$binary" bench --threads "$threads" --device "$device" --precision "$precision" 2>>"$errors" || true)"$'\n'
  theirs+="$("$python" scripts/bench_torch.py --threads "$threads" --device "$device" --precision "$precision" 2>>"$errors" || true)"$'\n'
done
if [ -n "$raw" ]; then
  OURS="$ours" THEIRS="$theirs" python3 -c '
import json, os
for side, env in (("candle", "OURS"), ("torch", "THEIRS")):
    for l in os.environ[env].splitlines():
        if l.strip():
            r = json.loads(l); r["side"] = side; print(json.dumps(r))' >>"$raw"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
torch_version="$("$python" -c 'import torch; print(torch.__version__)')"
OURS="$ours" THEIRS="$theirs" CPU="$cpu" PRECISION="$precision" TORCH="$torch_version" THREADS="$threads" DEVICE="$device" WRITE="$write" \
python3 - <<'PY'
import json, os, re
def best(lines):
    # Per model, the repeat with the highest throughput.
    rows = {}
    for r in (json.loads(l) for l in lines.splitlines() if l.strip()):
        if "model" in r and ("throughput" not in rows.get(r["model"], {}) or r["throughput"] > rows[r["model"]]["throughput"]):
            rows[r["model"]] = r
    return rows

ours_raw = [json.loads(l) for l in os.environ["OURS"].splitlines() if l.strip()]
half = os.environ["PRECISION"] != "f32" and any("matmul_4096_bf16_gflops" in r for r in ours_raw)
gpu_f32 = any("matmul_4096_f32_gflops" in r for r in ours_raw)
ceiling = "matmul_4096_bf16_gflops" if half else "matmul_4096_f32_gflops" if gpu_f32 else "matmul_1024_gflops"
peak = max((r[ceiling] for r in ours_raw if ceiling in r), default=float("nan"))
accel = next((r["accelerator"] for r in ours_raw if "accelerator" in r), None)
ours = [None] + list(best(os.environ["OURS"]).values())
theirs = best(os.environ["THEIRS"])
lines = [
    f"Device: {os.environ['DEVICE']} ({accel or os.environ['CPU']}), {os.environ['THREADS']} thread(s); "
    f"precision {os.environ['PRECISION'] if accel else 'f32'}; PyTorch {os.environ['TORCH']}; "
    f"matmul {'4096³ bf16' if half else '4096³ f32' if gpu_f32 else '1024³ f32'}: **{peak:.0f} GFLOP/s** (the ceiling below).",
    "",
    "| model | candle | PyTorch | candle / PyTorch | candle GFLOP/s (% of matmul) | PyTorch GFLOP/s (% of matmul) |",
    "|---|---:|---:|---:|---:|---:|",
]
for r in ours[1:]:
    t = theirs.get(r["model"])
    if t is None:
        lines.append(f"| {r['model']} | {r['throughput']:,.0f} {r['unit']} | failed | — | "
                     f"{r['gflops']:.1f} ({100 * r['gflops'] / peak:.0f} %) | — |")
        continue
    tg = t["throughput"] * r["flops_per_item"] / 1e9
    lines.append(
        f"| {r['model']} (batch {r['batch']} {r['unit'].split('/')[0]}) | {r['throughput']:,.0f} {r['unit']} | "
        f"{t['throughput']:,.0f} {t['unit']} | **{r['throughput'] / t['throughput']:.2f}×** | "
        f"{r['gflops']:.1f} ({100 * r['gflops'] / peak:.0f} %) | {tg:.1f} ({100 * tg / peak:.0f} %) |"
    )
table = "\n".join(lines) + "\n"
print(table)
if os.environ["WRITE"] == "1":
    path = "BENCHMARKS.md"
    text = open(path).read()
    begin, end = "<!-- training-bench:begin -->", "<!-- training-bench:end -->"
    block = f"{begin}\n{table}{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text += f"\n## Training throughput (`scripts/bench-training.sh`)\n\n{block}\n"
    open(path, "w").write(text)
PY
