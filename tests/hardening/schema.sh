#!/usr/bin/env bash
# Schema-driven testing: schemathesis against /openapi.json of a running `vouch serve`.
# Every operation is tested, none excluded. The operations are split by how they
# authenticate (publishable key, session token, admin token), so that each is reached
# past its authentication, and path parameters name real objects (an environment, a
# secret, a user, a webhook) so that calls get past 404. Checks: no server error, and
# every status, content type and body as the schema says.
#
# Runs inside its own network namespace (loopback only): fuzzed webhook URLs must never
# turn into traffic to real hosts.
#
# Environment: VOUCH_BIN (default target/debug/vouch), MAX_EXAMPLES (30), HARDENING_OUT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [ -z "${VOUCH_IN_NETNS:-}" ]; then
  exec unshare -rn env VOUCH_IN_NETNS=1 bash -c 'ip link set lo up && exec bash "$0"' "${BASH_SOURCE[0]}"
fi

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
curl -sf "$BASE/openapi.json" >"$OUT/openapi.json"

admin() { # method path [json]
  curl -sf -X "$1" "$BASE$2" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
field() { python3 -c "import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split('.'): v=v[k]
print(v)" "$1"; }

# Objects for the path parameters: one environment for everything, one more for DELETE.
CREATED=$(admin POST /admin/v1/environments '{"name":"schema"}')
ENV=$(field id <<<"$CREATED"); PK=$(field publishable_key <<<"$CREATED")
KEY=$(field secret.id <<<"$CREATED"); SECRET=$(field secret.value <<<"$CREATED")
DOOMED=$(admin POST /admin/v1/environments '{"name":"to delete"}')
DOOMED_ENV=$(field id <<<"$DOOMED")
WEBHOOK=$(admin POST "/admin/v1/environments/$ENV/webhooks" '{"url":"https://hooks.example.com/vouch"}')
HOOK=$(field id <<<"$WEBHOOK")
printf '%s\n%s\n%s\n%s\n' "$SECRET" "$(field secret.value <<<"$DOOMED")" "$(field secret <<<"$WEBHOOK")" "$ADMIN_TOKEN" >>"$OUT/secrets.txt"
USER_ID=schema-user
SESSION=$(curl -sf -X POST "$BASE/v1/identify" -H "Authorization: Bearer $PK" \
  -H 'Content-Type: application/json' -d "{\"user_id\":\"$USER_ID\"}" | field session_token)
curl -sf -X POST "$BASE/v1/track" -H "Authorization: Bearer $SESSION" -H 'Content-Type: application/json' \
  -d '{"event":"seeded"}' >/dev/null

config() { # env id -> a schemathesis.toml naming real objects
  cat <<TOML
[parameters]
env = "$1"
key_id = "$KEY"
user_id = "$USER_ID"
id = "$HOOK"
TOML
}
config "$ENV" >"$OUT/schemathesis.toml"
config "$DOOMED_ENV" >"$OUT/schemathesis-delete.toml"

run() { # name config bearer filters...
  local name=$1 cfg=$2 bearer=$3; shift 3
  local rc=0
  schemathesis --config-file "$cfg" run "$BASE/openapi.json" \
    --checks "$CHECKS" --max-examples "$MAX_EXAMPLES" --seed 42 --workers 1 \
    -H "Authorization: Bearer $bearer" --output-sanitize false \
    --report vcr,junit --report-vcr-path "$OUT/schema-$name.vcr.yaml" \
    --report-junit-path "$OUT/schema-$name.junit.xml" \
    --suppress-health-check all --request-timeout 40 "$@" \
    >"$OUT/schema-$name.txt" 2>&1 || rc=$?
  echo "schema: run '$name': $(grep -E '^\s+[0-9]+ generated' "$OUT/schema-$name.txt" | tr -s ' ' || echo '?') (exit $rc)"
  if [ $rc -ne 0 ]; then sed -n '/FAILURES/,/WARNINGS/p' "$OUT/schema-$name.txt" | head -n 80; fi
  return $rc
}

fail=0
# Widget calls first: the admin run changes settings and revokes secrets of their environment.
run widget-publishable "$OUT/schemathesis.toml" "$PK" --include-path /v1/sessions --include-path /v1/identify || fail=1
run widget-session "$OUT/schemathesis.toml" "$SESSION" --include-path /v1/group --include-path /v1/track --include-path /v1/me || fail=1
run admin "$OUT/schemathesis.toml" "$ADMIN_TOKEN" --include-path-regex '^/(?!v1/)' \
  --exclude-operation-id delete_environment || fail=1
# DELETE of an environment, on its own environment, so that it does not empty the others' runs.
run admin-delete-environment "$OUT/schemathesis-delete.toml" "$ADMIN_TOKEN" \
  --include-operation-id delete_environment || fail=1

# Every operation was exercised, and how many cases ran.
python3 tests/hardening/schema_coverage.py "$OUT" "$OUT/openapi.json" || fail=1
kill -0 $PID 2>/dev/null || { echo "schema: the server died"; fail=1; }
exit $fail
