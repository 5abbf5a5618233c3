#!/usr/bin/env bash
# A flood of wrong signatures against one user, and that user's own correct identifies
# from another address meanwhile, against the release binary on SQLite, loopback only.
#
#   bench/wrong_proofs.sh [duration-seconds]      (default 10)
#
# The attacker is wrk (from 127.0.0.1, 32 connections, every request a wrong signature for
# user "victim"); the victim is a Python client bound to 127.0.0.3 that sends a correct
# signature for "victim" every 20 ms on a fresh connection. Prints what the attacker got
# (requests/s, how many 401 and 429) and what the victim got (statuses, p50, p99, max).
# Needs wrk (Debian package; installed when missing) and python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR=${1:-10}
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
[ -n "${VOUCH_BIN:-}" ] || cargo build --release -q -p vouch
BIN=${VOUCH_BIN:-target/release/vouch}
DATA=$(mktemp -d)
PORT=${PORT:-18795}
"$BIN" serve --data-dir "$DATA" --addr 127.0.0.1:$PORT --admin-token vat_bench_admin_token_0123456789abcdefghij \
  >"$DATA/out" 2>"$DATA/err" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 50); do grep -q "listening" "$DATA/out" 2>/dev/null && break; sleep 0.1; done
PK=$(awk '/Publishable key:/ {print $3}' "$DATA/out")
SK=$(awk '/Identity secret:/ {print $3}' "$DATA/out")
cat >"$DATA/wrong.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $PK"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user_id": "victim", "signature": "$(printf '0%.0s' $(seq 64))"}'
local threads = {}
setup = function(thread) table.insert(threads, thread) end
c401, c429, cother = 0, 0, 0
response = function(status)
  if status == 401 then c401 = c401 + 1 elseif status == 429 then c429 = c429 + 1 else cother = cother + 1 end
end
done = function()
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("c401"); b = b + t:get("c429"); c = c + t:get("cother") end
  io.write(string.format("STATUS 401 %d\nSTATUS 429 %d\nSTATUS other %d\n", a, b, c))
end
LUA
python3 - "$PORT" "$PK" "$SK" "$DUR" >"$DATA/victim" <<'PY' &
import hashlib, hmac, http.client, json, socket, statistics, sys, time
port, pk, sk, dur = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
body = json.dumps({"user_id": "victim", "signature": hmac.new(sk.encode(), b"victim", hashlib.sha256).hexdigest()})
took, statuses = [], {}
time.sleep(1)  # let the flood start first
end = time.monotonic() + dur - 2
while time.monotonic() < end:
    t = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.3", 0))
    c.request("POST", "/v1/identify", body, {"Authorization": f"Bearer {pk}", "Content-Type": "application/json"})
    st = c.getresponse().status
    c.close()
    took.append((time.monotonic() - t) * 1000)
    statuses[st] = statuses.get(st, 0) + 1
    time.sleep(0.02)
took.sort()
print(f"victim: {len(took)} correct identifies from 127.0.0.3 during the flood: statuses {statuses}; "
      f"p50 {statistics.median(took):.1f} ms, p99 {took[int(len(took) * 0.99) - 1]:.1f} ms, max {took[-1]:.1f} ms")
PY
VICTIM=$!
wrk -t2 -c32 -d"${DUR}s" -s "$DATA/wrong.lua" "http://127.0.0.1:$PORT/v1/identify" >"$DATA/wrk" 2>&1
wait "$VICTIM"
rps=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk")
statuses=$(awk '/^STATUS/ {printf "%s: %s  ", $2, $3}' "$DATA/wrk")
echo "attacker: $rps wrong signatures/s from 127.0.0.1 for ${DUR} s; answers: $statuses"
cat "$DATA/victim"
