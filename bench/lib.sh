# Shared by run.sh and instructions.sh (sourced, not run): a scratch directory, the servers
# started and stopped by PID, and a production-like Coffer (durable redb storage, initialized
# and unsealed through the operator CLI, SigV4 verified on every request).
#
# Needs COFFER (the coffer binary) and, for make_bench_user, LOADGEN (coffer-loadgen). LAUNCH (an array, empty by default) goes before the binary,
# e.g. (valgrind --tool=callgrind); PORT_TRIES (default 200, 50 ms apart) bounds the wait for
# the port.

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 "${PORT_TRIES:-200}"); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "port $1 never opened" >&2; return 1
}
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

declare -A ENDPOINT AKID SECRET SETUP_AKID SETUP_SECRET SERVER_PID ROOT_TOKEN UNSEAL_KEY
# start_coffer NAME [AUDIT]: a production-like Coffer, with a file audit device when AUDIT is
# set. Sets ENDPOINT, AKID, SECRET, SERVER_PID, ROOT_TOKEN and UNSEAL_KEY for NAME.
start_coffer() {
    local name=$1 audit=${2:-} port init key
    port=$(free_port)
    cat >"$WORK/$name.toml" <<TOML
[listener]
address = "127.0.0.1:$port"
dangerous_plaintext_http = true
[storage]
path = "$WORK/$name.redb"
TOML
    if [ -n "$audit" ]; then
        printf '[[audit]]\ntype = "file"\npath = "%s"\n' "$WORK/$name-audit.log" >>"$WORK/$name.toml"
    fi
    "${LAUNCH[@]}" "$COFFER" server --config "$WORK/$name.toml" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER_PID[$name]=$!
    PIDS+=($!)
    wait_port "$port"
    init=$("$COFFER" operator init --address "http://127.0.0.1:$port" --shares 1 --threshold 1 --json)
    key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["keys_base64"][0])' "$init")
    "$COFFER" operator unseal --address "http://127.0.0.1:$port" "$key" >/dev/null
    ENDPOINT[$name]="http://127.0.0.1:$port"
    UNSEAL_KEY[$name]=$key
    ROOT_TOKEN[$name]=$(json_field "$init" root_token)
    AKID[$name]=$(json_field "$init" root_access_key_id)
    SECRET[$name]=$(json_field "$init" root_secret_access_key)
}

# make_bench_user NAME: on Coffer NAME, an IAM user allowed what the scenarios do on bench/*
# only (coffer-loadgen --setup-user); its key becomes AKID/SECRET, so every measured request
# has its policy evaluated, and the root key stays SETUP_AKID/SETUP_SECRET for the setup.
make_bench_user() {
    local name=$1 key
    SETUP_AKID[$name]=${AKID[$name]}; SETUP_SECRET[$name]=${SECRET[$name]}
    key=$("$LOADGEN" --endpoint "${ENDPOINT[$name]}" --access-key "${AKID[$name]}" \
          --secret-key "${SECRET[$name]}" --setup-user bench-app)
    AKID[$name]=$(json_field "$key" access_key_id)
    SECRET[$name]=$(json_field "$key" secret_access_key)
}
