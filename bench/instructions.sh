#!/usr/bin/env bash
# A stable companion to run.sh: CPU instructions per request, counted by valgrind's callgrind,
# for Coffer without and with a file audit device, under the same fixed workload. Wall-clock
# req/s moves with whatever else the machine runs; instruction counts barely do, so this is the
# number to compare before/after a change to the request path (the audit cost especially).
#
# For each peer: start the release server under callgrind (production-like, see lib.sh), create
# the secret and an IAM user whose policy is evaluated on every request (make_bench_user), warm up with WARM requests (signing-key and policy caches), zero the counters,
# send exactly REQUESTS calls of SCENARIO (default sm-get: GetSecretValue) over CONNECTIONS
# connections, dump the counters.
# Prints instructions per request for each peer and the audit share,
# 1 - Ir(coffer) / Ir(coffer-audit): the throughput lost to the audit log if the server is
# CPU-bound.
#
# What it does not see: time in the kernel (the audit file's write(2) calls) and SHA-NI (valgrind
# hides it, so SHA-256 runs its AVX code and costs more instructions than it costs time).
#
# Environment: SCENARIO (a coffer-loadgen scenario, default sm-get; for sm-put, which writes 16
# secrets per connection, CONNECTIONS=1 WARM=1700 reaches the steady state of 100 versions per
# secret), REQUESTS (default 2000), WARM (default 200), CONNECTIONS (default 16),
# COFFER_BIN (default $CARGO_TARGET_DIR/release/coffer; built unless given), KEEP (a directory
# to copy the callgrind outputs to, for callgrind_annotate). Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
REQUESTS="${REQUESTS:-2000}"
WARM="${WARM:-200}"
CONNECTIONS="${CONNECTIONS:-16}"
SCENARIO="${SCENARIO:-sm-get}"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
if [ -z "${COFFER_BIN:-}" ]; then
    cargo build --release --locked -p coffer -p coffer-bench
    COFFER_BIN="$CARGO_TARGET_DIR/release/coffer"
fi
LOADGEN="$CARGO_TARGET_DIR/release/coffer-loadgen"
COFFER=$COFFER_BIN
PORT_TRIES=1200
source bench/lib.sh

declare -A IR
measure() {
    local name=$1 audit=${2:-} pid line total=0 ir
    LAUNCH=(valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.%p.out")
    start_coffer "$name" "$audit"
    make_bench_user "$name"
    pid=${SERVER_PID[$name]}
    local common=(--endpoint "${ENDPOINT[$name]}" --access-key "${AKID[$name]}" --secret-key "${SECRET[$name]}"
                  --scenario "$SCENARIO" --connections "$CONNECTIONS")
    "$LOADGEN" --endpoint "${ENDPOINT[$name]}" --access-key "${SETUP_AKID[$name]}" \
        --secret-key "${SETUP_SECRET[$name]}" --scenario "$SCENARIO" --setup
    "$LOADGEN" "${common[@]}" --requests "$WARM" >/dev/null
    callgrind_control -z "$pid" >/dev/null
    line=$("$LOADGEN" "${common[@]}" --requests "$REQUESTS" --target "$name")
    callgrind_control -d "$pid" >/dev/null
    if [ "$(json_field "$line" errors)" != 0 ]; then echo "errors: $line" >&2; exit 1; fi
    # Every dump since the zeroing.
    for f in "$WORK/$name.$pid.out".*; do
        ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
        total=$((total + ir))
    done
    IR[$name]=$total
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK/$name.$pid.out".* "$KEEP/"; fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    printf '%-13s %12d instructions for %d requests: %8d per request\n' "$name" "$total" "$REQUESTS" $((total / REQUESTS))
}

measure coffer
measure coffer-audit audit
python3 - "${IR[coffer]}" "${IR[coffer-audit]}" "$REQUESTS" <<'PY'
import sys
plain, audit, n = (int(a) for a in sys.argv[1:])
print(f"audit: +{(audit - plain) / n:.0f} instructions per request; "
      f"audit share (1 - Ir(coffer)/Ir(coffer-audit)): {1 - plain / audit:.1%}")
PY
