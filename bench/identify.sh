#!/usr/bin/env bash
# Load benchmark of the server, one run on one server: /healthz (the ceiling),
# durable identify, track and me at their maximum, identify at half its
# maximum rate; server RSS and CPU. Prints a Markdown table.
#
#   bench/identify.sh [duration-seconds]      (default 10)
#
# Needs wrk and hey (Debian packages; installed when missing). Prints a
# Markdown table and appends nothing anywhere: copy it into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR=${1:-10}
CONNS=${CONNS:-32}
if ! command -v wrk >/dev/null || ! command -v hey >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk hey >/dev/null
fi
cargo build --release -q -p vouch
BIN=target/release/vouch
DATA=$(mktemp -d)
PORT=${PORT:-18790}
TOKEN=vat_bench_admin_token_0123456789abcdefghij
"$BIN" serve --data-dir "$DATA" --addr 127.0.0.1:$PORT --admin-token $TOKEN >"$DATA/out" 2>"$DATA/err" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
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
    print(json.dumps({"user_id": uid, "signature": sig, "attributes": {"plan": "pro", "seats": i % 50}}))
PY
URL=http://127.0.0.1:$PORT
# Warm up: create the users once.
BODIES=$BODIES PK=$PK wrk -t2 -c16 -d3s -s bench/identify.lua $URL >/dev/null
run_wrk() { wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "$@"; }
HZ=$(run_wrk $URL/healthz)
ID=$(BODIES=$BODIES PK=$PK run_wrk -s bench/identify.lua $URL)
rps() { awk '/Requests\/sec/ {print $2}'; }
pct() { awk -v p="$1" '$1==p {print $2}'; }
SESSION=$(curl -s -X POST $URL/v1/identify -H "Authorization: Bearer $PK" -H 'Content-Type: application/json' -d "$(head -1 "$BODIES")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])')
TR=$(SESSION=$SESSION run_wrk -s bench/track.lua $URL)
ME=$(SESSION=$SESSION run_wrk -s bench/me.lua $URL/v1/me)
HZ_RPS=$(echo "$HZ" | rps); ID_RPS=$(echo "$ID" | rps)
CPU_S=$(awk '{print ($14+$15)/100}' /proc/$PID/stat)
# Half of the measured identify maximum, spread over the connections (hey -q is per worker).
HALF=$(python3 -c "print(max(1, int(float('$ID_RPS') / 2 / 16)))")
BODY=$(head -1 "$BODIES")
HEY=$(hey -z "${DUR}s" -c 16 -q "$HALF" -m POST -H "Authorization: Bearer $PK" -T application/json -d "$BODY" $URL/v1/identify)
HEY_RPS=$(echo "$HEY" | awk '/Requests\/sec/ {print $2}')
HEY_P50=$(echo "$HEY" | awk '/ 50% in/ {print $3}')
HEY_P99=$(echo "$HEY" | awk '/ 99% in/ {print $3}')
HEY_ERR=$(echo "$HEY" | awk '/Status code distribution/ {f=1; next} f && /\[/ && $1 != "[200]" {e+=$2} END {print e+0}')
RSS=$(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$PID/status)
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
ratio=$(python3 -c "print(f'{float(\"$ID_RPS\")/float(\"$HZ_RPS\")*100:.0f} %')")
cat <<MD
Machine: $(nproc) cores, $(uname -r); commit $(git rev-parse --short HEAD 2>/dev/null || echo '-'); ${DUR}s per run, $CONNS connections (wrk), 16 (hey)

| endpoint | requests/s | p50 | p99 |
|---|---|---|---|
| GET /healthz (ceiling) | $HZ_RPS | $(echo "$HZ" | pct 50%) | $(echo "$HZ" | pct 99%) |
| POST /v1/identify, durable (max) | $ID_RPS | $(echo "$ID" | pct 50%) | $(echo "$ID" | pct 99%) |
| POST /v1/track, durable (max) | $(echo "$TR" | rps) | $(echo "$TR" | pct 50%) | $(echo "$TR" | pct 99%) |
| GET /v1/me (max) | $(echo "$ME" | rps) | $(echo "$ME" | pct 50%) | $(echo "$ME" | pct 99%) |
| POST /v1/identify at half max (hey) | $HEY_RPS | ${HEY_P50}s | ${HEY_P99}s |

identify ÷ healthz = $ratio; non-200 answers at half rate: $HEY_ERR; server peak RSS $RSS; server CPU time over the whole run ${CPU_S} s; start-up to ready on the existing data directory ${STARTUP_MS} ms
MD
