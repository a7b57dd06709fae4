#!/usr/bin/env bash
# One command for Coffer's side-by-side benchmark (see ../shared/design/PERFORMANCE.md):
# builds release binaries; starts Coffer in production-like mode (durable redb storage,
# initialized and unsealed through `coffer operator`, SigV4 verified on every request), the
# bare-axum baseline (the HTTP ceiling) and moto_server (what developers run locally today);
# loads each with the same generator for the same time; stops everything it started by PID;
# prints one table and writes it as JSON under target/bench/.
#
# Environment: DURATION (s, default 10), WARMUP (s, default 2), CONNECTIONS (default "16 64"),
# SCENARIOS (default "sm-get sm-put dev-footprint"), PEERS (default "coffer coffer-audit
# baseline moto"; coffer-audit is the same server with a file audit device, to measure what
# the audit costs).
#
# Scenarios: sm-get and sm-put load every peer; dev-footprint (target P6) starts
# `coffer server --dev` STARTS times (default 10) and reports the median time to its first
# successful signed request, then its resident memory after a few requests and 3 s idle.
# sm-scale (target P5, opt-in: it takes minutes) starts its own production-like Coffer,
# creates SCALE_BASE secrets (default 1000) and measures GetSecretValue over them at 16
# connections, the first ListSecrets page and the RSS; grows the store to SCALE_SECRETS
# (default 1000000) over 64 connections and measures the same again, then seal + unseal.
# Exit status is non-zero only when a target's operations error, never because it is slow.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-16 64}"
SCENARIOS="${SCENARIOS:-sm-get sm-put dev-footprint}"
PEERS="${PEERS:-coffer coffer-audit baseline moto}"
OUT="$CARGO_TARGET_DIR/bench"
VENV="${BENCH_VENV:-$ROOT/.bench-venv}"
mkdir -p "$OUT"
echo "== building release binaries"
cargo build --release --locked -p coffer -p coffer-bench
BIN="$CARGO_TARGET_DIR/release"
COFFER="$BIN/coffer"
LAUNCH=()
source bench/lib.sh

if [[ " $PEERS " == *" coffer "* ]]; then start_coffer coffer; fi
if [[ " $PEERS " == *" coffer-audit "* ]]; then start_coffer coffer-audit audit; fi
if [[ " $PEERS " == *" baseline "* ]]; then
    port=$(free_port)
    "$BIN/coffer-bench-baseline" --listen "127.0.0.1:$port" >"$WORK/baseline.out" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
    ENDPOINT[baseline]="http://127.0.0.1:$port"; AKID[baseline]=testing; SECRET[baseline]=testing
fi
if [[ " $PEERS " == *" moto "* ]]; then
    if [ ! -x "$VENV/bin/moto_server" ]; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.3' matplotlib
    fi
    port=$(free_port)
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$WORK/moto.out" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
    ENDPOINT[moto]="http://127.0.0.1:$port"; AKID[moto]=testing; SECRET[moto]=testing
fi

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
status=0
# record LINE: keeps one result line; a line that counts errors fails the run (not slowness).
record() {
    if [ -z "$1" ]; then echo "   no result (the command failed)" >&2; status=1; return; fi
    echo "$1" >>"$RESULTS"
    if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]).get("errors", 0)==0 else 1)' "$1"; then :; else
        echo "   errors: $1" >&2; status=1
    fi
}
# metric NAME TARGET VALUE UNIT [NOTE]: one row of the footprint and scale table.
metric() {
    record "$(python3 -c 'import json,sys; print(json.dumps({"metric": sys.argv[1], "target": sys.argv[2],
        "value": float(sys.argv[3]), "unit": sys.argv[4], "note": sys.argv[5], "errors": 0}))' "$1" "$2" "$3" "$4" "${5:-}")"
}
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
now_ns() { date +%s%N; }

# The P5 scale scenario, on a Coffer of its own.
scale() {
    local n=${SCALE_SECRETS:-1000000} base=${SCALE_BASE:-1000} t0 secs i times=()
    start_coffer coffer-scale
    local lg=(--endpoint "${ENDPOINT[coffer-scale]}" --access-key "${AKID[coffer-scale]}"
              --secret-key "${SECRET[coffer-scale]}")
    measure_at() {
        local count=$1 label="coffer, $1 secrets"
        echo "== GetSecretValue over $count secrets with 16 connections (${DURATION}s after ${WARMUP}s warm-up)"
        record "$("$BIN/coffer-loadgen" "${lg[@]}" --scenario sm-get-many --secrets "$count" --connections 16 \
                  --duration "$DURATION" --warmup "$WARMUP" --target "$label")"
        echo "== first ListSecrets page with $count secrets (10 calls after one)"
        record "$("$BIN/coffer-loadgen" "${lg[@]}" --scenario sm-list --probe 11 --target "$label")"
        metric rss "$label" "$(rss_mib "${SERVER_PID[coffer-scale]}")" MiB "server VmRSS after the reads"
    }
    echo "== creating $base secrets"
    "$BIN/coffer-loadgen" "${lg[@]}" --scenario sm-get-many --setup --secrets "$base" --connections 64
    measure_at "$base"
    echo "== creating secrets $base..$n over 64 connections"
    t0=$(now_ns)
    "$BIN/coffer-loadgen" "${lg[@]}" --scenario sm-get-many --setup --from "$base" --secrets "$n" --connections 64
    secs=$(python3 -c "print(($(now_ns) - $t0) / 1e9)")
    metric create "coffer, $((n - base)) CreateSecret" "$secs" s \
        "$(python3 -c "print(f'{($n - $base) / $secs:,.0f} secrets/s')")"
    measure_at "$n"
    for i in 1 2 3; do
        "$BIN/coffer" operator seal --address "${ENDPOINT[coffer-scale]}" --token "${ROOT_TOKEN[coffer-scale]}" >/dev/null
        t0=$(now_ns)
        "$BIN/coffer" operator unseal --address "${ENDPOINT[coffer-scale]}" "${UNSEAL_KEY[coffer-scale]}" >/dev/null
        times+=("$(( ($(now_ns) - t0) / 1000 ))")
    done
    metric unseal "coffer, $n secrets" "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p | awk '{ printf "%.1f", $1 / 1000 }')" ms \
        "median of 3: operator unseal command, start to exit"
}

