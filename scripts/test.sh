#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. builds the program to SBF (scripts/build-sbf.sh; installs the pinned nightly and
#      sbpf-linker on first use), also for the deploy test's own program address,
#   2. runs every workspace test with the program executed natively (the fast loop), plus the
#      compute-unit budgets on the .so,
#   3. builds the TypeScript wallet script (npm), which a CLI test runs against the local chain,
#   4. runs the program test suite again against the .so (same cases, TENSORGRID_RUNTIME=sbf).
# For a quick native-only loop: cargo test --workspace
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build SBF"
# The deploy test's copy, built for its throwaway program address (crates/cli/tests/deploy.rs),
# then tensorgrid's own.
scripts/build-sbf.sh --program-id 2iXtA8oeZqUU5pofxK971TCEvFGfems2AcDRaZHKD2pQ >/dev/null
scripts/build-sbf.sh >/dev/null
export TENSORGRID_REQUIRE_SBF=1

echo "== TypeScript client and wallet scripts (run by the CLI tests against the local chain)"
[ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null
npm run --silent build

echo "== tests, program run natively"
cargo test --workspace

echo "== program tests against the SBF bytecode"
# The same package and target selection as above, filtered to the program suite's cases: a
# narrower selection (`--test program`) would unify features differently and rebuild half of
# the dependency graph.
TENSORGRID_RUNTIME=sbf cargo test --workspace -- cases::
