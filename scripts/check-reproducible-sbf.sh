#!/usr/bin/env bash
# Builds the program twice from copies of this checkout at two different paths (one outside
# the home directory), with the target dir in two different places, and fails unless both
# .so files have the same sha256. A deployer compares that hash with
# the deployed program's (`solana program dump <id> p.so && sha256sum p.so`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/tg-repro.XXXXXX)"

build() { # $1 checkout dir, $2 target dir
  mkdir -p "$1"
  (cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$1"
  CARGO_TARGET_DIR="$2" "$1/scripts/build-sbf.sh" >/dev/null 2>"$1.log" || { cat "$1.log" >&2; return 1; }
  sha256sum "$1/target/deploy/tensorgrid.so" | cut -c1-64
}

mkdir -p "$HOME/.cache"
second="$(mktemp -d "$HOME/.cache/tg-repro.XXXXXX")"
trap 'rm -rf "$work" "$second"' EXIT
a=$(build "$work/one/tensorgrid" "$work/target-one")
b=$(build "$second/another-checkout" "$second/target-two")
echo "build 1: $a"
echo "build 2: $b"
if [ "$a" != "$b" ]; then
  echo "FAIL: the .so depends on the build paths" >&2
  exit 1
fi
echo "reproducible: $a"
