#!/usr/bin/env bash
# The demo province: brings the stack up, starts the ledger and the e-guarantee service, sets up
# Guizhou's province centre and two city centres over gRPC, onboards three guarantee issuers (a
# bank, an insurer, a guarantee company) with one bid product each; about 30 % of the bidders buy
# a bid guarantee (电子保函) instead of paying cash, the issuers issue them signed (a forged
# issuance is refused), and the rest pay: signed credit notices from three simulated banks
# (SM2/SM3 and Ed25519 signers) with a realistic mix of clean and bad cases. Prints what the
# ledger made of them; shows the guarantees sealed until bid opening, opens the bids, and prints
# deposits and guarantees side by side per centre; then announces awards, lets the ledger order
# refunds with interest and the simulated banks pay (a few fail), prints the refunds; then the
# contract service takes the awarded sections through simulated weeks (signed — some late —,
# published, invoiced, a few invoices objected to, most paid on time, some late, some not) and
# prints one line with three overdue-interest examples worked day run by day run — meanwhile two
# lenders finance some of those contracts through the loans service (the collection account
# locked to the lender, the purchasers' payments repaying the loans, one loan defaulting and
# proposed to the credit service: one `loans:` line); then the notification service tells every party concerned by e-mail (an SMTP sink), SMS and webhook
# (simulated gateways) and in-app, and the demo prints its summary and one message of each kind;
# ends with the verification command (last line: `verify: ok`).
#
#   ./scripts/demo.sh                      # 3,000 notices at 1,000/s
#   DEMO_COUNT=20000 DEMO_RATE=5000 ./scripts/demo.sh
#
# Ports (override them to run a second demo beside another): DEMO_GRPC_PORT (ledger, 50051),
# DEMO_METRICS_PORT (ledger metrics, 9090), DEMO_GUARANTEE_PORT (guarantee service, 50052),
# DEMO_GUARANTEE_METRICS_PORT (guarantee metrics, 9190; not 9092, the broker's port),
# DEMO_CONTRACT_PORT (contract service, 50053), DEMO_CONTRACT_METRICS_PORT (its metrics, 9191),
# DEMO_CREDIT_PORT (credit service, 50054), DEMO_CREDIT_METRICS_PORT (its metrics, 9192),
# DEMO_NOTIFICATION_PORT (notification service, 50055), DEMO_NOTIFICATION_METRICS_PORT (its
# metrics, 9193), DEMO_LOANS_PORT (loans service, 50056), DEMO_LOANS_METRICS_PORT (its metrics,
# 9194), DEMO_GATEWAYS_PORT (simulated SMS gateway and webhook receiver, 8025).
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
# The guarantee issuers' signing keys (demo only; real issuers keep theirs and register the
# public half), kept like the banks' so guarantees of earlier runs still verify.
if [ ! -f "$DEMO_DIR/issuers.env" ]; then
  {
    read -r _ priv _ < <(target/debug/bank-sim keygen --scheme sm2-sm3); echo "CCBG_PRIVATE=$priv"
    read -r _ priv _ < <(target/debug/bank-sim keygen --scheme ed25519); echo "PICC_PRIVATE=$priv"
    read -r _ priv _ < <(target/debug/bank-sim keygen --scheme sm2-sm3); echo "GZDB_PRIVATE=$priv"
  } >"$DEMO_DIR/issuers.env"
fi
source "$DEMO_DIR/issuers.env"
# The key that seals bidders' guarantee data until bid opening: 64 hex digits (AES-256). A fixed
# key kept with the demo's data (a new one would make earlier runs' sealed rows unreadable).
if [ ! -f "$DEMO_DIR/sealing.env" ]; then
  if command -v openssl >/dev/null; then key=$(openssl rand -hex 32); else key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n'); fi
  echo "SEALING_KEY=$key" >"$DEMO_DIR/sealing.env"