for scenario in $SCENARIOS; do
    if [ "$scenario" = dev-footprint ]; then
        echo "== coffer server --dev: time to ready (${STARTS:-10} starts) and idle memory"
        while read -r line; do record "$line"; done < <("$BIN/coffer-bench-footprint" --coffer "$BIN/coffer" --starts "${STARTS:-10}")
        continue
    fi
    if [ "$scenario" = sm-scale ]; then scale; continue; fi
    for peer in $PEERS; do
        # The baseline answers a fixed body: it only makes sense as the ceiling for reads.
        if [ "$peer" = baseline ] && [ "$scenario" != sm-get ]; then continue; fi
        for conns in $CONNECTIONS; do
            common=(--endpoint "${ENDPOINT[$peer]}" --access-key "${AKID[$peer]}" --secret-key "${SECRET[$peer]}"
                    --scenario "$scenario" --connections "$conns")
            if [ "$peer" != baseline ]; then "$BIN/coffer-loadgen" "${common[@]}" --setup; fi
            echo "== $scenario on $peer with $conns connections (${DURATION}s after ${WARMUP}s warm-up)"
            record "$("$BIN/coffer-loadgen" "${common[@]}" --duration "$DURATION" --warmup "$WARMUP" --target "$peer")"
        done
    done
done

PY=python3
[ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"
"$PY" - "$RESULTS" "$OUT" <<'PY'
import json, os, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in lines if "scenario" in r]
metrics = [r for r in lines if "metric" in r]
out = sys.argv[2]
ceiling = {(r["scenario"], r["connections"]): r["rps"] for r in rows if r["target"] == "baseline"}
coffer = {(r["scenario"], r["connections"]): r["rps"] for r in rows if r["target"] == "coffer"}
# sm-get-many (the scale scenario): each figure against the one over the fewest secrets.
many_ref = min((r for r in rows if r["scenario"] == "sm-get-many"), key=lambda r: r["secrets"], default=None)
table = []
for r in rows:
    key = (r["scenario"], r["connections"])
    ratio = ""
    if r["target"] == "coffer" and key in ceiling:
        ratio = f'{r["rps"] / ceiling[key]:.0%} of ceiling'
    elif r["target"] == "coffer-audit" and key in coffer and coffer[key] > 0:
        ratio = f'{r["rps"] / coffer[key]:.0%} of coffer without audit'
    elif r["scenario"] == "sm-get-many":
        if many_ref is not None and r is not many_ref and many_ref["rps"] > 0:
            ratio = f'{r["rps"] / many_ref["rps"]:.0%} of the figure over {many_ref["secrets"]} secrets'
    elif r["target"] not in ("coffer", "baseline") and key in coffer and r["rps"] > 0 and r["scenario"] != "sm-list":
        ratio = f'coffer {coffer[key] / r["rps"]:.1f}x'
    table.append({**r, "ratio": ratio})
if table:
    hdr = f'{"operation":<11} {"conns":>5} {"target":<24} {"req/s":>10} {"p50 ms":>9} {"p99 ms":>9} {"errors":>6}  ratio'
    print(); print(hdr); print("-" * len(hdr))
    for r in table:
        print(f'{r["scenario"]:<11} {r["connections"]:>5} {r["target"]:<24} {r["rps"]:>10.0f} {r["p50_us"]/1000:>9.2f} '
              f'{r["p99_us"]/1000:>9.2f} {r["errors"]:>6}  {r["ratio"]}')
if metrics:
    hdr = f'{"metric":<10} {"target":<34} {"value":>12}  note'
    print(); print(hdr); print("-" * len(hdr))
    for m in metrics:
        note = m.get("note") or ""
        if m["metric"] == "dev-ready":
            note = f'median of {m["samples"]} starts (min {m["min"]:.1f}, max {m["max"]:.1f} ms)'
        elif m["metric"] == "idle-rss":
            note = f'after {m["requests"]} requests and {m["idle_s"]} s idle (peak {m["peak_mib"]:.1f} MiB)'
        print(f'{m["metric"]:<10} {m["target"]:<34} {m["value"]:>9.1f} {m["unit"]:<3} {note}')
json.dump(table + metrics, open(os.path.join(out, "results.json"), "w"), indent=2)
print(f"\nwritten: {os.path.join(out, 'results.json')}")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    table = [r for r in table if r["scenario"] != "sm-list"]
    labels = [f'{r["scenario"]}\n{r["connections"]}c\n{r["target"]}' for r in table]
    fig, ax = plt.subplots(figsize=(max(6, len(table) * 0.9), 4))
    ax.bar(range(len(table)), [r["rps"] for r in table])
    ax.set_xticks(range(len(table)), labels, fontsize=7)
    ax.set_ylabel("requests/s")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "results.png"), dpi=120)
    print(f'written: {os.path.join(out, "results.png")}')
except ImportError:
    print("(matplotlib not available: no chart)")
PY
exit $status
