# Shared settings for the scripts. Source it; do not run it.
export STACK_DIR="${STACK_DIR:-$PWD/.stack}"
export PG_PORT="${PG_PORT:-5432}"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
# tansu is pinned; default features can run no storage engine (DESIGN.md §5).
export TANSU_VERSION="0.6.0"
export TANSU_FEATURES="libsql,dynostore"
# The SMTP sink the notification service's e-mail goes to in the demo and the tests.
export AIOSMTPD_VERSION="1.4.6"
export SMTP_PORT="${SMTP_PORT:-2525}"
export SMTP_MAILDIR="${SMTP_MAILDIR:-$STACK_DIR/maildir}"

export JINFU_DATABASE__URL="${JINFU_DATABASE__URL:-postgres://jinfu:jinfu@127.0.0.1:$PG_PORT/jinfu}"
export JINFU_KAFKA__BROKERS="${JINFU_KAFKA__BROKERS:-127.0.0.1:$KAFKA_PORT}"
# A development secret; production sets JINFU_AUTH__TOKEN_SECRET from a Kubernetes Secret.
export JINFU_AUTH__TOKEN_SECRET="${JINFU_AUTH__TOKEN_SECRET:-local-development-token-secret-not-for-production}"
export JINFU_TEST_DATABASE_URL="${JINFU_TEST_DATABASE_URL:-postgres://jinfu:jinfu@127.0.0.1:$PG_PORT/jinfu}"
export JINFU_TEST_BROKERS="${JINFU_TEST_BROKERS:-127.0.0.1:$KAFKA_PORT}"
export JINFU_TEST_SMTP="${JINFU_TEST_SMTP:-127.0.0.1:$SMTP_PORT}"
export JINFU_TEST_MAILDIR="${JINFU_TEST_MAILDIR:-$SMTP_MAILDIR}"
export PATH="$HOME/.cargo/bin:$PATH"