fi
source "$DEMO_DIR/sealing.env"
# The services' own event-signing keys (DESIGN.md §7): each outbox relay signs what it publishes;
# the ledger trusts the guarantee service's public key for guarantee.events. Ed25519, kept like
# the others (production: a Kubernetes Secret per service; see docs/kubernetes.md).
if [ ! -f "$DEMO_DIR/services.env" ]; then
  {
    read -r _ priv pub < <(target/debug/bank-sim keygen --scheme ed25519); echo "LEDGER_EVENTS_PRIVATE=$priv LEDGER_EVENTS_PUBLIC=$pub"
    read -r _ priv pub < <(target/debug/bank-sim keygen --scheme ed25519); echo "GUARANTEE_EVENTS_PRIVATE=$priv GUARANTEE_EVENTS_PUBLIC=$pub"
  } >"$DEMO_DIR/services.env"
fi
source "$DEMO_DIR/services.env"
# The contract service's event-signing key: the ledger and the guarantee service trust it for
# contract.events (publisher `contract`).
if [ ! -f "$DEMO_DIR/contract.env" ]; then
  read -r _ priv pub < <(target/debug/bank-sim keygen --scheme ed25519); echo "CONTRACT_EVENTS_PRIVATE=$priv CONTRACT_EVENTS_PUBLIC=$pub" >"$DEMO_DIR/contract.env"
fi
source "$DEMO_DIR/contract.env"
# The credit service's key: signs credit.events and eligibility receipts.
if [ ! -f "$DEMO_DIR/credit.env" ]; then
  read -r _ priv pub < <(target/debug/bank-sim keygen --scheme ed25519); echo "CREDIT_EVENTS_PRIVATE=$priv CREDIT_EVENTS_PUBLIC=$pub" >"$DEMO_DIR/credit.env"
fi
source "$DEMO_DIR/credit.env"
# The loans service's key: signs loan.events.
if ! grep -qs LOANS_EVENTS_PUBLIC "$DEMO_DIR/loans.env"; then
  read -r _ priv pub < <(target/debug/bank-sim keygen --scheme ed25519); echo "LOANS_EVENTS_PRIVATE=$priv LOANS_EVENTS_PUBLIC=$pub" >"$DEMO_DIR/loans.env"
fi
source "$DEMO_DIR/loans.env"
# The notification service's key: its outbox relay signs the dead letters it publishes.
if [ ! -f "$DEMO_DIR/notification.env" ]; then
  read -r _ priv pub < <(target/debug/bank-sim keygen --scheme ed25519); echo "NOTIFICATION_EVENTS_PRIVATE=$priv" >"$DEMO_DIR/notification.env"
fi
source "$DEMO_DIR/notification.env"
export JINFU_TRUSTED_PUBLISHERS__CONTRACT__CONTRACT_DEMO__SCHEME=ed25519
export JINFU_TRUSTED_PUBLISHERS__CONTRACT__CONTRACT_DEMO__PUBLIC_KEY="$CONTRACT_EVENTS_PUBLIC"
export JINFU_SIGNING__KEY_REF=ledger_demo JINFU_SIGNING__SCHEME=ed25519 JINFU_SIGNING__PRIVATE_KEY="$LEDGER_EVENTS_PRIVATE"
export JINFU_TRUSTED_PUBLISHERS__GUARANTEE__GUARANTEE_DEMO__SCHEME=ed25519
export JINFU_TRUSTED_PUBLISHERS__GUARANTEE__GUARANTEE_DEMO__PUBLIC_KEY="$GUARANTEE_EVENTS_PUBLIC"
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
GUARANTEE_PID=
CONTRACT_PID=
CREDIT_PID=
NOTIFICATION_PID=
LOANS_PID=
GATEWAYS_PID=
stop_notification() { [ -z "$NOTIFICATION_PID" ] || { kill "$NOTIFICATION_PID" 2>/dev/null && wait "$NOTIFICATION_PID" 2>/dev/null || true; }; [ -z "$GATEWAYS_PID" ] || kill "$GATEWAYS_PID" 2>/dev/null || true; }
stop_ledger() { kill "$LEDGER_PID" 2>/dev/null && wait "$LEDGER_PID" 2>/dev/null || true; }
stop_guarantee() { [ -z "$GUARANTEE_PID" ] || { kill "$GUARANTEE_PID" 2>/dev/null && wait "$GUARANTEE_PID" 2>/dev/null || true; }; }
stop_contract() { [ -z "$CONTRACT_PID" ] || { kill "$CONTRACT_PID" 2>/dev/null && wait "$CONTRACT_PID" 2>/dev/null || true; }; }
stop_loans() { [ -z "$LOANS_PID" ] || { kill "$LOANS_PID" 2>/dev/null && wait "$LOANS_PID" 2>/dev/null || true; }; }
stop_credit() { [ -z "$CREDIT_PID" ] || { kill "$CREDIT_PID" 2>/dev/null && wait "$CREDIT_PID" 2>/dev/null || true; }; }
trap 'stop_notification; stop_loans; stop_contract; stop_guarantee; stop_credit; stop_ledger' EXIT
for _ in $(seq 1 120); do
  (exec 3<>"/dev/tcp/127.0.0.1/${DEMO_GRPC_PORT:-50051}") 2>/dev/null && break
  kill -0 "$LEDGER_PID" 2>/dev/null || { echo "[demo] the ledger exited:"; tail -20 "$DEMO_DIR/ledger.log"; exit 1; }
  sleep 0.5
