#!/usr/bin/env bash
# Runs every Coffer test, installing what the tests need:
#   1. Rust: unit tests of every crate, and integration tests that start the real `coffer`
#      binary and drive it with the AWS SDK for Rust (cargo test --workspace);
#   2. every fuzz target for a bounded time (scripts/fuzz.sh, docs/reliability.md);
#   3. Python: the aws CLI and boto3 against the real binary, from a venv this script creates;
#   4. moto's Secrets Manager, Parameter Store and KMS test suites in server mode against Coffer
#      (scripts/conformance.sh).
# Environment: CARGO_TARGET_DIR (default ./target), VENV_DIR (default ./.venv),
# FUZZ_SECONDS (default 60) for step 2, SKIP_CONFORMANCE=1 to skip step 4 during development.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV_DIR="${VENV_DIR:-$ROOT/.venv}"

section() { printf '\n==== %s ====\n' "$*"; }

section "Rust tests (unit + integration against the real binary)"
cargo test --workspace --locked

section "Fuzzing (bounded: FUZZ_SECONDS=${FUZZ_SECONDS:-60})"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" scripts/fuzz.sh

section "Python venv: aws CLI, boto3, pytest"
cargo build -p coffer --locked
# The README's first command is `cargo run --release -- server --dev`: `cargo run` must pick
# the server binary on its own.
cargo run --locked --quiet -- --version
if [ ! -x "$VENV_DIR/bin/python" ]; then
    python3 -m venv "$VENV_DIR"
fi
"$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

section "Python tests (aws CLI + boto3 against the real binary)"
COFFER_BIN="$CARGO_TARGET_DIR/debug/coffer" PATH="$VENV_DIR/bin:$PATH" \
    "$VENV_DIR/bin/python" -m pytest -q -p no:cacheprovider tests/python

if [ "${SKIP_CONFORMANCE:-0}" != "1" ]; then
    section "moto conformance (server mode)"
    COFFER_BIN="$CARGO_TARGET_DIR/debug/coffer" scripts/conformance.sh --service secretsmanager
    COFFER_BIN="$CARGO_TARGET_DIR/debug/coffer" scripts/conformance.sh --service ssm
    COFFER_BIN="$CARGO_TARGET_DIR/debug/coffer" scripts/conformance.sh --service kms
fi
