#!/usr/bin/env bash
# Fails unless the program's .so is the same from any checkout path and target dir: the .so
# of this checkout (built here, incrementally, by scripts/build-sbf.sh) is compared with one
# built from a copy of the checkout at another path, with its target dir elsewhere too. A
# deployer compares that sha256 with the deployed program's
# (`solana program dump <id> p.so && sha256sum p.so`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# The copy goes under the home directory when this checkout is not there, and under /tmp
# otherwise: the two builds never share a path prefix that the remapping could hide.
case "$root" in
  "$HOME"/*) mkdir -p /tmp; elsewhere="$(mktemp -d /tmp/tg-repro.XXXXXX)" ;;
  *) mkdir -p "$HOME/.cache"; elsewhere="$(mktemp -d "$HOME/.cache/tg-repro.XXXXXX")" ;;
esac
trap 'rm -rf "$elsewhere"' EXIT

"$root/scripts/build-sbf.sh" >/dev/null 2>"$elsewhere/here.log" || { cat "$elsewhere/here.log" >&2; exit 1; }
a=$(sha256sum "$root/target/deploy/tensorgrid.so" | cut -c1-64)

copy="$elsewhere/another-checkout"
mkdir -p "$copy"
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$copy"
CARGO_TARGET_DIR="$elsewhere/target-two" "$copy/scripts/build-sbf.sh" >/dev/null 2>"$elsewhere/copy.log" \
  || { cat "$elsewhere/copy.log" >&2; exit 1; }
b=$(sha256sum "$copy/target/deploy/tensorgrid.so" | cut -c1-64)

echo "this checkout:    $a"
echo "another checkout: $b"
if [ "$a" != "$b" ]; then
  echo "FAIL: the .so depends on the build paths" >&2
  exit 1
fi
echo "reproducible: $a"
