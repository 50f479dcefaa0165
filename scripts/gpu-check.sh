#!/usr/bin/env bash
# The GPU check, in one run on a machine with an NVIDIA GPU, inside a time budget (default
# 540 s after the build; GPU_CHECK_BUDGET): what does not fit is skipped and said so.
#   1. the `--features cuda` build of the CLI for the card's compute capability (or a build
#      made elsewhere: --binary, for a machine without Rust or crates.io);
#   2. every shipped job (jobs/*.json) and the GPT-2 job under bf16 mixed precision, each
#      trained twice on CUDA: the result hashes must be equal (bits are reproducible within a
#      device class: README, "Determinism");
#   3. training throughput against PyTorch on the same GPU (scripts/bench-training.sh), in f32
#      (TF32 off on both sides) and in bf16 mixed precision, and GPT-2 small (124M parameters,
#      context 1,024) on both sides with its memory;
#   4. one Markdown table: card, driver, CUDA, each job's hashes equal or not, each model's
#      throughput vs PyTorch and its share of the card's matmul ceiling (both measured at
#      4096³). Written to OUT_DIR/gpu-check.md after every phase (a run cut short still says
#      what it measured), with the raw lines and errors.log beside it: seven files.
# Exits non-zero when a job fails or its two hashes differ.
#
#   scripts/gpu-check.sh [--binary PATH] [--python PATH] [--out OUT_DIR] [--repeats N]
#   scripts/gpu-check.sh --build-only [--compute-cap 90] [--cuda-libs DIR]
#
# --build-only builds here (nvcc on the PATH; no GPU needed) for --compute-cap (default 90:
# H100/H200) into .gpu/tensorgrid (stripped), for a machine that cannot build: carry .gpu and
# run `scripts/gpu-check.sh --binary .gpu/tensorgrid` there. candle links cuBLAS, cuBLASLt,
# NVRTC and cuRAND when it is built: the binary needs the major version it was linked against
# on the machine it runs on. --cuda-libs names a folder holding that machine's versions
# (e.g. CUDA 13's, from pip's `nvidia-cublas`, `nvidia-cuda-nvrtc`, `nvidia-curand` wheels
# for cu13); the build then links against them and checks it did. Not yet run against a
# GPU: no GPU has been lent to this project so far.
#
# Dry run without a GPU (the script's own test): GPU_CHECK_DEVICE=cpu runs every step on the
# CPU with the card's details faked, GPU_CHECK_JOBS="digits-mlp kjv-gpt2" limits the jobs.
# OUT_DIR defaults to $OUT when set, else target/gpu-check.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
binary="" python="" out="${OUT:-$root/target/gpu-check}" build_only=0 cap="${CUDA_COMPUTE_CAP:-}"
repeats=1 device="${GPU_CHECK_DEVICE:-cuda}" only_jobs="${GPU_CHECK_JOBS:-}" cuda_libs=""
budget="${GPU_CHECK_BUDGET:-540}"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --compute-cap) cap="$2"; shift 2 ;;
    --cuda-libs) cuda_libs="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
