#!/usr/bin/env bash
# Soak: measure the maximum signed-identify rate with wrk for a few seconds, then hold
# about half of it with hey (rate limited) for DURATION seconds, in SEGMENT-second slices.
# Samples the server's RSS every few seconds. Fails on any error answer, or when RSS after
# the warm-up is not flat within 10 %. Prints p99 latency per slice.
#
#   DURATION=60 tests/hardening/soak.sh        # CI
#   DURATION=600 tests/hardening/soak.sh       # the long run
# Environment: VOUCH_BIN (default target/debug/vouch), HARDENING_OUT (logs, data dir).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

DURATION=${DURATION:-60}
SEGMENT=${SEGMENT:-10}
WARMUP=${WARMUP:-$((DURATION / 5 > SEGMENT ? DURATION / 5 : SEGMENT))}
VOUCH_BIN=${VOUCH_BIN:-target/debug/vouch}
OUT=${HARDENING_OUT:-$(mktemp -d)}
ADMIN_TOKEN=vat_soak_test_admin_token_0123456789abcdefghijkl
mkdir -p "$OUT"
for tool in wrk hey; do
  command -v $tool >/dev/null || { echo "soak: $tool is missing (apt-get install -y wrk hey)"; exit 1; }
done
[ -x "$VOUCH_BIN" ] || { echo "soak: $VOUCH_BIN is missing; build it with cargo build -p vouch"; exit 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
DATA=$OUT/soak-data
mkdir -p "$DATA"
VOUCH_ADMIN_TOKEN=$ADMIN_TOKEN VOUCH_LOG=warn "$VOUCH_BIN" serve --data-dir "$DATA" --addr 127.0.0.1:$PORT \
  >>"$OUT/soak-server.stdout.log" 2>>"$OUT/soak-server.stderr.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -sf "$BASE/healthz" >/dev/null && break
  kill -0 $PID 2>/dev/null || { echo "soak: the server exited"; exit 1; }
  sleep 0.1
done

# An environment, and a signed identify with attributes as the request body.
CREATED=$(curl -sf -X POST "$BASE/admin/v1/environments" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"soak"}')
read -r PK SECRET < <(python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["publishable_key"], c["secret"]["value"])' <<<"$CREATED")
printf '%s\n%s\n' "$SECRET" "$ADMIN_TOKEN" >>"$OUT/secrets.txt"
BODY=$OUT/soak-body.json
python3 - "$SECRET" >"$BODY" <<'EOF'
import hashlib, hmac, json, sys
uid = "soak-user-42"
sig = hmac.new(sys.argv[1].encode(), uid.encode(), hashlib.sha256).hexdigest()
print(json.dumps({"user_id": uid, "signature": sig, "attributes": {"plan": "pro", "seats": 12, "name": "Soak"}}))
EOF
LUA=$OUT/soak.lua
python3 - "$PK" "$BODY" >"$LUA" <<'EOF'
import json, sys
body = open(sys.argv[2]).read().strip()
print('wrk.method = "POST"')
print('wrk.headers["Content-Type"] = "application/json"')
print(f'wrk.headers["Authorization"] = "Bearer {sys.argv[1]}"')
print(f'wrk.body = {json.dumps(body)}')
EOF

# 1. The maximum rate.
wrk -t2 -c32 -d5s -s "$LUA" "$BASE/v1/identify" >"$OUT/soak-wrk.txt" 2>&1
MAX=$(awk '/Requests\/sec/ {print int($2)}' "$OUT/soak-wrk.txt")
if grep -q "Non-2xx" "$OUT/soak-wrk.txt" || [ -z "$MAX" ] || [ "$MAX" -le 0 ]; then
  echo "soak: the maximum-rate run failed:"; cat "$OUT/soak-wrk.txt"; exit 1
fi
WORKERS=8
RATE=$((MAX / 2))
PER_WORKER=$(python3 -c "print(max(1.0, $RATE / $WORKERS))")
echo "soak: maximum ${MAX} identify/s (wrk, 32 connections, 5 s); holding ${RATE}/s for ${DURATION} s"

# 2. Hold half of it, sampling RSS.
RSS_LOG=$OUT/soak-rss.txt
: >"$RSS_LOG"
( start=$(date +%s)
  while kill -0 $PID 2>/dev/null; do
    echo "$(( $(date +%s) - start )) $(ps -o rss= -p $PID | tr -d ' ')" >>"$RSS_LOG"
    sleep 3
  done ) &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true; kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT

errors=0; total=0; elapsed=0; p99s=()
while [ "$elapsed" -lt "$DURATION" ]; do
  slice=$SEGMENT
  [ $((elapsed + slice)) -gt "$DURATION" ] && slice=$((DURATION - elapsed))
  out=$(hey -z ${slice}s -c $WORKERS -q "$PER_WORKER" -m POST -T application/json \
        -H "Authorization: Bearer $PK" -D "$BODY" "$BASE/v1/identify" 2>&1)
  echo "$out" >>"$OUT/soak-hey.txt"
  elapsed=$((elapsed + slice))
  read -r all bad rps p99 < <(python3 -c '
import re, sys
text = sys.stdin.read()
status, _, errs = text.partition("Error distribution:")
status = status.partition("Status code distribution:")[2]
codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", status)}
failed = sum(int(n) for n in re.findall(r"\[(\d+)\]", errs))
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p99 = re.search(r"99%+ in ([\d.]+) secs", text)
total = sum(codes.values()) + failed
print(total, total - codes.get(200, 0), rps.group(1) if rps else 0,
      round(float(p99.group(1)) * 1000, 1) if p99 else "nan")
' <<<"$out")
  rss=$(tail -n 1 "$RSS_LOG" | awk '{print $2}')
  total=$((total + all)); errors=$((errors + bad))
  p99s+=("${elapsed}s:${p99}ms")
  echo "soak: t=${elapsed}s ${rps} req/s, p99 ${p99} ms, ${bad} errors, RSS ${rss} KiB"
done
kill $SAMPLER 2>/dev/null || true

# 3. Verdict.
read -r RMIN RMAX < <(awk -v w="$WARMUP" '$1 >= w && $2 > 0 {if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2} END {print min, max}' "$RSS_LOG")
GROWTH=$(python3 -c "print(round(100 * ($RMAX - $RMIN) / $RMIN, 1))")
echo "soak: ${DURATION} s at ${RATE}/s (50 % of ${MAX}/s): ${total} requests, ${errors} errors; RSS after ${WARMUP} s warm-up ${RMIN}–${RMAX} KiB (${GROWTH} %); p99 ${p99s[*]}"
kill -0 $PID 2>/dev/null || { echo "soak: the server died"; exit 1; }
fail=0
[ "$errors" -eq 0 ] || { echo "soak: FAIL: $errors error answers"; fail=1; }
[ "$total" -gt 0 ] || { echo "soak: FAIL: no requests were made"; fail=1; }
python3 -c "import sys; sys.exit(0 if $RMAX <= 1.10 * $RMIN else 1)" || { echo "soak: FAIL: RSS grew more than 10 % after warm-up"; fail=1; }
exit $fail