done

# The credit service: debarments, with due process; the guarantee service asks it whether a
# bidder may take part before taking an application. It reads contract.events and ledger.events
# (verified with the contract service's and the ledger's keys): a supplier that did not sign, a
# purchaser that paid late and, once bids are opened, each bidder of a collusion lead become
# proposals.
CREDIT_LISTEN="127.0.0.1:${DEMO_CREDIT_PORT:-50054}"
CREDIT_METRICS="127.0.0.1:${DEMO_CREDIT_METRICS_PORT:-9192}"
echo "[demo] starting the credit service on $CREDIT_LISTEN, metrics on http://$CREDIT_METRICS/metrics (log: $DEMO_DIR/credit.log)"
JINFU_GRPC__LISTEN="$CREDIT_LISTEN" JINFU_METRICS__LISTEN="$CREDIT_METRICS" \
  JINFU_CONSUMER__ASSIGNMENT=manual JINFU_CONSUMER__INSTANCE_ID="credit-demo-0" \
  JINFU_TRUSTED_PUBLISHERS__LEDGER__LEDGER_DEMO__SCHEME=ed25519 JINFU_TRUSTED_PUBLISHERS__LEDGER__LEDGER_DEMO__PUBLIC_KEY="$LEDGER_EVENTS_PUBLIC" \
  JINFU_SIGNING__KEY_REF=credit_demo JINFU_SIGNING__PRIVATE_KEY="$CREDIT_EVENTS_PRIVATE" \
  target/debug/credit serve >"$DEMO_DIR/credit.log" 2>&1 &
CREDIT_PID=$!
for attempt in $(seq 1 120); do
  target/debug/credit health --endpoint "http://$CREDIT_LISTEN" >/dev/null 2>&1 && break
  kill -0 "$CREDIT_PID" 2>/dev/null || { echo "[demo] the credit service exited:"; tail -20 "$DEMO_DIR/credit.log"; exit 1; }
  [ "$attempt" -lt 120 ] || { echo "[demo] the credit service did not become ready:"; tail -20 "$DEMO_DIR/credit.log"; exit 1; }
  sleep 0.5
done

