#!/usr/bin/env bash
# The demo province: brings the stack up, starts the ledger, sets up Guizhou's province centre
# and two city centres over gRPC, streams signed credit notices from three simulated banks
# (SM2/SM3 and Ed25519 signers) with a realistic mix of clean and bad cases, prints what the
# ledger made of them; then announces awards, lets the ledger order refunds with interest and the
# simulated banks pay (a few fail), prints the refunds, and ends with the verification command
# (last line: `verify: ok`).
#
#   ./scripts/demo.sh                      # 3,000 notices at 1,000/s
#   DEMO_COUNT=20000 DEMO_RATE=5000 ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

./scripts/stack.sh up
echo "[demo] building the ledger and the bank simulator"
cargo build -q --bins

DEMO_DIR="$STACK_DIR/demo"
mkdir -p "$DEMO_DIR"
# Demo bank keys, generated once and kept. Real banks keep their private keys in their HSMs and
# give the platform only the public half.
if [ ! -f "$DEMO_DIR/keys.env" ]; then
  {
    read -r _ priv pub < <(target/debug/bank-sim keygen --scheme sm2-sm3); echo "ICBC_PRIVATE=$priv ICBC_PUBLIC=$pub"
    read -r _ priv pub < <(target/debug/bank-sim keygen --scheme ed25519); echo "CCB_PRIVATE=$priv CCB_PUBLIC=$pub"
    read -r _ priv pub < <(target/debug/bank-sim keygen --scheme sm2-sm3); echo "BOC_PRIVATE=$priv BOC_PUBLIC=$pub"
  } >"$DEMO_DIR/keys.env"
fi
source "$DEMO_DIR/keys.env"
export JINFU_BANKS__ICBC_GY__SCHEME=sm2-sm3 JINFU_BANKS__ICBC_GY__PUBLIC_KEY="$ICBC_PUBLIC"
export JINFU_BANKS__CCB_ZY__SCHEME=ed25519 JINFU_BANKS__CCB_ZY__PUBLIC_KEY="$CCB_PUBLIC"
export JINFU_BANKS__BOC_GZ__SCHEME=sm2-sm3 JINFU_BANKS__BOC_GZ__PUBLIC_KEY="$BOC_PUBLIC"
# The platform's payment-order signing key (demo only; production keeps it in a Secret/HSM).
if [ ! -f "$DEMO_DIR/platform.env" ]; then
  read -r _ priv pub < <(target/debug/bank-sim keygen --scheme sm2-sm3); echo "PLATFORM_PRIVATE=$priv PLATFORM_PUBLIC=$pub" >"$DEMO_DIR/platform.env"
fi
source "$DEMO_DIR/platform.env"
export JINFU_REFUNDS__SIGNING__SCHEME=sm2-sm3 JINFU_REFUNDS__SIGNING__PRIVATE_KEY="$PLATFORM_PRIVATE" JINFU_REFUNDS__SIGNING__KEY_REF=jinfu_demo
export JINFU_REFUNDS__POLL_MS=200
export JINFU_GRPC__LISTEN="127.0.0.1:${DEMO_GRPC_PORT:-50051}"
export JINFU_METRICS__LISTEN="127.0.0.1:${DEMO_METRICS_PORT:-9090}"
export JINFU_INGEST__INSTANCE_ID="ledger-demo-0"
# One ledger process: it reads every partition itself, resuming from the offsets in PostgreSQL.
export JINFU_INGEST__ASSIGNMENT=manual

echo "[demo] starting the ledger on $JINFU_GRPC__LISTEN, metrics on http://$JINFU_METRICS__LISTEN/metrics (log: $DEMO_DIR/ledger.log)"
target/debug/ledger serve >"$DEMO_DIR/ledger.log" 2>&1 &
LEDGER_PID=$!
stop_ledger() { kill "$LEDGER_PID" 2>/dev/null && wait "$LEDGER_PID" 2>/dev/null || true; }
trap stop_ledger EXIT
for _ in $(seq 1 120); do
  (exec 3<>"/dev/tcp/127.0.0.1/${DEMO_GRPC_PORT:-50051}") 2>/dev/null && break
  kill -0 "$LEDGER_PID" 2>/dev/null || { echo "[demo] the ledger exited:"; tail -20 "$DEMO_DIR/ledger.log"; exit 1; }
  sleep 0.5
done

target/debug/bank-sim demo \
  --ledger-url "http://$JINFU_GRPC__LISTEN" \
  --bank "ICBC:2402001029200012345:520100:icbc_gy:sm2-sm3:$ICBC_PRIVATE" \
  --bank "CCB:52050110360800000123:520300:ccb_zy:ed25519:$CCB_PRIVATE" \
  --bank "BOC:133600000000012345:520000:boc_gz:sm2-sm3:$BOC_PRIVATE" \
  --count "${DEMO_COUNT:-3000}" --rate "${DEMO_RATE:-1000}"

echo
echo "[demo] stopping the ledger gracefully, then verifying every invariant"
stop_ledger
trap - EXIT
target/debug/ledger verify