log() { echo "[gpu-check $(($(date +%s) - start))s] $*" >&2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. The build.
if [ -z "$binary" ]; then
  if [ -z "$cap" ]; then
    if [ "$build_only" = 1 ]; then
      cap=90
    else
      cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')"
    fi
  fi
  if [ -n "$cuda_libs" ]; then
    # Link against the target machine's libraries: unversioned names for the linker, and
    # cudarc's bindings for the version they are (CUDARC_CUDA_VERSION, e.g. 13000).
    mkdir -p "$work/link"
    for lib in cublas cublasLt nvrtc curand cuda; do
      found="$(ls "$cuda_libs"/lib$lib.so* 2>/dev/null | sort -V | tail -1 || true)"
      [ -n "$found" ] && ln -sf "$(cd "$(dirname "$found")" && pwd)/$(basename "$found")" "$work/link/lib$lib.so"
    done
    export RUSTFLAGS="${RUSTFLAGS:-} -L native=$work/link"
    export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
  fi
  log "building the CLI with --features cuda for sm_$cap"
  CUDA_COMPUTE_CAP="$cap" cargo build --release -q -p tensorgrid-cli --features cuda
  binary="$root/target/release/tensorgrid"
fi
if [ "$build_only" = 1 ]; then
  mkdir -p .gpu
  cp "$binary" .gpu/tensorgrid
  strip .gpu/tensorgrid 2>/dev/null || true
  needed="$(readelf -d .gpu/tensorgrid 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
  log "built .gpu/tensorgrid ($(du -h .gpu/tensorgrid | cut -f1)); it needs: $needed"
  if [ -n "$cuda_libs" ] && [ -n "$CUDARC_CUDA_VERSION" ]; then
    major="${CUDARC_CUDA_VERSION:0:2}"
    for lib in libcublas.so libcublasLt.so; do
      if ! grep -q "$lib.$major" <<<"$needed"; then
        echo "the build links $lib, but not version $major: $needed" >&2
        exit 1
      fi
    done
  fi
  log "carry .gpu and run scripts/gpu-check.sh --binary .gpu/tensorgrid"
  exit 0
fi
[ -x "$binary" ] || { echo "$binary is not an executable" >&2; exit 1; }
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
torch_py="${python:-python3}"
mkdir -p "$out"
: >"$out/errors.log"
# NVRTC and the driver keep compiled kernels between processes (every run loads candle's PTX).
export CUDA_CACHE_MAXSIZE="${CUDA_CACHE_MAXSIZE:-4294967296}"

# The libraries the binary was linked against, where the system's loader does not know them
# (CUDA that came with PyTorch's wheels): their folders go on the loader's path, the cu13
# ones first (their siblings, e.g. cuBLASLt beside cuBLAS, are found there too).
if [ "$device" = cuda ]; then
  libdirs="$("$torch_py" - <<'PY' 2>/dev/null || true
import glob, os, site
dirs = []
for base in site.getsitepackages() + [site.getusersitepackages()]:
    for f in glob.glob(os.path.join(base, "nvidia", "**", "lib*.so*"), recursive=True):
        d = os.path.dirname(f)
        if d not in dirs:
            dirs.append(d)
dirs.sort(key=lambda d: (0 if "cu13" in d else 1, d))
print(":".join(dirs))
PY
)"
  [ -n "$libdirs" ] && export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ldd "$binary" >"$work/ldd" 2>&1 && grep -q 'not found' "$work/ldd"; then
    grep 'not found' "$work/ldd" | tee -a "$out/errors.log" >&2
    echo "the binary's CUDA libraries are not on this machine (build it against them: --build-only --cuda-libs)" >&2
    exit 1
  fi
fi

# The card, the CUDA it runs, the matmul ceilings: info.json.
"$binary" bench --device "$device" --specs jobs/digits-mlp.json --rounds 1 --round-secs 0.1 \
  >"$work/bench-header" 2>>"$out/errors.log" || true
sed -n 1p "$work/bench-header" >"$work/ceiling.json"
if [ "$device" = cuda ]; then
  card="$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader | head -1)"
  driver_cuda="$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)"
else
  card="no GPU (dry run on the $device)" driver_cuda="none"
fi
torch_cuda="$("$torch_py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null || echo none)"
cublas="$(grep -o 'libcublas\.so[^ ]* => [^ ]*' "$work/ldd" 2>/dev/null | head -1 || true)"
CARD="$card" DRIVER_CUDA="$driver_cuda" TORCH="$torch_cuda" CUBLAS="$cublas" python3 - "$work/ceiling.json" >"$out/info.json" <<'PY'
import json, os, sys
try:
    c = json.loads(open(sys.argv[1]).read())
except Exception:
    c = {}
print(json.dumps({"card": os.environ["CARD"], "driver_cuda": os.environ["DRIVER_CUDA"],
                  "torch": os.environ["TORCH"], "candle_cublas": os.environ["CUBLAS"], **c}))
PY
log "card: $card, driver's CUDA $driver_cuda; PyTorch $torch_cuda"