# The e-guarantee service beside the ledger: same database (its own schema) and broker; it asks
# the ledger about sections. Its own ports; one replica reading trading.events itself.
LEDGER_LISTEN="$JINFU_GRPC__LISTEN"
GUARANTEE_LISTEN="127.0.0.1:${DEMO_GUARANTEE_PORT:-50052}"
GUARANTEE_METRICS="127.0.0.1:${DEMO_GUARANTEE_METRICS_PORT:-9190}"
echo "[demo] starting the guarantee service on $GUARANTEE_LISTEN, metrics on http://$GUARANTEE_METRICS/metrics (log: $DEMO_DIR/guarantee.log)"
JINFU_GRPC__LISTEN="$GUARANTEE_LISTEN" JINFU_METRICS__LISTEN="$GUARANTEE_METRICS" \
  JINFU_LEDGER__ENDPOINT="http://$LEDGER_LISTEN" JINFU_SEALING__KEY="$SEALING_KEY" JINFU_CREDIT__ENDPOINT="http://$CREDIT_LISTEN" \
  JINFU_CONSUMER__ASSIGNMENT=manual JINFU_CONSUMER__INSTANCE_ID="guarantee-demo-0" \
  JINFU_SIGNING__KEY_REF=guarantee_demo JINFU_SIGNING__PRIVATE_KEY="$GUARANTEE_EVENTS_PRIVATE" \
  target/debug/guarantee serve >"$DEMO_DIR/guarantee.log" 2>&1 &
GUARANTEE_PID=$!
for attempt in $(seq 1 120); do
  target/debug/guarantee health --endpoint "http://$GUARANTEE_LISTEN" >/dev/null 2>&1 && break
  kill -0 "$GUARANTEE_PID" 2>/dev/null || { echo "[demo] the guarantee service exited:"; tail -20 "$DEMO_DIR/guarantee.log"; exit 1; }
  [ "$attempt" -lt 120 ] || { echo "[demo] the guarantee service did not become ready:"; tail -20 "$DEMO_DIR/guarantee.log"; exit 1; }
  sleep 0.5
done

# The contract service walks contracts into 2027; the shipped calendar ends with 2026. Load the
# demo's stand-in for 2027 into the ledger (which owns the calendar) unless a year is loaded
# already (production loads the State Council's notice; see scripts/demo-data/calendar-2027.txt).
if ! target/debug/ledger calendar list | grep -q "^2027"; then
  target/debug/ledger calendar load --year 2027 --file scripts/demo-data/calendar-2027.txt
fi
# The contract service: same database (its own schema) and broker. Its clock reads a file the
# simulator moves (demos only: weeks of contract deadlines in seconds); sweeps every second.
CONTRACT_LISTEN="127.0.0.1:${DEMO_CONTRACT_PORT:-50053}"
CONTRACT_METRICS="127.0.0.1:${DEMO_CONTRACT_METRICS_PORT:-9191}"
CONTRACT_CLOCK="$DEMO_DIR/contract-clock"
rm -f "$CONTRACT_CLOCK"
echo "[demo] starting the contract service on $CONTRACT_LISTEN, metrics on http://$CONTRACT_METRICS/metrics (log: $DEMO_DIR/contract.log)"
JINFU_GRPC__LISTEN="$CONTRACT_LISTEN" JINFU_METRICS__LISTEN="$CONTRACT_METRICS" \
  JINFU_CONSUMER__ASSIGNMENT=manual JINFU_CONSUMER__INSTANCE_ID="contract-demo-0" \
  JINFU_SIGNING__KEY_REF=contract_demo JINFU_SIGNING__PRIVATE_KEY="$CONTRACT_EVENTS_PRIVATE" \
  JINFU_CLOCK_FILE="$CONTRACT_CLOCK" JINFU_SWEEP_INTERVAL_SECONDS=1 JINFU_LEDGER__ENDPOINT="http://$LEDGER_LISTEN" \
  target/debug/contract serve >"$DEMO_DIR/contract.log" 2>&1 &
CONTRACT_PID=$!
for attempt in $(seq 1 120); do
  target/debug/contract health --endpoint "http://$CONTRACT_LISTEN" >/dev/null 2>&1 && break
  kill -0 "$CONTRACT_PID" 2>/dev/null || { echo "[demo] the contract service exited:"; tail -20 "$DEMO_DIR/contract.log"; exit 1; }
  [ "$attempt" -lt 120 ] || { echo "[demo] the contract service did not become ready:"; tail -20 "$DEMO_DIR/contract.log"; exit 1; }
  sleep 0.5
done

