#!/usr/bin/env bash
# The GPU check, in one run on a machine with an NVIDIA GPU (about 5 minutes on an H200 once
# built; the build itself takes longer cold):
#   1. the `--features cuda` build of the CLI, for the card's compute capability (or a build
#      made elsewhere: --binary, for a machine without Rust or crates.io);
#   2. every shipped job (jobs/*.json) and the GPT-2 job under bf16 mixed precision, each
#      trained twice on CUDA: the result hashes must be equal (bits are reproducible within a
#      device class: README, "Determinism");
#   3. training throughput against PyTorch on CUDA (scripts/bench-training.sh), in f32 and in
#      bf16 mixed precision, and GPT-2 small (124M parameters) on both sides with its peak
#      memory;
#   4. one Markdown table: card, driver, CUDA version, each job's hashes equal or not, each
#      model's throughput vs PyTorch CUDA and its share of the card's matmul ceiling; written
#      to OUT_DIR/gpu-check.md with every raw line beside it.
# Exits non-zero when a job fails or its two hashes differ.
#
#   scripts/gpu-check.sh [--binary PATH] [--python PATH] [--out OUT_DIR] [--repeats N]
#   scripts/gpu-check.sh --build-only [--compute-cap 90]
#
# Dry run without a GPU (the script's own test): GPU_CHECK_DEVICE=cpu runs every step on the
# CPU with the card's details faked, GPU_CHECK_JOBS="digits-mlp kjv-gpt2" limits the jobs.
#
# --build-only builds here (nvcc on the PATH; no GPU needed) for --compute-cap (default 90:
# H100/H200) and leaves a stripped binary in .gpu/tensorgrid, for machines that cannot build:
# carry .gpu and run `scripts/gpu-check.sh --binary .gpu/tensorgrid` there. OUT_DIR defaults
# to $OUT when set, else target/gpu-check.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
binary="" python="" out="${OUT:-$root/target/gpu-check}" build_only=0 cap="${CUDA_COMPUTE_CAP:-}"
repeats=1 device="${GPU_CHECK_DEVICE:-cuda}" only_jobs="${GPU_CHECK_JOBS:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --compute-cap) cap="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
log() { echo "[gpu-check $(($(date +%s) - start))s] $*" >&2; }

# 1. The build.
if [ -z "$binary" ]; then
  if [ -z "$cap" ]; then
    if [ "$build_only" = 1 ]; then
      cap=90
    else
      cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')"
    fi
  fi
  log "building the CLI with --features cuda for sm_$cap"
  CUDA_COMPUTE_CAP="$cap" cargo build --release -q -p tensorgrid-cli --features cuda
  binary="$root/target/release/tensorgrid"
fi
if [ "$build_only" = 1 ]; then
  mkdir -p .gpu
  cp "$binary" .gpu/tensorgrid
  strip .gpu/tensorgrid 2>/dev/null || true
  log "built .gpu/tensorgrid ($(du -h .gpu/tensorgrid | cut -f1)); carry .gpu and run scripts/gpu-check.sh --binary .gpu/tensorgrid"
  exit 0
fi
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

# The card.
mkdir -p "$out"
if [ "$device" = cuda ]; then
  command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: this check needs an NVIDIA GPU" >&2; exit 1; }
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader | head -1 >"$out/card.csv"
  nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1 >"$out/cuda-version.txt"
else
  echo "no GPU (dry run on the $device)" >"$out/card.csv"
  echo "none" >"$out/cuda-version.txt"
fi
log "card: $(cat "$out/card.csv"), CUDA $(cat "$out/cuda-version.txt")"

# candle (cudarc) opens libcuda, cuBLAS, cuBLASLt, cuRAND and NVRTC at run time, by the
# unversioned name or one of the versions it knows (up to 12). Where the system's loader has
# none of them (CUDA that came with PyTorch's wheels, say libcublas.so.13), each is linked
# under its unversioned name in a folder put on the loader's path.
shim="$(mktemp -d)"
for lib in cublas cublasLt curand nvrtc; do
  ldconfig -p 2>/dev/null | grep -q "lib$lib\.so " && continue
  found="$(python3 - "$lib" <<'PY' 2>/dev/null || true
import glob, os, site, sys
for base in site.getsitepackages() + [site.getusersitepackages()]:
    hits = sorted(glob.glob(os.path.join(base, "nvidia", "**", f"lib{sys.argv[1]}.so*"), recursive=True))
    if hits:
        print(hits[-1])
        break
PY
)"
  [ -n "$found" ] && ln -sf "$found" "$shim/lib$lib.so" && log "lib$lib.so -> $found"
