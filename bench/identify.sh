#!/usr/bin/env bash
# Load benchmark of the server: durable identify against /healthz on the same
# server in the same run (the ceiling), then identify at half its maximum rate.
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
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
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
HZ_RPS=$(echo "$HZ" | rps); ID_RPS=$(echo "$ID" | rps)
# Half of the measured identify maximum, spread over the connections (hey -q is per worker).
HALF=$(python3 -c "print(max(1, int(float('$ID_RPS') / 2 / 16)))")
BODY=$(head -1 "$BODIES")
HEY=$(hey -z "${DUR}s" -c 16 -q "$HALF" -m POST -H "Authorization: Bearer $PK" -T application/json -d "$BODY" $URL/v1/identify)
HEY_RPS=$(echo "$HEY" | awk '/Requests\/sec/ {print $2}')
HEY_P50=$(echo "$HEY" | awk '/ 50%% in/ {print $3}')
HEY_P99=$(echo "$HEY" | awk '/ 99%% in/ {print $3}')
HEY_ERR=$(echo "$HEY" | awk '/Status code distribution/ {f=1; next} f && /\[/ && $1 != "[200]" {e+=$2} END {print e+0}')
RSS=$(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$PID/status)
ratio=$(python3 -c "print(f'{float(\"$ID_RPS\")/float(\"$HZ_RPS\")*100:.0f} %')")
cat <<MD
Machine: $(nproc) cores, $(uname -r); commit $(git rev-parse --short HEAD 2>/dev/null || echo '-'); ${DUR}s per run, $CONNS connections (wrk), 16 (hey)

| endpoint | requests/s | p50 | p99 |
|---|---|---|---|
| GET /healthz (ceiling) | $HZ_RPS | $(echo "$HZ" | pct 50%) | $(echo "$HZ" | pct 99%) |
| POST /v1/identify, durable (max) | $ID_RPS | $(echo "$ID" | pct 50%) | $(echo "$ID" | pct 99%) |
| POST /v1/identify at half max | $HEY_RPS | ${HEY_P50}s | ${HEY_P99}s |

identify ÷ healthz = $ratio; non-200 answers at half rate: $HEY_ERR; server peak RSS $RSS
MD
