#!/usr/bin/env bash
# The credit benchmark: is CheckEligibility fast enough to sit on every application path?
#
#   ./scripts/bench-credit.sh                        # 1,000,000 records, 2,000 checks/s for 30 s
#   ./scripts/bench-credit.sh --records 200000 --rate 1000 --seconds 20
#
# 1. Brings the stack up, builds release binaries, makes a fresh database (jinfu_bench_credit).
# 2. Starts the credit service (its migrations run), then loads RECORDS records straight into
#    its tables: RECORDS / 5 subjects with 5 records each, of every behaviour, in the province and
#    its cities, their bans spread over the last six years (some hold now, most have expired).
# 3. Asks CheckEligibility over gRPC from CLIENTS concurrent connections at RATE checks a second
#    for SECONDS, half about subjects with records and half about subjects without any; prints
#    p50 and p99 of each call's latency, measured by the client.
# Last line: credit_checks_p99_ms=<number>.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

RECORDS=1000000
RATE=2000
SECONDS_=30
CLIENTS=32
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --seconds) SECONDS_="$2"; shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    *) echo "unknown argument $1 (see the header of $0)"; exit 2 ;;
  esac
done
SUBJECTS=$((RECORDS / 5))

./scripts/stack.sh up
echo "[bench] building release binaries"
cargo build -q --release --locked --bin credit --bin bank-sim
BIN="$PWD/target/release"
BENCH_DIR="$STACK_DIR/bench-credit"
mkdir -p "$BENCH_DIR"
ADMIN_URL="$JINFU_DATABASE__URL"
export JINFU_DATABASE__URL="${ADMIN_URL%/*}/jinfu_bench_credit"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS jinfu_bench_credit WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE jinfu_bench_credit" >/dev/null
export JINFU_KAFKA__TOPIC_PREFIX="benchcredit$(date +%s)."
read -r _ CREDIT_PRIVATE _ < <("$BIN/bank-sim" keygen --scheme ed25519)
export JINFU_SIGNING__KEY_REF=credit_bench JINFU_SIGNING__SCHEME=ed25519 JINFU_SIGNING__PRIVATE_KEY="$CREDIT_PRIVATE"
export JINFU_GRPC__LISTEN="127.0.0.1:50081" JINFU_METRICS__LISTEN="127.0.0.1:9181" RUST_LOG="${RUST_LOG:-warn}"

"$BIN/credit" serve >"$BENCH_DIR/credit.log" 2>&1 &
CREDIT_PID=$!
trap 'kill "$CREDIT_PID" 2>/dev/null || true' EXIT
for attempt in $(seq 1 120); do
  "$BIN/credit" health --endpoint "http://$JINFU_GRPC__LISTEN" >/dev/null 2>&1 && break
  kill -0 "$CREDIT_PID" 2>/dev/null || { echo "[bench] the credit service exited:"; tail -20 "$BENCH_DIR/credit.log"; exit 1; }
  [ "$attempt" -lt 120 ] || { echo "[bench] the credit service did not become ready"; exit 1; }
  sleep 0.5
done

echo "[bench] loading $RECORDS records for $SUBJECTS subjects"
started=$(date +%s)
"$BIN/bank-sim" bench-credit --subjects "$SUBJECTS" --write-subjects >"$BENCH_DIR/subjects.csv"
psql "$JINFU_DATABASE__URL" -q <<SQL
SET search_path = credit;
CREATE TEMP TABLE subjects (i bigint, uscc text);
\copy subjects FROM '$BENCH_DIR/subjects.csv' WITH (FORMAT csv)
INSERT INTO records (record_id, centre_id, subject_uscc, behaviour, kind, legal_basis, authority, decided_on, evidence_refs, fine_fen,
                     debarred_from, debarred_until, province_wide, regime, listed_at, proposal_id, confirmed_by)
SELECT gen_random_uuid()::text,
       (ARRAY['520000', '520100', '520300'])[1 + (s.i + g) % 3],
       s.uscc,
       (ARRAY['false_materials', 'collusion', 'bribery', 'refusing_to_sign', 'non_performance'])[g],
       'blacklist', '政府采购法 art. 77', '贵州省财政厅', (now() - ((s.i % 2000) + g * 300) * interval '1 day')::date, ARRAY['bench'], 0,
       now() - ((s.i % 2000) + g * 300) * interval '1 day',
       now() - ((s.i % 2000) + g * 300) * interval '1 day' + interval '1 year',
       (s.i + g) % 3 = 0, NULL, now(), 'bench-' || s.i || '-' || g, 'bench'
FROM subjects s CROSS JOIN generate_series(1, 5) AS g;
ANALYZE records;
SQL
echo "[bench] loaded in $(( $(date +%s) - started )) s: $(psql "$JINFU_DATABASE__URL" -tAc "SELECT count(*) FROM credit.records") records"

echo "[bench] $RATE checks/s for $SECONDS_ s from $CLIENTS clients"
"$BIN/bank-sim" bench-credit --url "http://$JINFU_GRPC__LISTEN" --subjects "$SUBJECTS" --rate "$RATE" --seconds "$SECONDS_" --clients "$CLIENTS"
