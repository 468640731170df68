#!/usr/bin/env bash
# The ingestion benchmark (docs/performance.md explains the figures and where the time goes).
#
#   ./scripts/bench-ingest.sh                      # 1,000,000 notices, then 2,000/s for 60 s
#   ./scripts/bench-ingest.sh --count 200000 --steady-rate 2000 --steady-seconds 30
#
# 1. Brings the stack up (the durable sqlite broker the tests use), builds release binaries, and
#    makes a fresh database (jinfu_bench) and fresh topics (prefix bench<time>.).
# 2. Starts the ledger, sets up a province with one sub-account per notice to come, stops it.
# 3. Pre-produces COUNT signed notices (about 90% clean; short, over, unknown sub-account,
#    wrong payer, late, redelivered duplicates, bad signatures).
# 4. Measures the broker's own limit: a consumer of the same records that does nothing else.
# 5. Starts the ledger and measures until its stored offsets reach the end of the topic
#    (consumer lag zero); records its peak RSS.
# 6. Once the outbox relay has published the drain's events: steady load, STEADY_RATE
#    notices/s for STEADY_SECONDS with the ledger running; p50 and p99 of produce-to-posted
#    latency (Kafka record timestamp to the notice row's posted_at).
# 7. Rebuilds every bank's end-of-day statement from both streams (the hot account's has about
#    1,000,000 lines), sends it to bank.statements and times its reconciliation.
# 8. Stops the ledger gracefully and runs `ledger verify` (must pass).
# Last line: notices_per_second=<integer>.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

COUNT=1000000
STEADY_RATE=2000
STEADY_SECONDS=60
# sqlite: the durable broker configuration the tests use (default). memory: a second tansu on
# port 9093 keeping everything in memory (not durable), to measure the ledger past what the
# sqlite broker can serve (docs/performance.md).
BROKER=sqlite
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT="$2"; shift 2 ;;
    --steady-rate) STEADY_RATE="$2"; shift 2 ;;
    --steady-seconds) STEADY_SECONDS="$2"; shift 2 ;;
    --broker) BROKER="$2"; shift 2 ;;
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
cargo build -q --release --bins --locked
BIN="$PWD/target/release"
BENCH_DIR="$STACK_DIR/bench"
mkdir -p "$BENCH_DIR"

RUN="bench$(date +%s)"
export JINFU_KAFKA__TOPIC_PREFIX="$RUN."
ADMIN_URL="$JINFU_DATABASE__URL"
export JINFU_DATABASE__URL="${ADMIN_URL%/*}/jinfu_bench"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS jinfu_bench WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE jinfu_bench" >/dev/null
SQL() { psql "$JINFU_DATABASE__URL" -tAc "SET search_path = ledger; $1" | tail -n 1; }

# Bank keys: an Ed25519 bank holding the hot collection account (95% of notices, see
# docs/performance.md for why) and two SM2/SM3 banks sharing the rest.
if [ ! -f "$BENCH_DIR/keys.env" ]; then
  {
    read -r _ priv pub < <("$BIN/bank-sim" keygen --scheme sm2-sm3); echo "ICBC_PRIVATE=$priv ICBC_PUBLIC=$pub"
    read -r _ priv pub < <("$BIN/bank-sim" keygen --scheme ed25519); echo "CCB_PRIVATE=$priv CCB_PUBLIC=$pub"
    read -r _ priv pub < <("$BIN/bank-sim" keygen --scheme sm2-sm3); echo "BOC_PRIVATE=$priv BOC_PUBLIC=$pub"
  } >"$BENCH_DIR/keys.env"
fi
source "$BENCH_DIR/keys.env"
export JINFU_BANKS__ICBC_GY__SCHEME=sm2-sm3 JINFU_BANKS__ICBC_GY__PUBLIC_KEY="$ICBC_PUBLIC"
export JINFU_BANKS__CCB_ZY__SCHEME=ed25519 JINFU_BANKS__CCB_ZY__PUBLIC_KEY="$CCB_PUBLIC"
export JINFU_BANKS__BOC_GZ__SCHEME=sm2-sm3 JINFU_BANKS__BOC_GZ__PUBLIC_KEY="$BOC_PUBLIC"
BANKS=(
  --bank "CCB:52050110360800000123:520300:ccb_zy:ed25519:$CCB_PRIVATE"
  --bank "ICBC:2402001029200012345:520100:icbc_gy:sm2-sm3:$ICBC_PRIVATE"
  --bank "BOC:133600000000012345:520000:boc_gz:sm2-sm3:$BOC_PRIVATE"
)
# The ledger's own event-signing key (required; its outbox relay signs what it publishes).
read -r _ LEDGER_EVENTS_PRIVATE _ < <("$BIN/bank-sim" keygen --scheme ed25519)
export JINFU_SIGNING__KEY_REF=ledger_bench JINFU_SIGNING__SCHEME=ed25519 JINFU_SIGNING__PRIVATE_KEY="$LEDGER_EVENTS_PRIVATE"
export JINFU_GRPC__LISTEN="127.0.0.1:50071"
export JINFU_METRICS__LISTEN="127.0.0.1:9171"
export JINFU_INGEST__INSTANCE_ID="ledger-bench-0"
export JINFU_INGEST__ASSIGNMENT=manual
export RUST_LOG="${RUST_LOG:-warn}"

