#!/usr/bin/env bash
# Schema-driven testing: schemathesis against /openapi.json of a running `vouch serve`.
# Every operation is tested, none excluded; three runs, one per way of authenticating
# (publishable key, session token, admin token), so that each operation is reached past
# its authentication. Checks: no server error, every status and body as the schema says.
#
# Environment: VOUCH_BIN (default target/debug/vouch), MAX_EXAMPLES (30), HARDENING_OUT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

VOUCH_BIN=${VOUCH_BIN:-target/debug/vouch}
MAX_EXAMPLES=${MAX_EXAMPLES:-30}
OUT=${HARDENING_OUT:-$(mktemp -d)}
ADMIN_TOKEN=vat_schema_test_admin_token_0123456789abcdefghij
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
mkdir -p "$OUT"
command -v schemathesis >/dev/null || { echo "schema: schemathesis is missing (pip install schemathesis)"; exit 1; }
[ -x "$VOUCH_BIN" ] || { echo "schema: $VOUCH_BIN is missing; build it with cargo build -p vouch"; exit 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
DATA=$OUT/schema-data
mkdir -p "$DATA"
VOUCH_ADMIN_TOKEN=$ADMIN_TOKEN "$VOUCH_BIN" serve --data-dir "$DATA" --addr 127.0.0.1:$PORT \
  >>"$OUT/schema-server.stdout.log" 2>>"$OUT/schema-server.stderr.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -sf "$BASE/healthz" >/dev/null && break
  kill -0 $PID 2>/dev/null || { echo "schema: the server exited"; exit 1; }
  sleep 0.1
done

# A publishable key and a session token for the widget runs.
CREATED=$(curl -sf -X POST "$BASE/admin/v1/environments" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"schema"}')
read -r PK SECRET < <(python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["publishable_key"], c["secret"]["value"])' <<<"$CREATED")
printf '%s\n%s\n' "$SECRET" "$ADMIN_TOKEN" >>"$OUT/secrets.txt"
SESSION=$(curl -sf -X POST "$BASE/v1/identify" -H "Authorization: Bearer $PK" \
  -H 'Content-Type: application/json' -d '{"user_id":"schema-user"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])')

run() { # name, bearer, filters...
  local name=$1 bearer=$2; shift 2
  echo "schema: run '$name'"
  schemathesis run "$BASE/openapi.json" \
    --checks "$CHECKS" --max-examples "$MAX_EXAMPLES" --seed 42 --workers 1 \
    -H "Authorization: Bearer $bearer" --output-sanitize false \
    --report vcr,junit --report-vcr-path "$OUT/schema-$name.vcr.yaml" \
    --report-junit-path "$OUT/schema-$name.junit.xml" \
    --suppress-health-check all --request-timeout 40 "$@" \
    >"$OUT/schema-$name.txt" 2>&1
  local rc=$?
  tail -n 15 "$OUT/schema-$name.txt"
  return $rc
}

fail=0
# Widget calls first: the admin run may change or delete their environment.
run widget-publishable "$PK" --include-path /v1/sessions --include-path /v1/identify || fail=1
run widget-session "$SESSION" --include-path /v1/group --include-path /v1/track --include-path /v1/me || fail=1
run admin "$ADMIN_TOKEN" --include-path-regex '^/(?!v1/)' || fail=1

# Every operation was exercised, and how many cases ran.
python3 tests/hardening/schema_coverage.py "$OUT" "$BASE" || fail=1
kill -0 $PID 2>/dev/null || { echo "schema: the server died"; fail=1; }
exit $fail
