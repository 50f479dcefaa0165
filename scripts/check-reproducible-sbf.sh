#!/usr/bin/env bash
# Builds the program twice from copies of this checkout at two different paths, with the
# patched std and the target dir in two different places (one outside the home directory),
# and fails unless both .so files have the same sha256. A deployer compares that hash with
# the deployed program's (`solana program dump <id> p.so && sha256sum p.so`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/tg-repro.XXXXXX)"
trap 'rm -rf "$work"' EXIT

build() { # $1 checkout dir, $2 std cache, $3 target dir
  mkdir -p "$1"
  (cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$1"
  SBF_STD_CACHE="$2" CARGO_TARGET_DIR="$3" "$1/scripts/build-sbf.sh" >/dev/null
  sha256sum "$1/target/deploy/tensorgrid.so" | cut -c1-64
}

a=$(build "$work/one/tensorgrid" "$work/std-outside-home" "$work/target-one")
b=$(build "$work/second-checkout/x" "$HOME/.cache/tensorgrid-repro-std" "$work/target-two")
rm -rf "$HOME/.cache/tensorgrid-repro-std"
echo "build 1: $a"
echo "build 2: $b"
if [ "$a" != "$b" ]; then
  echo "FAIL: the .so depends on the build paths" >&2
  exit 1
fi
echo "reproducible: $a"