# The loans service: lenders finance contracts; it asks the contract service (facts, the lock on
# the collection account) and the credit service (eligibility), consumes contract.events (the
# purchasers' payments repay loans) and reads the contract service's clock file.
LOANS_LISTEN="127.0.0.1:${DEMO_LOANS_PORT:-50056}"
LOANS_METRICS="127.0.0.1:${DEMO_LOANS_METRICS_PORT:-9194}"
echo "[demo] starting the loans service on $LOANS_LISTEN, metrics on http://$LOANS_METRICS/metrics (log: $DEMO_DIR/loans.log)"
JINFU_GRPC__LISTEN="$LOANS_LISTEN" JINFU_METRICS__LISTEN="$LOANS_METRICS" \
  JINFU_CONSUMER__ASSIGNMENT=manual JINFU_CONSUMER__INSTANCE_ID="loans-demo-0" \
  JINFU_SIGNING__KEY_REF=loans_demo JINFU_SIGNING__PRIVATE_KEY="$LOANS_EVENTS_PRIVATE" \
  JINFU_CLOCK_FILE="$CONTRACT_CLOCK" JINFU_SWEEP_INTERVAL_SECONDS=1 \
  JINFU_CONTRACT__ENDPOINT="http://$CONTRACT_LISTEN" JINFU_CREDIT__ENDPOINT="http://$CREDIT_LISTEN" \
  JINFU_TRUSTED_PUBLISHERS__CONTRACT__CONTRACT_DEMO__SCHEME=ed25519 JINFU_TRUSTED_PUBLISHERS__CONTRACT__CONTRACT_DEMO__PUBLIC_KEY="$CONTRACT_EVENTS_PUBLIC" \
  target/debug/loans serve >"$DEMO_DIR/loans.log" 2>&1 &
LOANS_PID=$!
for attempt in $(seq 1 120); do
  target/debug/loans health --endpoint "http://$LOANS_LISTEN" >/dev/null 2>&1 && break
  kill -0 "$LOANS_PID" 2>/dev/null || { echo "[demo] the loans service exited:"; tail -20 "$DEMO_DIR/loans.log"; exit 1; }
  [ "$attempt" -lt 120 ] || { echo "[demo] the loans service did not become ready:"; tail -20 "$DEMO_DIR/loans.log"; exit 1; }
  sleep 0.5
done

