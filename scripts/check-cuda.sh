#!/usr/bin/env bash
# The rig build compiles: `cargo check` of the worker and the CLI with `--features cuda`
# (candle's CUDA kernels are compiled by nvcc). There is no GPU here, so the compute
# capability is given (80 = A100-class; the kernels are compiled for it, the Rust is the
# same for every card). Installs Debian's CUDA toolkit (contrib non-free) when nvcc is absent;
# `scripts/check-cuda.sh --install-only` only does that (.ci/run starts it early, in the
# background: it is mostly a download).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tensorgrid/target}"

if ! command -v nvcc >/dev/null; then
    echo "nvcc not found: installing nvidia-cuda-toolkit from Debian contrib non-free (about 3 min)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        $SUDO sed -i -E '/^Components:/{/contrib/!s/$/ contrib non-free/}' /etc/apt/sources.list.d/debian.sources
    elif [ -f /etc/apt/sources.list ]; then
        $SUDO sed -i -E '/^deb /{/contrib/!s/ main( |$)/ main contrib non-free /}' /etc/apt/sources.list
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit >/dev/null
fi
nvcc --version | tail -1
[ "${1:-}" = "--install-only" ] && exit 0

export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
# candle's kernel build (cudaforge) runs nvcc on half the cores by default: one, on a 2-core CI
# machine, while the other idles through the longest step of CI.
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
cargo check --locked -p tensorgrid-worker -p tensorgrid-cli \
    --features tensorgrid-worker/cuda,tensorgrid-cli/cuda --bins --lib
