#!/usr/bin/env bash
# Identify on SQLite and on PostgreSQL (one node, two nodes) in one run on one machine,
# interleaved: every round measures each store in turn, so that the machine's drift hits
# all of them alike, and the table gives the median round.
#
#   bench/postgres.sh [duration-seconds] [rounds]      (defaults 10 and 3)
#
# Two kinds of identify, each on its own users so that neither disturbs the other:
#   unchanged  the same signed user with the same attributes again (a page load): no write
#   change     every call a new value of an unsigned attribute: a committed write each
# Then one PostgreSQL node at half its median rate, for p50 and p99 there.
# Per run: requests/s, p50 and p99 (wrk), Vouch's CPU per request (every node of the
# store), PostgreSQL's CPU per request (all its processes) and the statements sent to
# PostgreSQL per identify (`vouch_db_round_trips_total` of the nodes) and the writes per
# committed transaction (`vouch_db_batch_size`: group commit).
#
# Needs wrk (Debian package, installed when missing), python3, psql and a PostgreSQL
# server with trust authentication on this machine (VOUCH_BENCH_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/postgres); scratch databases are created and dropped.
# VOUCH_BIN=PATH measures that binary instead of building this checkout's.
# Prints a Markdown table and writes it into bench/RESULTS.md between the postgres.sh
# markers (NO_WRITE=1: print only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR=${1:-10}
ROUNDS=${2:-3}
CONNS=${CONNS:-32}
USERS=${USERS:-2000}
PG=${VOUCH_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
# The nodes' connection parameters: TLS as PostgreSQL offers it (sqlx's `prefer`) unless
# told otherwise, e.g. NODE_PARAMS='?sslmode=disable'.
NODE_PARAMS=${NODE_PARAMS:-}
export PGOPTIONS="-c client_min_messages=warning"
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ -n "${VOUCH_BIN:-}" ]; then
  BIN=$VOUCH_BIN
else
  cargo build --release -q -p vouch
  BIN=target/release/vouch
fi
WORK=$(mktemp -d)
DBS=(vouch_bench_1_$$ vouch_bench_2_$$)
TOKEN=vat_bench_admin_token_0123456789abcdefghij
MASTER=$("$BIN" keygen --master-key)
HZ_TICKS=$(getconf CLK_TCK)
declare -A PIDS PORTS
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for db in "${DBS[@]}"; do psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_node NAME PORT [DATABASE_URL]: runs `vouch serve`, waits until it listens.
start_node() {
  local name=$1 port=$2 url=${3:-}
  mkdir -p "$WORK/$name"
  env ${url:+VOUCH_DATABASE_URL=$url} VOUCH_MASTER_KEY="$MASTER" VOUCH_ADMIN_TOKEN=$TOKEN VOUCH_LOG=warn \
    "$BIN" serve --data-dir "$WORK/$name" --addr 127.0.0.1:"$port" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS[$name]=$!
  PORTS[$name]=$port
  for _ in $(seq 100); do grep -q "listening" "$WORK/$name.out" 2>/dev/null && return; sleep 0.1; done
  echo "node $name did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1
}

# bodies NAME FIRST_NODE: pre-signed identify bodies for the environment that node
# printed, for the users of each kind (u-… unchanged, c-… change).
bodies() {
  local sk
  sk=$(awk '/Identity secret:/ {print $3}' "$WORK/$2.out")
  for kind in u c; do
    python3 - "$sk" "$kind" "$USERS" >"$WORK/$1.$kind.bodies" <<'PY'
import hmac, hashlib, json, sys
key, kind, n = sys.argv[1].encode(), sys.argv[2], int(sys.argv[3])
for i in range(n):
    uid = f"{kind}-{i}"
    sig = hmac.new(key, uid.encode(), hashlib.sha256).hexdigest()
    print(json.dumps({"user_id": uid, "signature": sig, "attributes": {"plan": "pro", "seats": i % 50, "visit": 0}}))
PY
  done
  awk '/Publishable key:/ {print $3}' "$WORK/$2.out" >"$WORK/$1.pk"
}

ticks_of() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat))); done; echo $t; }
# Every PostgreSQL server process of this machine (backends, WAL writer, checkpointer, …):
# their own CPU and that of their children that have exited (the postmaster's cutime and
# cstime), so a backend that ends between two readings is still counted.
pg_ticks() {
  local t=0 f line
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    [[ $line == *"(postgres)"* ]] || continue
    t=$((t + $(awk '{print $14 + $15 + $16 + $17}' <<<"$line")))
  done
  echo $t
}
metric() { # NAME NODE...: a counter of the nodes' /metrics, summed
  local name=$1 t=0 n v
  shift
  for n in "$@"; do
    v=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${PORTS[$n]}/metrics" |
      awk -v m="$name" '$1==m {printf "%d", $2}')
    t=$((t + ${v:-0}))
  done
  echo $t
}