# The simulated message gateways (an SMS gateway and a webhook receiver) and the notification
# service: every party told once — e-mail to the SMTP sink stack.sh started, SMS and webhooks to
# the simulators, an in-app inbox. It verifies every event it consumes with its publisher's key.
GATEWAYS_LISTEN="127.0.0.1:${DEMO_GATEWAYS_PORT:-8025}"
NOTIFICATION_LISTEN="127.0.0.1:${DEMO_NOTIFICATION_PORT:-50055}"
NOTIFICATION_METRICS="127.0.0.1:${DEMO_NOTIFICATION_METRICS_PORT:-9193}"
export JINFU_SMS__ACCESS_KEY_SECRET="demo-sms-access-key-secret"
export JINFU_DEMO_WEBHOOK_SECRET="whsec_ZGVtby13ZWJob29rLXNlY3JldC0yNC1ieXRlcyE="
echo "[demo] starting the simulated SMS gateway and webhook receiver on $GATEWAYS_LISTEN (log: $DEMO_DIR/gateways.log)"
target/debug/bank-sim gateways --listen "$GATEWAYS_LISTEN" >"$DEMO_DIR/gateways.log" 2>&1 &
GATEWAYS_PID=$!
echo "[demo] starting the notification service on $NOTIFICATION_LISTEN, metrics on http://$NOTIFICATION_METRICS/metrics (log: $DEMO_DIR/notification.log)"
# Quiet hours (no SMS 22:00-08:00 Beijing) are switched off for the demo, which may run at any
# hour; production keeps the default (docs/notifications.md).
JINFU_GRPC__LISTEN="$NOTIFICATION_LISTEN" JINFU_METRICS__LISTEN="$NOTIFICATION_METRICS" \
  JINFU_CONSUMER__ASSIGNMENT=manual JINFU_CONSUMER__INSTANCE_ID="notification-demo-0" \
  JINFU_SMTP__HOST=127.0.0.1 JINFU_SMTP__PORT="$SMTP_PORT" JINFU_SMTP__FROM="金服平台 <notice@jinfu.example.cn>" \
  JINFU_SMS__ENDPOINT="http://$GATEWAYS_LISTEN/sms/send" JINFU_SMS__SIGN_NAME="金服" JINFU_SMS__ACCESS_KEY_ID=demo \
  JINFU_QUIET_HOURS__START=00:00 JINFU_QUIET_HOURS__END=00:00 \
  JINFU_SIGNING__KEY_REF=notification_demo JINFU_SIGNING__PRIVATE_KEY="$NOTIFICATION_EVENTS_PRIVATE" \
  JINFU_TRUSTED_PUBLISHERS__LEDGER__LEDGER_DEMO__SCHEME=ed25519 JINFU_TRUSTED_PUBLISHERS__LEDGER__LEDGER_DEMO__PUBLIC_KEY="$LEDGER_EVENTS_PUBLIC" \
  JINFU_TRUSTED_PUBLISHERS__CREDIT__CREDIT_DEMO__SCHEME=ed25519 JINFU_TRUSTED_PUBLISHERS__CREDIT__CREDIT_DEMO__PUBLIC_KEY="$CREDIT_EVENTS_PUBLIC" \
  JINFU_TRUSTED_PUBLISHERS__LOANS__LOANS_DEMO__SCHEME=ed25519 JINFU_TRUSTED_PUBLISHERS__LOANS__LOANS_DEMO__PUBLIC_KEY="$LOANS_EVENTS_PUBLIC" \
  target/debug/notification serve >"$DEMO_DIR/notification.log" 2>&1 &
NOTIFICATION_PID=$!
for attempt in $(seq 1 120); do
  target/debug/notification health --endpoint "http://$NOTIFICATION_LISTEN" >/dev/null 2>&1 && break
  kill -0 "$NOTIFICATION_PID" 2>/dev/null || { echo "[demo] the notification service exited:"; tail -20 "$DEMO_DIR/notification.log"; exit 1; }
  [ "$attempt" -lt 120 ] || { echo "[demo] the notification service did not become ready:"; tail -20 "$DEMO_DIR/notification.log"; exit 1; }
  sleep 0.5
done

target/debug/bank-sim demo \
  --ledger-url "http://$JINFU_GRPC__LISTEN" \
  --guarantee-url "http://$GUARANTEE_LISTEN" \
  --contract-url "http://$CONTRACT_LISTEN" --contract-clock-file "$CONTRACT_CLOCK" --loans-url "http://$LOANS_LISTEN" \
  --credit-url "http://$CREDIT_LISTEN" \
  --notification-url "http://$NOTIFICATION_LISTEN" --notification-metrics-url "http://$NOTIFICATION_METRICS/metrics" \
  --gateways-url "http://$GATEWAYS_LISTEN" --maildir "$SMTP_MAILDIR" \
  --issuer "CCBG:sm2-sm3:$CCBG_PRIVATE" --issuer "PICC:ed25519:$PICC_PRIVATE" --issuer "GZDB:sm2-sm3:$GZDB_PRIVATE" \
  --bank "ICBC:2402001029200012345:520100:icbc_gy:sm2-sm3:$ICBC_PRIVATE" \
  --bank "CCB:52050110360800000123:520300:ccb_zy:ed25519:$CCB_PRIVATE" \
  --bank "BOC:133600000000012345:520000:boc_gz:sm2-sm3:$BOC_PRIVATE" \
  --count "${DEMO_COUNT:-3000}" --rate "${DEMO_RATE:-1000}"

echo
echo "[demo] stopping the notification, loans, contract, guarantee and credit services and the ledger gracefully, then verifying every invariant"
stop_notification
stop_loans
stop_contract
stop_guarantee
stop_credit
stop_ledger
trap - EXIT
target/debug/ledger verify