LEDGER_PID=""
start_ledger() {
  "$BIN/ledger" serve >>"$BENCH_DIR/ledger.log" 2>&1 &
  LEDGER_PID=$!
  for _ in $(seq 1 120); do
    (exec 3<>"/dev/tcp/127.0.0.1/50071") 2>/dev/null && return 0
    kill -0 "$LEDGER_PID" 2>/dev/null || { echo "[bench] the ledger exited:"; tail -20 "$BENCH_DIR/ledger.log"; exit 1; }
    sleep 0.2
  done
  echo "[bench] the ledger did not start"; exit 1
}
stop_ledger() { [ -n "$LEDGER_PID" ] && kill "$LEDGER_PID" 2>/dev/null && wait "$LEDGER_PID" 2>/dev/null || true; LEDGER_PID=""; }
cleanup() { stop_ledger; [ -n "$MEMORY_BROKER_PID" ] && kill "$MEMORY_BROKER_PID" 2>/dev/null || true; }
trap cleanup EXIT
: >"$BENCH_DIR/ledger.log"

TOPIC="${RUN}.bank.credit-notices"
applied() { SQL "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE consumer_group = 'ledger' AND topic = '$TOPIC'"; }
# Waits until the ledger's stored offsets reach $1 records, printing progress; prints seconds.
wait_drained() {
  local target="$1" started now done_count
  started=$(date +%s.%N)
  while :; do
    done_count=$(applied)
    now=$(date +%s.%N)
    if [ "$done_count" -ge "$target" ]; then
      echo "[bench]   lag 0: $done_count records applied" >&2
      echo "$now - $started" | bc -l
      return 0
    fi
    kill -0 "$LEDGER_PID" 2>/dev/null || { echo "[bench] the ledger exited:" >&2; tail -20 "$BENCH_DIR/ledger.log" >&2; exit 1; }
    printf '[bench]   %s s: %s of %s records applied, lag %s\n' "$(printf '%.0f' "$(echo "$now - $started" | bc -l)")" "$done_count" "$target" $((target - done_count)) >&2
    sleep 2
  done
}

echo "[bench] 1/7 setting up the province ($((COUNT + STEADY_RATE * STEADY_SECONDS)) sub-accounts)"
"$BIN/ledger" create-topics >/dev/null
start_ledger
"$BIN/bank-sim" bench-setup --ledger-url "http://$JINFU_GRPC__LISTEN" "${BANKS[@]}" \
  --sub-accounts $((COUNT + STEADY_RATE * STEADY_SECONDS)) --plan "$BENCH_DIR/plan.json"
stop_ledger

echo "[bench] 2/7 pre-producing $COUNT signed notices to $TOPIC"
"$BIN/bank-sim" bench-produce "${BANKS[@]}" --plan "$BENCH_DIR/plan.json" --count "$COUNT" --tag B | tee "$BENCH_DIR/produce.log"
PRODUCED=$(grep -o '^produced=[0-9]*' "$BENCH_DIR/produce.log" | cut -d= -f2)

echo "[bench] 3/7 the broker's own limit (a consumer that does nothing else)"
BROKER_RATE=$("$BIN/bank-sim" bench-consume | tee /dev/stderr | grep -o '^broker_records_per_second=[0-9]*' | cut -d= -f2)

echo "[bench] 4/7 draining $PRODUCED records with the ledger"
LEDGER_STARTED=$(date +%s.%N)
start_ledger
wait_drained "$PRODUCED" >/dev/null
DRAIN_SECONDS=$(echo "$(date +%s.%N) - $LEDGER_STARTED" | bc -l)
DRAIN_RATE=$(printf '%.0f' "$(echo "$PRODUCED / $DRAIN_SECONDS" | bc -l)")
# The relay publishes the drain's events (one per notice) behind the drain; steady load is
# measured once it has caught up, i.e. in a steady state.
RELAY_STARTED=$(date +%s.%N)
until [ "$(SQL "SELECT count(*) FROM outbox WHERE published_at IS NULL")" -eq 0 ]; do
  kill -0 "$LEDGER_PID" 2>/dev/null || { echo "[bench] the ledger exited:"; tail -20 "$BENCH_DIR/ledger.log"; exit 1; }
  sleep 0.5
