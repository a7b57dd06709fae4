#!/usr/bin/env bash
# One command for Coffer's side-by-side benchmark (see ../shared/design/PERFORMANCE.md):
# builds release binaries; starts Coffer in production-like mode (durable redb storage,
# initialized and unsealed through `coffer operator`, SigV4 verified on every request), the
# bare-axum baseline (the HTTP ceiling) and moto_server (what developers run locally today);
# loads each with the same generator for the same time; stops everything it started by PID;
# prints one table and writes it as JSON under target/bench/.
#
# Environment: DURATION (s, default 10), WARMUP (s, default 2), CONNECTIONS (default "16 64"),
# SCENARIOS (default "sm-get sm-put"), PEERS (default "coffer coffer-audit baseline moto";
# coffer-audit is the same server with a file audit device, to measure what the audit costs).
# Exit status is non-zero only when a target's operations error, never because it is slow.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-16 64}"
SCENARIOS="${SCENARIOS:-sm-get sm-put}"
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
for scenario in $SCENARIOS; do
    for peer in $PEERS; do
        # The baseline answers a fixed body: it only makes sense as the ceiling for reads.
        if [ "$peer" = baseline ] && [ "$scenario" != sm-get ]; then continue; fi
        for conns in $CONNECTIONS; do
            common=(--endpoint "${ENDPOINT[$peer]}" --access-key "${AKID[$peer]}" --secret-key "${SECRET[$peer]}"
                    --scenario "$scenario" --connections "$conns")
            if [ "$peer" != baseline ]; then "$BIN/coffer-loadgen" "${common[@]}" --setup; fi
            echo "== $scenario on $peer with $conns connections (${DURATION}s after ${WARMUP}s warm-up)"
            line=$("$BIN/coffer-loadgen" "${common[@]}" --duration "$DURATION" --warmup "$WARMUP" --target "$peer")
            echo "$line" >>"$RESULTS"
            if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["errors"]==0 else 1)' "$line"; then :; else
                echo "   errors: $line" >&2; status=1
            fi
        done
    done
done

PY=python3
[ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"
"$PY" - "$RESULTS" "$OUT" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = sys.argv[2]
ceiling = {(r["scenario"], r["connections"]): r["rps"] for r in rows if r["target"] == "baseline"}
coffer = {(r["scenario"], r["connections"]): r["rps"] for r in rows if r["target"] == "coffer"}
table = []
for r in rows:
    key = (r["scenario"], r["connections"])
    ratio = ""
    if r["target"] == "coffer" and key in ceiling:
        ratio = f'{r["rps"] / ceiling[key]:.0%} of ceiling'
    elif r["target"] == "coffer-audit" and key in coffer and coffer[key] > 0:
        ratio = f'{r["rps"] / coffer[key]:.0%} of coffer without audit'
    elif r["target"] not in ("coffer", "baseline") and key in coffer and r["rps"] > 0:
        ratio = f'coffer {coffer[key] / r["rps"]:.1f}x'
    table.append({**r, "ratio": ratio})
hdr = f'{"operation":<8} {"conns":>5} {"target":<12} {"req/s":>10} {"p50 ms":>8} {"p99 ms":>8} {"errors":>6}  ratio'
print(); print(hdr); print("-" * len(hdr))
for r in table:
    print(f'{r["scenario"]:<8} {r["connections"]:>5} {r["target"]:<12} {r["rps"]:>10.0f} {r["p50_us"]/1000:>8.2f} '
          f'{r["p99_us"]/1000:>8.2f} {r["errors"]:>6}  {r["ratio"]}')
json.dump(table, open(os.path.join(out, "results.json"), "w"), indent=2)
print(f"\nwritten: {os.path.join(out, 'results.json')}")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
