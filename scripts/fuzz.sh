#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (see docs/reliability.md, "Fuzzing").
#
#   FUZZ_SECONDS=60 scripts/fuzz.sh            # about 60 s of fuzzing in all (the CI budget)
#   FUZZ_SECONDS=3600 scripts/fuzz.sh          # an hour, by hand
#   scripts/fuzz.sh coffer-kms coffer-policy   # only these crates' targets
#
# Each target first runs its committed corpus (crates/<crate>/fuzz-corpus/<target>/) and the
# seeds its test makes, then mutated inputs until its time is up. A target has one or two
# phases (mutation, and structured generation where it has a generator); FUZZ_SECONDS is
# shared evenly between the PHASES phases (at least 1 s each; FUZZ_PHASE_SECONDS overrides).
# A failure prints the minimal input as a byte string for a regression test.
# The targets are the tests named `fuzz_*` (each test binary's list: `cargo test -- --list`).
# Without this script, `cargo test` runs each target's corpus and 200 mutated inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# Phases of all targets together (keep in step when adding a target).
PHASES=25

total="${FUZZ_SECONDS:-60}"
per_phase="${FUZZ_PHASE_SECONDS:-$(( total / PHASES ))}"
[ "$per_phase" -ge 1 ] || per_phase=1
# The whole workspace, as `cargo test --workspace` builds it (same features: nothing is
# rebuilt after the main test run), or only the crates named.
if [ $# -gt 0 ]; then
    packages=()
    for crate in "$@"; do packages+=(-p "$crate"); done
else
    packages=(--workspace)
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
started=$(date +%s)
echo "fuzz: $per_phase s per phase"
if FUZZ_SECONDS="$per_phase" cargo test --locked "${packages[@]}" --tests fuzz_ \
    -- --test-threads=1 --nocapture >"$log" 2>&1; then
    grep -o 'fuzz target .*' "$log" || true
else
    tail -n 80 "$log"
    echo "fuzz: a target failed (its minimal input is above)"
    exit 1
fi
echo "fuzz: all targets passed in $(( $(date +%s) - started )) s"
