#!/usr/bin/env bash
# Brings the local stack up or down, on loopback only:
#   ./scripts/stack.sh up      install what is missing, start PostgreSQL, tansu and the SMTP sink, create topics
#   ./scripts/stack.sh down    stop tansu and the SMTP sink (PostgreSQL is the machine's service and is left running)
#   ./scripts/stack.sh status
# Safe to run twice. State lives in .stack/ (tansu's sqlite file, logs, pid).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

log() { printf '[stack] %s\n' "$*"; }

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
    log "PostgreSQL is running on 127.0.0.1:$PG_PORT"
  else
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      log "installing PostgreSQL from Debian packages"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do
      pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
      sleep 1
    done
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || { log "PostgreSQL did not start"; exit 1; }
  fi
  # The platform's role and database; created through the local superuser so that it works
  # with Debian's default peer/scram authentication as well as with trust.
  AS_POSTGRES=(psql -v ON_ERROR_STOP=1 -q -d postgres)
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then AS_POSTGRES=(runuser -u postgres -- "${AS_POSTGRES[@]}"); fi
  local as_postgres=("${AS_POSTGRES[@]}")
  "${as_postgres[@]}" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jinfu') THEN
    CREATE ROLE jinfu LOGIN SUPERUSER PASSWORD 'jinfu';
  END IF;
END \$\$;
SQL
  if ! "${as_postgres[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'jinfu'" | grep -q 1; then
    "${as_postgres[@]}" -c "CREATE DATABASE jinfu OWNER jinfu"
  fi
}

ensure_tansu() {
  if command -v tansu >/dev/null && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return
  fi
  log "installing tansu $TANSU_VERSION (features $TANSU_FEATURES); a cold build takes about 20 minutes"
  cargo install tansu --version "$TANSU_VERSION" --locked --features "$TANSU_FEATURES"
}

tansu_running() {
  [ -f "$STACK_DIR/tansu.pid" ] && kill -0 "$(cat "$STACK_DIR/tansu.pid")" 2>/dev/null
}

start_tansu() {
  mkdir -p "$STACK_DIR"
  if tansu_running; then
    log "tansu is running (pid $(cat "$STACK_DIR/tansu.pid"))"
  elif (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then
    log "a broker is already listening on 127.0.0.1:$KAFKA_PORT; using it"
    return
  else
    if [ ! -f "$STACK_DIR/tansu.db" ]; then
      # A new, empty broker: the platform database's stored Kafka offsets and outbox refer to
      # topics that no longer exist, so the local platform database starts afresh with it.
      log "new broker storage: resetting the local database 'jinfu'"
      "${AS_POSTGRES[@]}" -c "DROP DATABASE IF EXISTS jinfu WITH (FORCE)" -c "CREATE DATABASE jinfu OWNER jinfu"
    fi
    log "starting tansu on 127.0.0.1:$KAFKA_PORT (sqlite storage in $STACK_DIR)"
    # tansu reads the sqlite path relative to its working directory.
    (cd "$STACK_DIR" && exec nohup tansu broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine "sqlite://tansu.db" \
      >"$STACK_DIR/tansu.log" 2>&1) &
    echo $! >"$STACK_DIR/tansu.pid"
  fi
  for _ in $(seq 1 60); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then return; fi
    tansu_running || { log "tansu exited; its log:"; tail -20 "$STACK_DIR/tansu.log"; exit 1; }
    sleep 0.5
  done
  log "tansu did not open its port"; exit 1
}

# An SMTP sink for the notification service's e-mail: aiosmtpd (PyPI), pinned, in a virtualenv
# under .stack/, storing every message it accepts in the Maildir $SMTP_MAILDIR.
ensure_smtp_sink() {
  if [ ! -x "$STACK_DIR/venv/bin/python" ] || ! "$STACK_DIR/venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
    log "installing the SMTP sink (aiosmtpd $AIOSMTPD_VERSION from PyPI) into $STACK_DIR/venv"
    python3 -m venv "$STACK_DIR/venv"
    "$STACK_DIR/venv/bin/pip" install -q "aiosmtpd==$AIOSMTPD_VERSION"
  fi
}

smtp_running() {
  [ -f "$STACK_DIR/smtp.pid" ] && kill -0 "$(cat "$STACK_DIR/smtp.pid")" 2>/dev/null
}

start_smtp_sink() {
  if smtp_running; then
    log "SMTP sink is running (pid $(cat "$STACK_DIR/smtp.pid"))"
    return
  fi
  mkdir -p "$SMTP_MAILDIR/tmp" "$SMTP_MAILDIR/new" "$SMTP_MAILDIR/cur"
  if (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; then
    log "port $SMTP_PORT is taken by another process (another checkout's SMTP sink?): stop it, or set SMTP_PORT"; exit 1
  fi
  log "starting the SMTP sink on 127.0.0.1:$SMTP_PORT (Maildir $SMTP_MAILDIR)"
  nohup "$STACK_DIR/venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$SMTP_MAILDIR" \
    >"$STACK_DIR/smtp.log" 2>&1 &
  echo $! >"$STACK_DIR/smtp.pid"
  for _ in $(seq 1 40); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; then return; fi
    smtp_running || { log "the SMTP sink exited; its log:"; tail -20 "$STACK_DIR/smtp.log"; exit 1; }
    sleep 0.25
  done
  log "the SMTP sink did not open its port"; exit 1
}

create_topics() {
  log "creating topics (explicitly, through the admin API)"
  cargo build -q -p jinfu-ledger-service --bin ledger
  # A broker that has just started may time out its first admin requests: try a few times.
  for attempt in 1 2 3 4 5; do
    if target/debug/ledger create-topics; then return; fi
    log "creating topics failed (attempt $attempt); retrying"
    sleep 3
  done
  log "could not create the topics"; exit 1
}

case "${1:-up}" in
  up)
    ensure_postgres
    ensure_tansu
    start_tansu
    ensure_smtp_sink
    start_smtp_sink
    create_topics
    log "stack is up: PostgreSQL 127.0.0.1:$PG_PORT, Kafka (tansu) 127.0.0.1:$KAFKA_PORT, SMTP sink 127.0.0.1:$SMTP_PORT"
    ;;
  down)
    if tansu_running; then
      pid="$(cat "$STACK_DIR/tansu.pid")"
      kill "$pid"
      # Wait for it to let go of its port and storage (a busy broker takes a while); then force.
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && { log "tansu did not stop in 20 s; killing it"; kill -9 "$pid"; sleep 0.5; }
      log "tansu stopped"
    else
      log "tansu is not running"
    fi
    rm -f "$STACK_DIR/tansu.pid"
    if smtp_running; then kill "$(cat "$STACK_DIR/smtp.pid")"; log "SMTP sink stopped"; fi
    rm -f "$STACK_DIR/smtp.pid"
    ;;
  status)
    pg_isready -h 127.0.0.1 -p "$PG_PORT" || true
    if tansu_running; then log "tansu running (pid $(cat "$STACK_DIR/tansu.pid"))"; else log "tansu not running"; fi
    if smtp_running; then log "SMTP sink running (pid $(cat "$STACK_DIR/smtp.pid"))"; else log "SMTP sink not running"; fi
    ;;
  *)
    echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
