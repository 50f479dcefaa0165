#!/usr/bin/env bash
# Builds programs/tensorgrid to real SBF bytecode (SBPF v3) at target/deploy/tensorgrid.so,
# without Solana's platform-tools: a pinned nightly with rust-src, a patched copy of its std,
# LLVM's upstream BPF backend and sbpf-linker. Installs what is missing (cached afterwards).
#
#   scripts/build-sbf.sh            build (incremental)
#   SBF_CLEAN=1 scripts/build-sbf.sh   rebuild std and the program from scratch
#   scripts/build-sbf.sh --program-id ADDRESS
#                                   the program for a deployment at ADDRESS (your program
#                                   keypair's public key), at target/deploy/tensorgrid-ADDRESS.so;
#                                   target/deploy/tensorgrid.so stays tensorgrid's own
#
# The bytes do not depend on where the checkout, the caches or the toolchain live (every
# path is remapped; scripts/check-reproducible-sbf.sh builds twice and compares), so the
# printed sha256 can be compared with a deployed program's.
#
# Users with the Solana toolchain can run `anchor build` instead; the crate is a normal Anchor
# program. Files used: scripts/sbf/{bpfel-solana-solana.json,std-solana.patch}.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

program_id=""
while [ $# -gt 0 ]; do
  case "$1" in
    --program-id) [ $# -ge 2 ] || { echo "--program-id needs an ADDRESS" >&2; exit 2; }
                  program_id="$2"; shift 2 ;;
    --program-id=*) program_id="${1#*=}"; shift ;;
    *) echo "usage: scripts/build-sbf.sh [--program-id ADDRESS]" >&2; exit 2 ;;
  esac
  # An empty value (an unset $ID in `--program-id $ID`) must not quietly build the default.
  [ -n "$program_id" ] || { echo "--program-id: empty address" >&2; exit 2; }
done
if [ -n "$program_id" ] && ! [[ "$program_id" =~ ^[1-9A-HJ-NP-Za-km-z]{32,44}$ ]]; then
  echo "--program-id: '$program_id' is not a base58 address (solana-keygen pubkey KEYPAIR prints one)" >&2
  exit 2
fi

toolchain="${SBF_TOOLCHAIN:-nightly-2026-10-29}"   # LLVM 23: what sbpf-linker 0.2.6 links with
linker_version="0.2.6"
cache="${TENSORGRID_CACHE:-$HOME/.cache/tensorgrid}"
# The patched std copy lives at one fixed absolute path on every machine: its location goes
# into the std crates' symbol hashes (and so into the code layout), so a copy in a per-user
# or per-checkout cache gave different bytes. Measured: same sha256 from any checkout path,
# target dir and cache location (scripts/check-reproducible-sbf.sh).
std_cache="/tmp/tensorgrid-sbf-std"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
target_dir="${CARGO_TARGET_DIR:-$root/target}/sbf"
spec="$root/scripts/sbf/bpfel-solana-solana.json"
patch_file="$root/scripts/sbf/std-solana.patch"
out="$root/target/deploy/tensorgrid${program_id:+-$program_id}.so"

say() { printf '[build-sbf] %s\n' "$*" >&2; }