done
RELAY_SECONDS=$(printf '%.1f' "$(echo "$(date +%s.%N) - $RELAY_STARTED" | bc -l)")
echo "[bench]   the outbox relay published the drain's last events $RELAY_SECONDS s after lag 0"

echo "[bench] 5/7 steady load: $STEADY_RATE notices/s for $STEADY_SECONDS s"
STEADY_COUNT=$((STEADY_RATE * STEADY_SECONDS))
"$BIN/bank-sim" bench-produce "${BANKS[@]}" --plan "$BENCH_DIR/plan.json" --count "$STEADY_COUNT" \
  --rate "$STEADY_RATE" --bidder-offset "$COUNT" --tag S --seed 7 | tee "$BENCH_DIR/steady.log" | grep -v '^\[bench\]   '
wait_drained $((PRODUCED + STEADY_COUNT)) >/dev/null
LATENCY=$(SQL "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM posted_at - produced_at)))::int || ' ' ||
                      round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM posted_at - produced_at)))::int || ' ' ||
                      count(*)
               FROM credit_notices WHERE bank_serial LIKE '%-S-%'")
read -r P50 P99 STEADY_POSTED <<<"$LATENCY"
PEAK_RSS_KB=$(awk '/^VmHWM/ { print $2 }' "/proc/$LEDGER_PID/status")

echo "[bench] 6/7 end-of-day statements of every bank (rebuilt from both streams), reconciled by the running ledger"
"$BIN/bank-sim" bench-statement "${BANKS[@]}" --plan "$BENCH_DIR/plan.json" \
  --stream "B:0:$COUNT:20261122" --stream "S:$COUNT:$STEADY_COUNT:7" | tee "$BENCH_DIR/statement.log"
STATEMENTS=$(grep -c '^statement=' "$BENCH_DIR/statement.log")
for _ in $(seq 1 600); do
  [ "$(SQL "SELECT count(*) FROM reconciliation_reports")" -ge "$STATEMENTS" ] && break
  kill -0 "$LEDGER_PID" 2>/dev/null || { echo "[bench] the ledger exited:"; tail -20 "$BENCH_DIR/ledger.log"; exit 1; }
  sleep 1
done
RECONCILIATION=$(psql "$JINFU_DATABASE__URL" -tA -F ' ' -c "SET search_path = ledger;
  SELECT statement_id, line_count, status, late_notified, discrepancies, reconcile_ms,
         round(extract(epoch FROM reconciled_at - first_part_at)::numeric, 1),
         bank_closing_fen = ledger_closing_fen
  FROM reconciliation_reports ORDER BY line_count DESC" | sed '/^SET$/d')
[ "$(echo "$RECONCILIATION" | grep -c .)" -ge "$STATEMENTS" ] || { echo "[bench] not every statement was reconciled"; exit 1; }
read -r _ BIG_LINES _ _ _ BIG_MS BIG_SECONDS _ <<<"$(echo "$RECONCILIATION" | head -1)"

echo "[bench] 7/7 stopping the ledger and verifying every invariant"
stop_ledger
"$BIN/ledger" verify | tail -n 2

cat <<EOF

ingestion benchmark ($BROKER broker), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
  records pre-produced                 $PRODUCED
  broker limit (read, nothing else)    $BROKER_RATE records/s
  ledger drain                         $DRAIN_RATE records/s in $(printf '%.1f' "$DRAIN_SECONDS") s ($(printf '%.1f' "$(echo "100 * $DRAIN_RATE / $BROKER_RATE" | bc -l)")% of the broker limit); events relayed $RELAY_SECONDS s later
  steady load                          $STEADY_RATE/s for $STEADY_SECONDS s: $STEADY_POSTED notices posted
  produce-to-posted latency (steady)   p50 ${P50} ms, p99 ${P99} ms
  ledger peak RSS                      $((PEAK_RSS_KB / 1024)) MB (drain and steady load)
  largest statement                    $BIG_LINES lines: $BIG_SECONDS s from first part received to report ($BIG_MS ms reconciling after the last part)
  reconciliation reports (id, lines, status, late-notified, discrepancies, ms, s, closing balances equal):
$(echo "$RECONCILIATION" | sed 's/^/    /')
notices_per_second=$DRAIN_RATE
EOF