# The table, from whatever has been measured so far.
render() {
  python3 - "$out" "$(($(date +%s) - start))" <<'PY'
import json, math, sys
from collections import defaultdict
out, secs = sys.argv[1], int(sys.argv[2])
info = json.loads(open(f"{out}/info.json").read())
def num(v):
    return v if isinstance(v, (int, float)) else math.nan
lines = [f"# GPU check ({secs} s)", "",
         f"Card: {info['card']} (name, driver, memory, compute capability); the driver's CUDA "
         f"{info['driver_cuda']}; PyTorch {info['torch']}; candle's cuBLAS {info.get('candle_cublas') or '?'}; "
         f"class `{info.get('accelerator', '?')}`. Matmul ceilings measured here: "
         f"f32 {num(info.get('matmul_4096_f32_gflops', info.get('matmul_1024_gflops'))):,.0f} GFLOP/s, "
         f"bf16 {num(info.get('matmul_4096_bf16_gflops')):,.0f} GFLOP/s (4096³; the CPU: f32 1024³).", "",
         "| job | run 1 | run 2 | hashes | result hash | metric | wall time (s) |",
         "|---|---|---|---|---|---:|---:|"]
runs = defaultdict(dict)
try:
    for l in open(f"{out}/jobs.jsonl"):
        r = json.loads(l)
        runs[r["job"]][r["run"]] = r
except FileNotFoundError:
    pass
failed = False
def state(r):
    if r.get("ok"):
        return "ok"
    return "FAILED: " + str(r.get("error", "not run"))[:80]
for job, rs in sorted(runs.items()):
    a, b = rs.get(1, {}), rs.get(2, {})
    ta, tb = a.get("train", {}), b.get("train", {})
    same = bool(a.get("ok") and b.get("ok") and ta.get("result_hash") == tb.get("result_hash"))
    failed |= not same
    lines.append(f"| {job} | {state(a)} | {state(b)} | {'**equal**' if same else '**DIFFER**'} | "
                 f"`{ta.get('result_hash', '')[:16]}…` | {num(ta.get('value')):.4g} | "
                 f"{num(ta.get('wall_time_s')):.1f} / {num(tb.get('wall_time_s')):.1f} |")
lines += ["", "| model | precision | candle | PyTorch | candle / PyTorch | candle % of matmul ceiling | memory, candle / PyTorch |",
          "|---|---|---:|---:|---:|---:|---|"]
best, mem = {}, {}
try:
    rows = [json.loads(l) for l in open(f"{out}/bench.jsonl") if l.strip()]
except FileNotFoundError:
    rows = []
for r in rows:
    if "gpu_used_mib" in r:
        mem[(r["model"], r["asked"], r["side"])] = f"{r['gpu_used_mib']:,.0f} MiB in use (nvidia-smi, context included)"
        continue
    if "model" not in r or "throughput" not in r:
        continue
    key = (r["model"], r["asked"], r["side"])
    if key not in best or r["throughput"] > best[key]["throughput"]:
        best[key] = r
    if "peak_mib" in r:
        mem[key] = f"{r['peak_mib']:,.0f} MiB allocated at peak"
for (model, asked, side), r in sorted(best.items()):
    if side != "candle":
        continue
    t = best.get((model, asked, "torch"))
    ran = r.get("precision", asked)
    peak = num(info.get("matmul_4096_bf16_gflops") if ran != "f32"
               else info.get("matmul_4096_f32_gflops", info.get("matmul_1024_gflops")))
    share = f"{100 * r['gflops'] / peak:.1f} %" if peak == peak and peak > 0 else "?"
    ratio = f"**{r['throughput'] / t['throughput']:.2f}×**" if t else "—"
    theirs = f"{t['throughput']:,.0f} {t['unit']}" if t else "—"
    label = asked if ran == asked else f"{asked} (ran in {ran})"
    m = " / ".join(mem.get(k, "—") for k in ((model, asked, "candle"), (model, asked, "torch")))
    lines.append(f"| {model} | {label} | {r['throughput']:,.0f} {r['unit']} | {theirs} | {ratio} | {share} | {m} |")
table = "\n".join(lines) + "\n"
open(f"{out}/gpu-check.md", "w").write(table)
print(table)
sys.exit(1 if failed or not runs else 0)
PY
}
left() { echo $((start + budget - $(date +%s))); }

