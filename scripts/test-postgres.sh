#!/usr/bin/env bash
# The PostgreSQL suites: the shared black-box suite of vouch-server run against
# PostgreSQL (a fresh database per test server), the multi-node tests, the
# migrate-store test, the PostgreSQL restart test (which stops and starts
# the machine's cluster, so run it only where nothing else uses that server) and
# the TLS test (which gives that server a certificate of its own for a while) and
# the crash test (tests/hardening/crash.py: SIGKILL of a node under load) on PostgreSQL.
#
#   scripts/test-postgres.sh
#
# VOUCH_TEST_POSTGRES names the server (default: trust auth on 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export VOUCH_TEST_POSTGRES=${VOUCH_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
psql "$VOUCH_TEST_POSTGRES" -qtAc 'SELECT 1' >/dev/null

echo "--- shared suite on PostgreSQL (+ postgres_nodes)"
VOUCH_TEST_DATABASE_URL=$VOUCH_TEST_POSTGRES cargo test -p vouch-server --locked
echo "--- vouch migrate-store"
cargo test -p vouch --locked --test it migrate_store::
echo "--- PostgreSQL restart under load"
cargo test -p vouch-server --locked --test it -- --ignored postgres_restart::
echo "--- TLS to PostgreSQL (verify-full, verify-ca, require, no plaintext fallback)"
cargo test -p vouch-server --locked --test it -- --ignored postgres_tls::
echo "--- kill -9 of a node under load on PostgreSQL (group commit): no acknowledged write lost"
CRASH_DB=vouch_crash_$$
psql "$VOUCH_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS $CRASH_DB WITH (FORCE)" -c "CREATE DATABASE $CRASH_DB" 2>/dev/null
cargo build -q -p vouch --locked
CRASH_OUT=$(mktemp -d)
VOUCH_DATABASE_URL="${VOUCH_TEST_POSTGRES%/*}/$CRASH_DB" VOUCH_MASTER_KEY=$(target/debug/vouch keygen --master-key) \
  HARDENING_OUT=$CRASH_OUT ROUNDS=5 VOUCH_BIN=target/debug/vouch python3 tests/hardening/crash.py
rm -rf "$CRASH_OUT"
psql "$VOUCH_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS $CRASH_DB WITH (FORCE)"
