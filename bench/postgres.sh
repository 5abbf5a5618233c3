#!/usr/bin/env bash
# Identify throughput on SQLite (one node) and on PostgreSQL with one and with
# two nodes, in the same run on the same machine.
#
#   bench/postgres.sh [duration-seconds]      (default 10)
#
# Needs wrk (Debian package, installed when missing), python3, psql and a
# PostgreSQL server with trust authentication (VOUCH_BENCH_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/postgres); a scratch database is created
# and dropped. Every identify is signed and durable (a new or updated user,
# committed before the answer). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR=${1:-10}
CONNS=${CONNS:-32}
PG=${VOUCH_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
export PGOPTIONS="-c client_min_messages=warning"
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p vouch
BIN=target/release/vouch
WORK=$(mktemp -d)
DB=vouch_bench_$$
PG_DB="${PG%/*}/$DB"
TOKEN=vat_bench_admin_token_0123456789abcdefghij
MASTER=$("$BIN" keygen --master-key)
PIDS=()
stop_nodes() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_nodes
  psql "$PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_node NAME PORT [DATABASE_URL]: runs `vouch serve`, waits until it listens.
start_node() {
  local name=$1 port=$2 url=${3:-}
  mkdir -p "$WORK/$name"
  env ${url:+VOUCH_DATABASE_URL=$url} VOUCH_MASTER_KEY="$MASTER" VOUCH_ADMIN_TOKEN=$TOKEN VOUCH_LOG=warn \
    "$BIN" serve --data-dir "$WORK/$name" --addr 127.0.0.1:"$port" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q "listening" "$WORK/$name.out" 2>/dev/null && return; sleep 0.1; done
  echo "node $name did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1
}

# bodies NAME: pre-signed identify bodies for the environment NAME printed.
bodies() {
  local sk
  sk=$(awk '/Identity secret:/ {print $3}' "$WORK/$1.out")
  python3 - "$sk" >"$WORK/$1.bodies" <<'PY'
import hmac, hashlib, json, sys
key = sys.argv[1].encode()
for i in range(20000):
    uid = f"user-{i}"
    sig = hmac.new(key, uid.encode(), hashlib.sha256).hexdigest()
    print(json.dumps({"user_id": uid, "signature": sig, "attributes": {"plan": "pro", "seats": i % 50, "visit": 0}}))
PY
}

# load NAME CONNS URL...: wrk on every URL at once (CONNS each); prints
# "requests/s p50 p99 non-2xx" summed over URLs (latencies of the first).
load() {
  local name=$1 conns=$2; shift 2
  local pk i=0 wpids=()
  pk=$(awk '/Publishable key:/ {print $3}' "$WORK/$name.out")
  for url in "$@"; do
    # CHANGE=1: every identify changes the user, so every one is committed.
    BODIES="$WORK/$name.bodies" PK=$pk CHANGE=1 wrk -t1 -c"$conns" -d"${DUR}s" --latency \
      -s bench/identify.lua "$url" >"$WORK/wrk.$i" 2>"$WORK/wrk.$i.err" &
    wpids+=($!)
    i=$((i + 1))
  done
  wait "${wpids[@]}"
  python3 - "$WORK" "$i" <<'PY'
import re, sys
work, n = sys.argv[1], int(sys.argv[2])
rps = bad = 0.0
lat = {}
for k in range(n):
    text = open(f"{work}/wrk.{k}").read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    bad += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*", text)
    if m:
        bad += sum(int(x) for x in re.findall(r"\d+", m.group(0)))
    if k == 0:
        for p in ("50%", "99%"):
            lat[p] = re.search(rf"\s{p}\s+(\S+)", text).group(1)
print(f"{rps:.0f} {lat['50%']} {lat['99%']} {int(bad)}")
PY
}

rows=()
run_case() { # label nodes NAME URL...
  local label=$1 nodes=$2 name=$3; shift 3
  local per=$((CONNS / $#))
  # Warm-up: creates the users, so the measured run updates existing ones too.
  BODIES="$WORK/$name.bodies" PK=$(awk '/Publishable key:/ {print $3}' "$WORK/$name.out") \
    wrk -t1 -c8 -d2s -s bench/identify.lua "$1" >/dev/null 2>&1
  read -r rps p50 p99 bad < <(load "$name" "$per" "$@")
  rows+=("| $label | $nodes | $rps | $p50 | $p99 | $bad |")
}

# SQLite, one node.
start_node sqlite 18801
bodies sqlite
run_case "SQLite (embedded)" 1 sqlite http://127.0.0.1:18801
stop_nodes

# PostgreSQL, one node then two nodes, each on a fresh database.
for nodes in 1 2; do
  psql "$PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
  psql "$PG" -qc "CREATE DATABASE $DB" >/dev/null
  start_node "pg$nodes" 18811 "$PG_DB"
  urls=(http://127.0.0.1:18811)
  if [ "$nodes" = 2 ]; then
    start_node "pg${nodes}b" 18812 "$PG_DB"
    urls+=(http://127.0.0.1:18812)
  fi
  bodies "pg$nodes"
  run_case "PostgreSQL $(psql "$PG" -tAc 'SHOW server_version' | cut -d' ' -f1)" "$nodes" "pg$nodes" "${urls[@]}"
  stop_nodes
done

cat <<MD
Machine: $(nproc) cores (shared by wrk, every Vouch node and PostgreSQL), $(uname -r); ${DUR}s per run, $CONNS connections in total (split over the nodes); signed identifies of 20 000 users, each committed before the answer.

| store | nodes | identify requests/s | p50 | p99 | errors |
|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")
MD
