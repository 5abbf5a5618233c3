#!/usr/bin/env bash
# Load benchmark of the server, one run on one server: /healthz (the ceiling),
# identify (every call a committed change, and a repeat of an unchanged user),
# track and me at their maximum, identify at half its maximum rate; server RSS
# and CPU. Prints a Markdown table.
#
#   bench/identify.sh [duration-seconds]      (default 10)
#
# Needs wrk (Debian package; installed when missing) and Node.js (the peer). Prints a
# Markdown table with the machine and commit, and writes it into
# bench/RESULTS.md between the `identify.sh` markers (NO_WRITE=1: print only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR=${1:-10}
CONNS=${CONNS:-32}
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p vouch
BIN=target/release/vouch
DATA=$(mktemp -d)
PORT=${PORT:-18790}
TOKEN=vat_bench_admin_token_0123456789abcdefghij
"$BIN" serve --data-dir "$DATA" --addr 127.0.0.1:$PORT --admin-token $TOKEN >"$DATA/out" 2>"$DATA/err" &
PID=$!
cleanup() { kill "$PID" ${PEER:-} 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 50); do grep -q "listening" "$DATA/out" 2>/dev/null && break; sleep 0.1; done
PK=$(awk '/Publishable key:/ {print $3}' "$DATA/out")
SK=$(awk '/Identity secret:/ {print $3}' "$DATA/out")
BODIES="$DATA/bodies.jsonl"
python3 - "$SK" >"$BODIES" <<'PY'
import hmac, hashlib, json, sys
key = sys.argv[1].encode()
for i in range(5000):
    uid = f"user-{i}"
    sig = hmac.new(key, uid.encode(), hashlib.sha256).hexdigest()
    print(json.dumps({"user_id": uid, "signature": sig, "attributes": {"plan": "pro", "seats": i % 50, "visit": 0}}))