# measure STORE KIND NODE...: one wrk run over the nodes (CONNS split between them).
# Appends "rps p50 p99 vouch_us pg_us trips errors" to $WORK/STORE.KIND.
measure() {
  local store=$1 kind=$2; shift 2
  local per=$((CONNS / $#)) i=0 node wpids=() pids=() change=""
  [ "$kind" = c ] && change=1
  for node in "$@"; do pids+=("${PIDS[$node]}"); done
  local v0 p0 r0 w0 c0
  v0=$(ticks_of "${pids[@]}"); p0=$(pg_ticks); r0=$(metric vouch_db_round_trips_total "$@")
  w0=$(metric vouch_db_batch_size_sum "$@"); c0=$(metric vouch_db_batch_size_count "$@")
  for node in "$@"; do
    BODIES="$WORK/$store.$kind.bodies" PK=$(cat "$WORK/$store.pk") CHANGE=$change \
      wrk -t1 -c"$per" -d"${DUR}s" --latency -s bench/identify.lua "http://127.0.0.1:${PORTS[$node]}" >"$WORK/wrk.$i" 2>&1 &
    wpids+=($!)
    i=$((i + 1))
  done
  wait "${wpids[@]}"
  local v1 p1 r1 w1 c1
  v1=$(ticks_of "${pids[@]}"); p1=$(pg_ticks); r1=$(metric vouch_db_round_trips_total "$@")
  w1=$(metric vouch_db_batch_size_sum "$@"); c1=$(metric vouch_db_batch_size_count "$@")
  python3 - "$WORK" "$i" "$((v1 - v0))" "$((p1 - p0))" "$((r1 - r0))" "$((w1 - w0))" "$((c1 - c0))" "$HZ_TICKS" >>"$WORK/$store.$kind" <<'PY'
import re, sys
work, n, vt, pt, trips, writes, commits, hz = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
rps = reqs = bad = 0.0
lat = {}
for k in range(n):
    text = open(f"{work}/wrk.{k}").read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    reqs += int(re.search(r"(\d+) requests in", text).group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    bad += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*", text)
    if m:
        bad += sum(int(x) for x in re.findall(r"\d+", m.group(0)))
    if k == 0:
        for p in ("50%", "99%"):
            lat[p] = re.search(rf"\s{p}\s+(\S+)", text).group(1)
reqs = max(1, reqs)
per_tx = f"{writes / commits:.1f}" if commits else "–"
print(f"{rps:.0f} {lat['50%']} {lat['99%']} {vt / hz / reqs * 1e6:.1f} {pt / hz / reqs * 1e6:.1f} {trips / reqs:.2f} {int(bad)} {per_tx}")
PY
}

# warm NAME NODE: creates the users of both kinds (and leaves them with visit 0).
warm() {
  local kind
  for kind in u c; do
    BODIES="$WORK/$1.$kind.bodies" PK=$(cat "$WORK/$1.pk") \
      wrk -t1 -c8 -d3s -s bench/identify.lua "http://127.0.0.1:${PORTS[$2]}" >/dev/null 2>&1
  done
}

start_node sqlite 18801
for n in 1 2; do
  psql "$PG" -qc "DROP DATABASE IF EXISTS ${DBS[$((n - 1))]} WITH (FORCE)" >/dev/null
  psql "$PG" -qc "CREATE DATABASE ${DBS[$((n - 1))]}" >/dev/null
done
start_node pg1 18811 "${PG%/*}/${DBS[0]}${NODE_PARAMS}"
start_node pg2a 18812 "${PG%/*}/${DBS[1]}${NODE_PARAMS}"
start_node pg2b 18813 "${PG%/*}/${DBS[1]}${NODE_PARAMS}"
bodies sqlite sqlite; bodies pg1 pg1; bodies pg2 pg2a
warm sqlite sqlite; warm pg1 pg1; warm pg2 pg2a

for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for kind in u c; do
    measure sqlite "$kind" sqlite
    measure pg1 "$kind" pg1
    measure pg2 "$kind" pg2a pg2b
  done
done

# The median round of each store and kind (by requests/s), and its ratio to SQLite's.
TABLE_ROWS=$(python3 - "$WORK" "$(psql "$PG" -tAc 'SHOW server_version' | cut -d' ' -f1)" <<'PY'
import statistics, sys
work, version = sys.argv[1], sys.argv[2]
label = {"sqlite": ("SQLite (embedded)", 1), "pg1": (f"PostgreSQL {version}", 1), "pg2": (f"PostgreSQL {version}", 2)}
kinds = {"u": "unchanged user", "c": "every call a change"}
for kind in ("u", "c"):
    base = None
    for store in ("sqlite", "pg1", "pg2"):
        runs = [l.split() for l in open(f"{work}/{store}.{kind}")]
        runs.sort(key=lambda r: float(r[0]))
        med = runs[len(runs) // 2]
        all_rps = "/".join(r[0] for r in runs)
        if store == "sqlite":
            base = float(med[0])
        trips = med[5] if store != "sqlite" else "–"
        pg_cpu = f"{med[4]} µs" if store != "sqlite" else "–"
        ratio = f"{float(med[0]) / base:.2f}"
        errors = sum(int(r[6]) for r in runs)
        print(f"| {kinds[kind]} | {label[store][0]} | {label[store][1]} | {med[0]} ({all_rps}) | {ratio} | {med[1]} | {med[2]} | {med[3]} µs | {pg_cpu} | {trips} | {med[7]} | {errors} |")
PY
)
# At half the maximum: one PostgreSQL node driven at half its median rate above (each
# connection waits between answer and next request; a 3 s calibration run measures what a
# request costs beyond that wait at this rate), for the latency a sized deployment sees.
half_row() { # KIND: a table row for pg1 at half its median rate
  local kind=$1 rate period cal delay change="" out
  [ "$kind" = c ] && change=1
  rate=$(sort -n "$WORK/pg1.$kind" | awk '{print $1}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] / 2}')
  period=$(python3 -c "print($CONNS * 1000 / $rate)")
  cal=$(BODIES="$WORK/pg1.$kind.bodies" PK=$(cat "$WORK/pg1.pk") CHANGE=$change DELAY_MS=$period \
    wrk -t1 -c"$CONNS" -d3s -s bench/identify.lua "http://127.0.0.1:${PORTS[pg1]}" | awk '/Requests\/sec/ {print $2}')
  delay=$(python3 -c "print(max(0.0, $period - ($CONNS * 1000 / max(1.0, $cal) - $period)))")
  out=$(BODIES="$WORK/pg1.$kind.bodies" PK=$(cat "$WORK/pg1.pk") CHANGE=$change DELAY_MS=$delay \
    wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s bench/identify.lua "http://127.0.0.1:${PORTS[pg1]}")
  python3 - "$kind" "$rate" "$out" <<'PY'
import re, sys
kind, rate, text = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p = {q: re.search(rf"\s{q}\s+(\S+)", text).group(1) for q in ("50%", "99%")}
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
name = {"u": "unchanged user", "c": "every call a change"}[kind]
print(f"| {name} | {rate:.0f} | {rps:.0f} | {p['50%']} | {p['99%']} | {m.group(1) if m else 0} |")
PY
}
echo "at half the maximum, PostgreSQL 1 node" >&2
HALF_ROWS="$(half_row u)
$(half_row c)"

TABLE=$(cat <<MD
Machine: $(nproc) cores shared by wrk, every Vouch node and PostgreSQL, $(uname -r); commit $(git rev-parse --short HEAD 2>/dev/null || echo '-'); $ROUNDS rounds of ${DUR}s runs, interleaved; $CONNS connections in total (split over the nodes); $USERS signed users of each kind.

| identify | store | nodes | requests/s, median round (every round) | ÷ SQLite | p50 | p99 | Vouch CPU per request | PostgreSQL CPU per request | statements per identify | writes per transaction | errors |
|---|---|---|---|---|---|---|---|---|---|---|---|
$TABLE_ROWS

At half the maximum rate, PostgreSQL, one node ($CONNS connections, each pausing between answer and next request):

| identify | asked requests/s | served requests/s | p50 | p99 | errors |
|---|---|---|---|---|---|
$HALF_ROWS
MD
)
echo "$TABLE"
if [ -z "${NO_WRITE:-}" ]; then
  python3 - bench/RESULTS.md "$TABLE" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
begin, end = "<!-- postgres.sh:begin -->", "<!-- postgres.sh:end -->"
text = open(path).read()
if begin not in text or end not in text:
    sys.exit(f"{path} has no {begin} … {end} block to replace")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(f"{head}{begin}\n{table}\n{end}{tail}")
PY
  echo "written into bench/RESULTS.md" >&2
fi
