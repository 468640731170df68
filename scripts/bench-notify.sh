#!/usr/bin/env bash
# The notification benchmark: 100,000 ledger events into the notification service, with the
# simulated SMS gateway and webhook receiver on loopback and e-mail to the stack's SMTP sink.
#
#   ./scripts/bench-notify.sh                      # 100,000 events, 10,000 bidders
#   ./scripts/bench-notify.sh --events 20000 --bidders 2000
#   ./scripts/bench-notify.sh --events 30000 --rate 1000   # steady load: latency, not the drain
#   ./scripts/bench-notify.sh --broker sqlite      # through the stack's durable local broker
#
# --broker memory (default): a second tansu on 127.0.0.1:9093 keeping everything in memory, as
# scripts/bench-ingest.sh does: the stack's sqlite-backed tansu, sharing the two cores, takes
# most of a core by itself and is what limits a run through it (measured: 808 deliveries/s for
# 20,000 events through sqlite with tansu at ~70 % CPU, before the platform consumer batched),
# not the service.
#
# 1. Brings the stack up, builds release binaries, makes a fresh database (jinfu_bench_notify)
#    and fresh topics.
# 2. Starts the notification service (release) trusting a bench key as publisher `ledger`,
#    sending SMS and webhooks to the gateways the driver runs on 127.0.0.1:18025.
# 3. The driver (`bank-sim bench-notify`) registers the bidders' contacts (every one a phone,
#    one in five a webhook, one in ten an e-mail address), produces EVENTS signed (all at once,
#    or RATE a second with --rate)
#    `deposit.received` events (one section each) and waits until every delivery is observed:
#    every SMS and webhook at the gateways, inbox and e-mail by the service's counters.
# Prints deliveries per second (all channels, from the first event produced to the last
# delivery), p50/p99 from an event's production to its SMS at the gateway, and whether every
# delivery happened exactly once. Last line: deliveries_per_second=<integer>.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

EVENTS=100000
BIDDERS=10000
BROKER=memory
RATE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --broker) BROKER="$2"; shift 2 ;;
    --events) EVENTS="$2"; shift 2 ;;
    --bidders) BIDDERS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    *) echo "unknown argument $1 (see the header of $0)"; exit 2 ;;
  esac
done

./scripts/stack.sh up
MEMORY_BROKER_PID=""
if [ "$BROKER" = memory ]; then
  echo "[bench] starting an in-memory tansu on 127.0.0.1:9093 for this run"
  tansu broker --listener-url tcp://127.0.0.1:9093 --advertised-listener-url tcp://127.0.0.1:9093 \
    --storage-engine memory://tansu/ >"$STACK_DIR/tansu-memory.log" 2>&1 &
  MEMORY_BROKER_PID=$!
  export JINFU_KAFKA__BROKERS=127.0.0.1:9093
  for _ in $(seq 1 40); do (exec 3<>/dev/tcp/127.0.0.1/9093) 2>/dev/null && break; sleep 0.5; done
fi
echo "[bench] building release binaries"
cargo build -q --release --locked --bin notification --bin bank-sim
BIN="$PWD/target/release"
BENCH_DIR="$STACK_DIR/bench-notify"
mkdir -p "$BENCH_DIR"
ADMIN_URL="$JINFU_DATABASE__URL"
export JINFU_DATABASE__URL="${ADMIN_URL%/*}/jinfu_bench_notify"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS jinfu_bench_notify WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE jinfu_bench_notify" >/dev/null
export JINFU_KAFKA__TOPIC_PREFIX="benchnotify$(date +%s)."
read -r _ LEDGER_PRIVATE LEDGER_PUBLIC < <("$BIN/bank-sim" keygen --scheme ed25519)
read -r _ OWN_PRIVATE _ < <("$BIN/bank-sim" keygen --scheme ed25519)
export BENCH_LEDGER_PRIVATE_KEY="$LEDGER_PRIVATE"
export JINFU_SMS__ACCESS_KEY_SECRET="bench-sms-access-key-secret"
export BENCH_WEBHOOK_SECRET="whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtMjQtYnl0ZXMh"
export RUST_LOG="${RUST_LOG:-warn}"

JINFU_GRPC__LISTEN="127.0.0.1:50085" JINFU_METRICS__LISTEN="127.0.0.1:9185" \
  JINFU_CONSUMER__ASSIGNMENT=manual JINFU_CONSUMER__INSTANCE_ID="notification-bench-0" \
  JINFU_SIGNING__KEY_REF=notification_bench JINFU_SIGNING__SCHEME=ed25519 JINFU_SIGNING__PRIVATE_KEY="$OWN_PRIVATE" \
  JINFU_TRUSTED_PUBLISHERS__LEDGER__LEDGER_BENCH__SCHEME=ed25519 JINFU_TRUSTED_PUBLISHERS__LEDGER__LEDGER_BENCH__PUBLIC_KEY="$LEDGER_PUBLIC" \
  JINFU_SMTP__HOST=127.0.0.1 JINFU_SMTP__PORT="$SMTP_PORT" JINFU_SMTP__FROM="金服平台 <notice@jinfu.example.cn>" \
  JINFU_SMS__ENDPOINT="http://127.0.0.1:18025/sms/send" JINFU_SMS__SIGN_NAME="金服" JINFU_SMS__ACCESS_KEY_ID=bench \
  JINFU_QUIET_HOURS__START=00:00 JINFU_QUIET_HOURS__END=00:00 \
  "$BIN/notification" serve >"$BENCH_DIR/notification.log" 2>&1 &
SERVICE_PID=$!
trap 'kill "$SERVICE_PID" 2>/dev/null || true; [ -z "$MEMORY_BROKER_PID" ] || kill "$MEMORY_BROKER_PID" 2>/dev/null || true' EXIT
for attempt in $(seq 1 120); do
  "$BIN/notification" health --endpoint "http://127.0.0.1:50085" >/dev/null 2>&1 && break
  kill -0 "$SERVICE_PID" 2>/dev/null || { echo "[bench] the notification service exited:"; tail -20 "$BENCH_DIR/notification.log"; exit 1; }
  [ "$attempt" -lt 120 ] || { echo "[bench] the notification service did not become ready"; exit 1; }
  sleep 0.5
done
echo "[bench] broker: $BROKER ($JINFU_KAFKA__BROKERS); machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r)"
"$BIN/bank-sim" bench-notify --events "$EVENTS" --bidders "$BIDDERS" --rate "$RATE"
