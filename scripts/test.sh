#!/usr/bin/env bash
# The whole test suite: formatting and clippy lints, unit and property tests, integration tests against a real PostgreSQL
# and a real Kafka-protocol broker (tansu), the crash test with real ledger processes, the
# operator against kube's mocked API, the Helm chart and manifests validated offline
# (scripts/check-chart.sh), and the demo as an end-to-end smoke test. Brings the stack up first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

./scripts/stack.sh up
# Every integration test makes its own database; drop those of earlier runs.
psql "$JINFU_TEST_DATABASE_URL" -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'jinfu\_test\_%'" 2>/dev/null |
  while read -r old; do psql "$JINFU_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$old\"" >/dev/null 2>&1 || true; done || true
echo "[test] Helm chart and Kubernetes manifests: lint, render, validate offline"
./scripts/check-chart.sh

echo "[test] format (rustfmt.toml) and lints (clippy with the workspace lints, warnings are errors)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "[test] building"
cargo build --workspace --bins --tests --locked
export JINFU_LEDGER_BIN="$PWD/target/debug/ledger"

echo "[test] end-to-end: the demo with a small stream"
# Ports below the kernel's ephemeral range (32768-60999 here): a listening port inside it can be
# taken by one of the services' own outgoing connections and fail with "Address already in use".
DEMO_COUNT=600 DEMO_RATE=600 DEMO_GRPC_PORT=25061 DEMO_METRICS_PORT=9161 DEMO_GUARANTEE_PORT=25062 DEMO_GUARANTEE_METRICS_PORT=9162 DEMO_CONTRACT_PORT=25063 DEMO_CONTRACT_METRICS_PORT=9163 DEMO_CREDIT_PORT=25064 DEMO_CREDIT_METRICS_PORT=9164 DEMO_NOTIFICATION_PORT=25065 DEMO_NOTIFICATION_METRICS_PORT=9165 DEMO_LOANS_PORT=25066 DEMO_LOANS_METRICS_PORT=9166 DEMO_GATEWAYS_PORT=8065 ./scripts/demo.sh >"$STACK_DIR/demo-test.log" 2>&1 || {
  tail -40 "$STACK_DIR/demo-test.log"; echo "[test] the demo failed"; exit 1; }
tail -n 1 "$STACK_DIR/demo-test.log" | grep -qx 'verify: ok' || { tail -40 "$STACK_DIR/demo-test.log"; exit 1; }
echo "[test] demo ended with: verify: ok"

echo "[test] unit, property, integration and crash tests"
status=0
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$STACK_DIR/cargo-test.log" || status=$?
# One closing line over every test binary (cargo prints one `test result:` line per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$STACK_DIR/cargo-test.log"
exit "$status"
