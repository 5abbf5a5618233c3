#!/usr/bin/env bash
# A/B of two vouch binaries on identify, alternating A and B in one run so that the
# machine's drift hits both alike (SQLite, loopback, wrk with bench/identify.lua).
#
#   bench/ab.sh BIN_A BIN_B [rounds] [duration-seconds]      (defaults 4 and 10)
#
# Both servers run side by side on fresh data directories, each with its own signed
# bodies; only one is loaded at a time. Per round: A then B for an unchanged user, A then
# B for every call a change (B first on even rounds). Prints every run and, per kind, the
# median requests/s of each and the median of the per-round ratios B ÷ A.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -lt 2 ]; then
  echo "usage: bench/ab.sh BIN_A BIN_B [rounds] [duration-seconds]" >&2
  exit 2
fi
BINS=("$1" "$2")
ROUNDS=${3:-4}
DUR=${4:-10}
CONNS=${CONNS:-32}
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
for i in 0 1; do
  mkdir -p "$WORK/$i"
  "${BINS[$i]}" serve --data-dir "$WORK/$i" --addr 127.0.0.1:$((18870 + i)) \
    --admin-token vat_bench_admin_token_0123456789abcdefghij >"$WORK/$i.out" 2>"$WORK/$i.err" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q "listening" "$WORK/$i.out" 2>/dev/null && break; sleep 0.1; done
  python3 - "$(awk '/Identity secret:/ {print $3}' "$WORK/$i.out")" >"$WORK/$i.bodies" <<'PY'
import hmac, hashlib, json, sys
key = sys.argv[1].encode()
for i in range(5000):
    uid = f"user-{i}"
    sig = hmac.new(key, uid.encode(), hashlib.sha256).hexdigest()
    print(json.dumps({"user_id": uid, "signature": sig, "attributes": {"plan": "pro", "seats": i % 50, "visit": 0}}))
PY
  awk '/Publishable key:/ {print $3}' "$WORK/$i.out" >"$WORK/$i.pk"
done
# one SIDE CHANGE: a wrk run; prints requests/s.
one() {
  BODIES="$WORK/$1.bodies" PK=$(cat "$WORK/$1.pk") CHANGE=$2 \
    wrk -t2 -c"$CONNS" -d"${3:-$DUR}s" -s bench/identify.lua "http://127.0.0.1:$((18870 + $1))" |
    awk '/Requests\/sec/ {print $2}'
}
for i in 0 1; do one $i "" 3 >/dev/null; done   # creates the users
: >"$WORK/runs"
for round in $(seq "$ROUNDS"); do
  order=(0 1)
  [ $((round % 2)) = 0 ] && order=(1 0)
  for kind in unchanged change; do
    change=""
    [ "$kind" = change ] && change=1
    for i in "${order[@]}"; do
      # After a change run, the unchanged users are put back first (not measured).
      [ "$kind" = unchanged ] && one "$i" "" 3 >/dev/null
      rps=$(one "$i" "$change")
      echo "round $round $kind $([ "$i" = 0 ] && echo A || echo B) $rps" | tee -a "$WORK/runs"
    done
  done
done
python3 - "$WORK/runs" "${BINS[0]}" "${BINS[1]}" <<'PY'
import statistics, sys
runs, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
by = {}
for line in open(runs):
    _, r, kind, side, rps = line.split()
    by.setdefault(kind, {}).setdefault(int(r), {})[side] = float(rps)
print(f"A = {a}\nB = {b}")
for kind, rounds in by.items():
    ratios = [v["B"] / v["A"] for v in rounds.values()]
    a_med = statistics.median(v["A"] for v in rounds.values())
    b_med = statistics.median(v["B"] for v in rounds.values())
    print(f"identify, {kind}: A {a_med:.0f}/s, B {b_med:.0f}/s (medians of {len(ratios)} rounds); "
          f"B ÷ A per round {', '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f}")
PY