done
export LD_LIBRARY_PATH="$shim${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# 2. Every shipped job twice, and GPT-2 in bf16: hashes compared.
work="$(mktemp -d)"
trap 'rm -rf "$work" "$shim"' EXIT
mkdir -p "$work/jobs"
ln -s "$root/data" "$work/data"
cp jobs/*.json "$work/jobs/"
python3 - "$work/jobs" <<'PY'
import json, sys
d = sys.argv[1]
s = json.load(open(f"{d}/kjv-gpt2.json"))
s["training"]["mixed_precision"] = "bf16"
json.dump(s, open(f"{d}/kjv-gpt2-bf16.json", "w"), indent=2)
PY
: >"$out/jobs.jsonl"
for spec in "$work"/jobs/*.json; do
  name="$(basename "$spec" .json)"
  if [ -n "$only_jobs" ] && [[ " $only_jobs " != *" $name "* ]]; then continue; fi
  for run in 1 2; do
    log "training $name ($run of 2)"
    if line="$(timeout 300 "$binary" train --spec "$spec" --out "$work/out-$name-$run" --device "$device" --fresh 2>"$work/err" | tail -1)"; then
      echo "{\"job\": \"$name\", \"run\": $run, \"ok\": true, \"train\": $line}" >>"$out/jobs.jsonl"
    else
      tail -3 "$work/err" >&2
      reason="$(tail -1 "$work/err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')"
      echo "{\"job\": \"$name\", \"run\": $run, \"ok\": false, \"error\": $reason}" >>"$out/jobs.jsonl"
    fi
  done
done

# 3. Throughput against PyTorch: the shipped models in f32 and in bf16, then GPT-2 small.
py_args=()
[ -n "$python" ] && py_args=(--python "$python")
torch_py="${python:-python3}"
: >"$out/bench.jsonl"
for precision in f32 bf16; do
  log "bench-training.sh --device $device --precision $precision"
  scripts/bench-training.sh --device "$device" --precision "$precision" --repeats "$repeats" \
    --binary "$binary" "${py_args[@]}" --raw "$work/raw-$precision.jsonl" >"$out/bench-$precision.md" \
    || log "bench-training.sh failed ($precision)"
  [ -f "$work/raw-$precision.jsonl" ] && python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l); r.setdefault("precision", sys.argv[2]); r["asked"] = sys.argv[2]; print(json.dumps(r))' \
    "$work/raw-$precision.jsonl" "$precision" >>"$out/bench.jsonl"
done
"$torch_py" - "$work/gpt2-small.json" "$device" <<'PY'
import hashlib, json, sys
import numpy as np
ids = np.random.default_rng(0).integers(0, 50257, size=200_000).astype("<u2").tobytes()
path = sys.argv[1]
open(path.replace("gpt2-small.json", "tokens.bin"), "wb").write(ids)
spec = {"version": 1,
        "dataset": {"uri": "file:tokens.bin", "sha256": hashlib.sha256(ids).hexdigest(),
                    "format": {"kind": "tokens", "dtype": "u16", "vocab_size": 50257}, "eval_fraction": 0.05},
        "model": {"kind": "gpt2", "layers": 12, "d_model": 768, "heads": 12, "context": 1024},
        "training": {"steps": 100, "batch_size": 8, "optimizer": {"kind": "adamw", "lr": 0.0006}, "seed": 1},
        "evaluation": {"metric": "perplexity", "threshold": 1e9},
        "limits": {"max_dataset_bytes": 1000000, "max_wall_time_s": 3600}}
if sys.argv[2] != "cuda":
    # A dry run on the CPU: the same steps on a model small enough to time in seconds.
    spec["model"].update(layers=2, d_model=64, heads=2, context=64)
json.dump(spec, open(path, "w"), indent=2)
PY
for precision in f32 bf16; do
  log "GPT-2 small, $precision"
  # The GPU's memory in use, sampled while the bench runs: candle has no allocator statistics.
  (while [ "$device" = cuda ]; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; sleep 0.2; done) >"$work/mem-$precision" &
  sampler=$!
  "$binary" bench --device "$device" --precision "$precision" --specs "$work/gpt2-small.json" --rounds 5 --round-secs 1 2>/dev/null \
    | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if "model" in r: r["side"] = "candle"; r["asked"] = sys.argv[1]; print(json.dumps(r))' "$precision" >>"$out/bench.jsonl" \
    || log "candle GPT-2 small failed ($precision)"
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  sort -n "$work/mem-$precision" | tail -1 | python3 -c '
import json, sys
v = sys.stdin.read().strip()
if v: print(json.dumps({"model": "gpt2-small", "side": "candle", "asked": sys.argv[1], "gpu_used_mib": float(v)}))' "$precision" >>"$out/bench.jsonl"
  "$torch_py" scripts/bench_torch.py --device "$device" --precision "$precision" --gpt2-spec "$work/gpt2-small.json" --rounds 5 --round-secs 1 \
    | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l); r["side"] = "torch"; r["asked"] = sys.argv[1]; print(json.dumps(r))' "$precision" >>"$out/bench.jsonl" \
    || log "PyTorch GPT-2 small failed ($precision)"
done
"$binary" bench --device "$device" --specs jobs/digits-mlp.json --rounds 1 --round-secs 0.1 2>/dev/null | head -1 >"$out/ceiling.json" || true

# 4. The table.
python3 - "$out" "$(($(date +%s) - start))" <<'PY'
import json, sys
from collections import defaultdict
out, secs = sys.argv[1], int(sys.argv[2])
card = open(f"{out}/card.csv").read().strip()
cuda = open(f"{out}/cuda-version.txt").read().strip()
try:
    ceiling = json.loads(open(f"{out}/ceiling.json").read())
except Exception:
    ceiling = {}
lines = [f"# GPU check ({secs} s)", "",
         f"Card: {card} (name, driver, memory, compute capability); CUDA {cuda}; "
         f"class `{ceiling.get('accelerator', '?')}`; matmul ceilings measured here: "
         f"f32 1024³ {ceiling.get('matmul_1024_gflops', 0):,.0f} GFLOP/s, "
         f"bf16 4096³ {ceiling.get('matmul_4096_bf16_gflops', 0):,.0f} GFLOP/s.", "",
         "| job | run 1 | run 2 | hashes | result hash | metric | wall time (s) |",
         "|---|---|---|---|---|---:|---:|"]
runs = defaultdict(dict)
for l in open(f"{out}/jobs.jsonl"):
    r = json.loads(l)
    runs[r["job"]][r["run"]] = r
failed = False
for job, rs in sorted(runs.items()):
    a, b = rs.get(1, {}), rs.get(2, {})
    ok = a.get("ok") and b.get("ok")
    ha = a.get("train", {}).get("result_hash", "")
    hb = b.get("train", {}).get("result_hash", "")
    same = ok and ha == hb
    failed |= not same
    t = a.get("train", {})
    state = lambda r: "ok" if r.get("ok") else "FAILED: " + str(r.get("error", "?"))[:80]
    lines.append(f"| {job} | {state(a)} | {state(b)} | {'**equal**' if same else '**DIFFER**'} | "
                 f"`{ha[:16]}…` | {t.get('value', float('nan')):.4g} | "
                 f"{t.get('wall_time_s', float('nan')):.1f} / {b.get('train', {}).get('wall_time_s', float('nan')):.1f} |")
lines += ["", "| model | precision | candle | PyTorch | candle / PyTorch | candle % of matmul ceiling | memory (candle: GPU in use; PyTorch: peak allocated) |",
          "|---|---|---:|---:|---:|---:|---|"]
best = {}
mem = {}
for l in open(f"{out}/bench.jsonl"):
    r = json.loads(l)
    if "gpu_used_mib" in r:
        mem[(r["model"], r["asked"], "candle")] = r["gpu_used_mib"]
        continue
    if "model" not in r or "throughput" not in r:
        continue
    key = (r["model"], r["asked"], r["side"])
    if key not in best or r["throughput"] > best[key]["throughput"]:
        best[key] = r
    if "peak_mib" in r:
        mem[key] = r["peak_mib"]
for (model, asked, side), r in sorted(best.items()):
    if side != "candle":
        continue
    t = best.get((model, asked, "torch"))
    peak = ceiling.get("matmul_4096_bf16_gflops" if r.get("precision") != "f32" else "matmul_1024_gflops") or 0
    share = f"{100 * r['gflops'] / peak:.1f} %" if peak else "?"
    ratio = f"**{r['throughput'] / t['throughput']:.2f}×**" if t else "—"
    m = " / ".join(f"{mem[k]:,.0f} MiB" if k in mem else "—" for k in ((model, asked, "candle"), (model, asked, "torch")))
    theirs = f"{t['throughput']:,.0f} {t['unit']}" if t else "—"
    ran = r.get("precision", asked)
    label = asked if ran == asked else f"{asked} (ran in {ran})"
    lines.append(f"| {model} | {label} | {r['throughput']:,.0f} {r['unit']} | "
                 f"{theirs} | {ratio} | {share} | {m} |")
table = "\n".join(lines) + "\n"
open(f"{out}/gpu-check.md", "w").write(table)
print(table)
sys.exit(1 if failed else 0)
PY