PY
URL=http://127.0.0.1:$PORT
# Warm up: create the users once.
BODIES=$BODIES PK=$PK wrk -t2 -c16 -d3s -s bench/identify.lua $URL >/dev/null
# Server CPU time (user + system, in clock ticks) so far.
ticks() { awk '{print $14 + $15}' /proc/$PID/stat; }
HZ_TICKS=$(getconf CLK_TCK)
# run NAME LUA [PATH]: one wrk run; keeps its output and the server CPU it cost.
declare -A OUT CPU
run() {
  local before after
  before=$(ticks)
  OUT[$1]=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s "bench/$2" "$URL${3:-}")
  after=$(ticks)
  CPU[$1]=$((after - before))
}
run healthz healthz.lua
BODIES=$BODIES PK=$PK CHANGE=1 run identify identify.lua
# Back to "visit": 0 for every user (the run above changed them), then the repeat run.
BODIES=$BODIES PK=$PK wrk -t2 -c16 -d3s -s bench/identify.lua $URL >/dev/null
BODIES=$BODIES PK=$PK run repeat identify.lua
# The peer: a one-process Node.js server that only parses the JSON and checks the HMAC
# (bench/node_peer.mjs), under the same client and bodies; its own CPU per request.
PEER_PORT=$((PORT + 9))
PK=$PK SK=$SK PORT=$PEER_PORT node bench/node_peer.mjs >"$DATA/peer.out" 2>&1 &
PEER=$!
for _ in $(seq 50); do grep -q "listening" "$DATA/peer.out" 2>/dev/null && break; sleep 0.1; done
peer_ticks() { awk '{print $14 + $15}' /proc/$PEER/stat; }
before=$(peer_ticks)
OUT[peer]=$(BODIES=$BODIES PK=$PK wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s bench/identify.lua "http://127.0.0.1:$PEER_PORT")
CPU[peer]=$(($(peer_ticks) - before))
kill $PEER; wait $PEER 2>/dev/null || true
SESSION=$(curl -s -X POST $URL/v1/identify -H "Authorization: Bearer $PK" -H 'Content-Type: application/json' -d "$(head -1 "$BODIES")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])')
SESSION=$SESSION run track track.lua
SESSION=$SESSION run me me.lua
rps() { echo "${OUT[$1]}" | awk '/Requests\/sec/ {print $2}'; }
pct() { echo "${OUT[$1]}" | awk -v p="$2" '$1==p {print $2}'; }
p999() { echo "${OUT[$1]}" | awk '$1=="P99.9" {print $2}'; }
bad() { echo "${OUT[$1]}" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {for (i=3;i<=NF;i++) {gsub(/,/,"",$i); if ($i ~ /^[0-9]+$/) n+=$i}} END {print n+0}'; }
# Server CPU per answered request, in microseconds.
cpu_us() {
  local n
  n=$(echo "${OUT[$1]}" | awk '/requests in/ {print $1}')
  python3 -c "print(f'{${CPU[$1]} / $HZ_TICKS / max(1, $n) * 1e6:.1f}')"
}
row() { echo "| $2 | $(rps "$1") | $(pct "$1" 50%) | $(pct "$1" 99%) | $(p999 "$1") | $(cpu_us "$1") µs | $(bad "$1") |"; }
HZ_RPS=$(rps healthz); ID_RPS=$(rps identify); REPEAT_RPS=$(rps repeat)
CPU_S=$(awk -v hz="$HZ_TICKS" '{print ($14+$15)/hz}' /proc/$PID/stat)
# half_run NAME RATE CHANGE: identify at RATE req/s (CHANGE=1: every call a
# change). Each of the $CONNS connections waits between answer and next
# request; a 3 s calibration run measures what one request costs beyond that
# wait at this rate.
half_run() {
  local period cal delay
  period=$(python3 -c "print($CONNS * 1000 / $2)")
  cal=$(BODIES=$BODIES PK=$PK CHANGE=$3 DELAY_MS=$period wrk -t2 -c"$CONNS" -d3s -s bench/identify.lua "$URL" | awk '/Requests\/sec/ {print $2}')
  delay=$(python3 -c "print(max(0.0, $period - ($CONNS * 1000 / max(1.0, $cal) - $period)))")
  BODIES=$BODIES PK=$PK CHANGE=$3 DELAY_MS=$delay run "$1" identify.lua
}
HALF_RPS=$(python3 -c "print(float('$ID_RPS') / 2)")
HALF_REPEAT_RPS=$(python3 -c "print(float('$REPEAT_RPS') / 2)")
half_run half "$HALF_RPS" 1
half_run half_repeat "$HALF_REPEAT_RPS" 0
RSS=$(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$PID/status)
# Start-up to ready on the existing data directory.
kill $PID; wait $PID 2>/dev/null || true
STARTUP_MS=$(python3 - "$BIN" "$DATA" "$PORT" "$TOKEN" <<'PY'
import subprocess, sys, time, urllib.request
bin_, data, port, token = sys.argv[1:]
t = time.monotonic()
p = subprocess.Popen([bin_, "serve", "--data-dir", data, "--addr", f"127.0.0.1:{port}", "--admin-token", token],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
            break
    except Exception:
        time.sleep(0.002)
print(f"{(time.monotonic() - t) * 1000:.0f}")
p.terminate(); p.wait()
PY
)
ratio() { python3 -c "print(f'{float(\"$1\")/float(\"$HZ_RPS\")*100:.0f} %')"; }
TABLE=$(cat <<MD
Machine: $(nproc) cores, $(uname -r); commit $(git rev-parse --short HEAD 2>/dev/null || echo '-'); ${DUR}s per run, $CONNS connections (wrk, every run through a Lua request function)

| endpoint | requests/s | p50 | p99 | p99.9 | server CPU per request | non-2xx |
|---|---|---|---|---|---|---|
$(row healthz "GET /healthz (ceiling)")
$(row identify "POST /v1/identify, every call a change, committed (max)")
$(row repeat "POST /v1/identify, unchanged user again (max)")
$(row peer "peer: Node.js http + JSON + HMAC check only, one process (max)")
$(row track "POST /v1/track, durable (max)")
$(row me "GET /v1/me (max)")
$(row half "POST /v1/identify, every call a change, at half max ($(printf '%.0f' "$HALF_RPS")/s asked)")
$(row half_repeat "POST /v1/identify, unchanged user again, at half max ($(printf '%.0f' "$HALF_REPEAT_RPS")/s asked)")

identify ÷ healthz = $(ratio "$ID_RPS") when every call is committed, $(ratio "$REPEAT_RPS") for an unchanged user; unchanged identify ÷ the Node.js peer = $(python3 -c "print(f'{float(\"$REPEAT_RPS\")/float(\"$(rps peer)\"):.2f}')"); server peak RSS $RSS; server CPU time over the whole run ${CPU_S} s; start-up to ready on the existing data directory ${STARTUP_MS} ms
MD
)
echo "$TABLE"
if [ -z "${NO_WRITE:-}" ]; then
  python3 - bench/RESULTS.md "$TABLE" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
begin, end = "<!-- identify.sh:begin -->", "<!-- identify.sh:end -->"
text = open(path).read()
if begin not in text or end not in text:
    sys.exit(f"{path} has no {begin} … {end} block to replace")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(f"{head}{begin}\n{table}\n{end}{tail}")
PY
  echo "written into bench/RESULTS.md" >&2
fi