# 1. Toolchain with rust-src.
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1 \
   || [ ! -d "$(rustup run "$toolchain" rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
  say "installing $toolchain with rust-src"
  rustup toolchain install "$toolchain" --profile minimal -c rust-src >&2
fi
sysroot="$(rustup run "$toolchain" rustc --print sysroot)"

# 2. sbpf-linker (built with the default toolchain; it loads the nightly's libLLVM at link time).
linker="$cache/sbpf-linker-$linker_version-debug/bin/sbpf-linker"
if [ ! -x "$linker" ]; then
  say "installing sbpf-linker $linker_version (a few minutes, once)"
  # A debug build: half the install time, and the same bytes out (it drives LLVM, which does
  # the work): measured, the .so has the sha256 of a release-built linker's (BENCHMARKS.md).
  cargo install sbpf-linker --version "$linker_version" --locked --debug --root "$cache/sbpf-linker-$linker_version-debug" >&2
fi

# 3. A patched copy of the nightly's std (keyed by toolchain and patch contents).
patch_id="$(sha256sum "$patch_file" | cut -c1-12)"
std_root="$std_cache/std-$toolchain-$patch_id"
if [ -e "$std_cache" ] && [ ! -w "$std_cache" ]; then
  say "$std_cache exists but is not writable by $(id -un): remove it or build as its owner"
  exit 1
fi
if [ ! -f "$std_root/.patched" ]; then
  say "preparing patched std in $std_root"
  rm -rf "$std_root"
  mkdir -p "$std_root"
  cp -r "$sysroot/lib/rustlib/src/rust/library" "$std_root/library"
  (cd "$std_root/library" && patch -p2 --quiet < "$patch_file")
  touch "$std_root/.patched"
  rm -rf "$target_dir/bpfel-solana-solana"   # std changed: its build must not be reused
fi
[ "${SBF_CLEAN:-0}" = 1 ] && rm -rf "$target_dir"

# 4. Build. Flags: SBPF v3, 4 KiB stack frames, no instructions the v3 VM lacks; every path
#    that can reach the bytes (panic locations) remapped to a fixed name, so the output does
#    not depend on where the checkout, the std copy, the registry or the toolchain live.
#    rustc applies the last matching prefix, so the most specific come last.
flags=(
  -C "linker=$linker" -C panic=abort -C passes=lower-atomic -C relocation-model=static
  -C target-cpu=v4 -C target-feature=+allows-misaligned-mem-access
  "--remap-path-prefix=$HOME=/home"
  "--remap-path-prefix=$sysroot=/rustc"
  "--remap-path-prefix=$cargo_home=/cargo"
  "--remap-path-prefix=$std_root=/std"
  "--remap-path-prefix=$target_dir=/target"
  "--remap-path-prefix=$root=."
  -C link-arg=--arch=v3 -C link-arg=-O2 -C link-arg=--llvm-args=-inline-threshold=0
  ${SBF_EXTRA_LINK_ARG:+-C link-arg=$SBF_EXTRA_LINK_ARG}
  -C link-arg=--llvm-args=--bpf-stack-size=4096
  -C link-arg=--llvm-args=--bpf-max-stores-per-memfunc=5
  -C link-arg=--llvm-args=--disable-gotox -C link-arg=--llvm-args=--disable-ldsx
  -C link-arg=--llvm-args=--disable-movsx -C link-arg=--llvm-args=--disable-bswap
)
# Size: rustc optimises for size ("s": every function gets LLVM's `optsize`), the linker's
# whole-program pass runs at -O2 and honours those attributes (sbpf-linker's own -Os pipeline
# no longer exists in LLVM 23) with inlining left to `#[inline]` hints (threshold 0), since
# Anchor's per-instruction code is what makes the bytes. Measured in BENCHMARKS.md: 46 % of
# the bytes of opt-level 3 with every compute budget still met.
# The program aborts on panic (the workspace's release profile unwinds, for the worker's sake;
# the profile is part of the build's identity, so it is set here, not inherited).
profile=(--config "profile.release.opt-level=\"${SBF_OPT_LEVEL:-s}\"" --config 'profile.release.panic="abort"')
rustflags="$(printf '%s\x1f' "${flags[@]}")"
say "building programs/tensorgrid for SBF ($toolchain)${program_id:+ at $program_id}"
# Read by the program's declare_id! at compile time (option_env!): set only here, so a build
# without --program-id is tensorgrid's own even when the variable leaked into this shell.
unset TENSORGRID_BUILD_PROGRAM_ID
[ -n "$program_id" ] && export TENSORGRID_BUILD_PROGRAM_ID="$program_id"
__CARGO_TESTS_ONLY_SRC_ROOT="$std_root/library" \
CARGO_ENCODED_RUSTFLAGS="${rustflags%$'\x1f'}" \
  cargo "+$toolchain" build --release --locked -p tensorgrid \
    --target "$spec" --target-dir "$target_dir" "${profile[@]}" ${SBF_CARGO_CONFIG:+--config "$SBF_CARGO_CONFIG"} \
    -Z build-std=std,panic_abort -Z json-target-spec >&2

mkdir -p "$(dirname "$out")"
cp "$target_dir/bpfel-solana-solana/release/libtensorgrid.so" "$out"
say "wrote $out ($(stat -c %s "$out") bytes, SBPF v3, sha256 $(sha256sum "$out" | cut -c1-64))"
echo "$out"