# 2. Every shipped job twice, and GPT-2 in bf16: hashes compared. Jobs start while more than
# half the budget is left (the benches need the rest).
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
    if [ "$(left)" -lt $((budget / 2)) ]; then
      echo "{\"job\": \"$name\", \"run\": $run, \"ok\": false, \"error\": \"skipped: out of time\"}" >>"$out/jobs.jsonl"
      continue
    fi
    log "training $name ($run of 2)"
    if line="$(timeout "$(left)" "$binary" train --spec "$spec" --out "$work/out-$name-$run" --device "$device" --fresh 2>"$work/err" | tail -1)" \
      && [ -n "$line" ]; then
      echo "{\"job\": \"$name\", \"run\": $run, \"ok\": true, \"train\": $line}" >>"$out/jobs.jsonl"
    else
      { echo "== $name run $run"; tail -5 "$work/err"; } >>"$out/errors.log"
      reason="$(tail -1 "$work/err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip() or "timed out"))')"
      echo "{\"job\": \"$name\", \"run\": $run, \"ok\": false, \"error\": $reason}" >>"$out/jobs.jsonl"
    fi
  done
done
render >/dev/null || true

# 3. Throughput against PyTorch: the shipped models in f32 and in bf16, then GPT-2 small.
py_args=()
[ -n "$python" ] && py_args=(--python "$python")
: >"$out/bench.jsonl"
for precision in f32 bf16; do
  if [ "$(left)" -lt 60 ]; then log "no time left for the $precision bench"; continue; fi
  log "bench-training.sh --device $device --precision $precision"
  timeout "$(left)" scripts/bench-training.sh --device "$device" --precision "$precision" --repeats "$repeats" \
    --binary "$binary" "${py_args[@]}" --raw "$work/raw-$precision.jsonl" --errors "$out/errors.log" \
    >"$out/bench-$precision.md" 2>>"$out/errors.log" || log "bench-training.sh failed ($precision): errors.log"
  [ -f "$work/raw-$precision.jsonl" ] && python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l); r["asked"] = sys.argv[2]; print(json.dumps(r))' \
    "$work/raw-$precision.jsonl" "$precision" >>"$out/bench.jsonl"
  render >/dev/null || true
done
tiny=()
# A dry run on the CPU: the same steps on a model small enough to time in seconds.
[ "$device" = cuda ] || tiny=(--tiny)
"$torch_py" scripts/gpt2_small_spec.py "$work" --context 1024 --batch 8 "${tiny[@]}"
tag() { python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if "model" in r: r["side"] = sys.argv[1]; r["asked"] = sys.argv[2]; print(json.dumps(r))' "$1" "$2"; }
for precision in f32 bf16; do
  if [ "$(left)" -lt 30 ]; then log "no time left for GPT-2 small ($precision)"; continue; fi
  log "GPT-2 small, $precision"
  # The GPU's memory in use, sampled while candle's bench runs (candle keeps no allocator
  # statistics): the CUDA context and cuBLAS's workspace included.
  (while [ "$device" = cuda ]; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; sleep 0.2; done) >"$work/mem-$precision" 2>/dev/null &
  sampler=$!
  timeout "$(left)" "$binary" bench --device "$device" --precision "$precision" --specs "$work/gpt2-small.json" --rounds 5 --round-secs 1 \
    2>>"$out/errors.log" | tag candle "$precision" >>"$out/bench.jsonl" || log "candle GPT-2 small failed ($precision): errors.log"
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  used="$(sort -n "$work/mem-$precision" | tail -1)"
  [ -n "$used" ] && echo "{\"model\": \"gpt2-small\", \"side\": \"candle\", \"asked\": \"$precision\", \"gpu_used_mib\": $used}" >>"$out/bench.jsonl"
  if [ "$(left)" -gt 20 ]; then
    timeout "$(left)" "$torch_py" scripts/bench_torch.py --device "$device" --precision "$precision" --gpt2-spec "$work/gpt2-small.json" --rounds 5 --round-secs 1 \
      2>>"$out/errors.log" | tag torch "$precision" >>"$out/bench.jsonl" || log "PyTorch GPT-2 small failed ($precision): errors.log"
  fi
  render >/dev/null || true
done

# 4. The table.
render
