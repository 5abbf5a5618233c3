#!/usr/bin/env bash
# The .deb as an operator gets it: build it with cargo-deb, install it with dpkg,
# start the service, sign and identify a user with the admin API's revealed
# secret, restart, check the user is still there, remove the package (data and
# configuration kept), install it again (the same user still there), purge it
# (data and configuration gone). Needs root on Debian; replaces an installed
# vouch package and leaves none behind (the vouch system user stays).
#
#   bash scripts/test-deb.sh
#
# Where systemd is PID 1, systemctl runs the service. Elsewhere (containers, the
# CI sandbox) this script starts the installed unit's ExecStart= the way systemd
# would, reading the unit: as User=/Group= with no capabilities and
# no_new_privs, with Environment= and then EnvironmentFile=, in
# WorkingDirectory=, under UMask=, after creating StateDirectory= with
# StateDirectoryMode=. The other sandboxing directives (ProtectSystem=,
# SystemCallFilter=, …) and Restart= are then not exercised; the unit is checked
# by `systemd-analyze verify` and scored by `systemd-analyze security`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DEB_VERSION=3.8.0
UNIT=/lib/systemd/system/vouch.service
ENV_FILE=/etc/vouch/vouch.env
DATA=/var/lib/vouch
TOKEN=vat_deb_test_admin_token_0123456789abcdefghij
USER_ID=deb-user-1
WORK=$(mktemp -d)
passed=0
failed=0

say() { printf 'test-deb: %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok: %s\n' "$*"; }
fail() {
  failed=$((failed + 1))
  printf 'FAILED: %s\n' "$*" >&2
  summary
  exit 1
}
summary() { printf '%s passed, %s failed\n' "$passed" "$failed"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

if [ "$(id -u)" -ne 0 ]; then
  echo "test-deb.sh installs a Debian package system-wide: run it as root" >&2
  exit 1
fi
for tool in dpkg dpkg-deb dpkg-statoverride adduser curl python3 cargo; do
  command -v "$tool" >/dev/null || { echo "test-deb.sh needs $tool" >&2; exit 1; }
done

SYSTEMD=false
[ "$(ps -p 1 -o comm= | tr -d ' ')" = systemd ] && SYSTEMD=true

# dpkg refuses to run while apt or another dpkg holds its lock: wait for it.
dpkg_run() {
  local i out
  for i in $(seq 60); do
    if out=$(dpkg "$@" 2>&1); then
      printf '%s\n' "$out" | sed 's/^/  dpkg: /'
      return 0
    fi
    if printf '%s' "$out" | grep -q 'lock'; then sleep 2; continue; fi
    printf '%s\n' "$out" | sed 's/^/  dpkg: /' >&2
    return 1
  done
  echo "dpkg lock still held after 2 minutes" >&2
  return 1
}

# Known to dpkg in any state (installed, removed with its conffiles left, half-done).
known() { dpkg-query -W -f='${Status}' vouch 2>/dev/null | grep -qv 'not-installed'; }
not_known() { ! known; }
no_override() { ! dpkg-statoverride --list "$ENV_FILE" >/dev/null; }

PID=
cleanup() {
  stop_service >/dev/null 2>&1 || true
  if known; then dpkg_run --purge vouch >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the service, by systemd or the way systemd would run it ---------------------------

unit_values() { sed -n "s/^$1=//p" "$UNIT"; }
unit_value() { unit_values "$1" | tail -1; }

# Environment= and EnvironmentFile= (in that order: the file wins), one
# NAME=value per line. The file's syntax as systemd reads it: comments, blank
# lines, optional quotes around the value.
service_environment() {
  local line f assignment
  local -a assignments
  while IFS= read -r line; do
    read -r -a assignments <<<"$line"
    for assignment in "${assignments[@]}"; do printf '%s\n' "${assignment//\"/}"; done
  done < <(unit_values Environment)
  while IFS= read -r f; do
    f=${f#-}
    [ -r "$f" ] || continue
    while IFS= read -r line || [ -n "$line" ]; do
      line=${line#"${line%%[![:space:]]*}"}
      case $line in '' | '#'* | ';'*) continue ;; esac
      if [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
        local name=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
        value=${value%"${value##*[![:space:]]}"}
        if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
        printf '%s=%s\n' "$name" "$value"
      fi
    done <"$f"
  done < <(unit_values EnvironmentFile)
}

start_service() {
  if $SYSTEMD; then
    systemctl daemon-reload
    systemctl start vouch
    PID=$(systemctl show -p MainPID --value vouch)
    return
  fi
  local user group home shell workdir umask_value state mode
  user=$(unit_value User)
  group=$(unit_value Group)
  workdir=$(unit_value WorkingDirectory)
  umask_value=$(unit_value UMask)
  state=$(unit_value StateDirectory)
  mode=$(unit_value StateDirectoryMode)
  home=$(getent passwd "$user" | cut -d: -f6)
  shell=$(getent passwd "$user" | cut -d: -f7)
  # systemd creates (or re-owns) the state directory before every start.
  install -d -o "$user" -g "$group" -m "${mode:-0755}" "/var/lib/$state"
  local -a env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    "HOME=$home" "USER=$user" "LOGNAME=$user" "SHELL=$shell")
  mapfile -t -O ${#env[@]} env < <(service_environment)
  local -a exec_start
  read -r -a exec_start <<<"$(unit_value ExecStart)"
  (
    umask "${umask_value:-0022}"
    cd "$workdir"
    exec env -i "${env[@]}" setpriv --reuid="$user" --regid="$group" --init-groups \
      --no-new-privs --inh-caps=-all --bounding-set=-all -- "${exec_start[@]}"
  ) </dev/null >"$WORK/stdout" 2>"$WORK/stderr" &
  PID=$!
}

stop_service() {
  if $SYSTEMD; then
    systemctl stop vouch
    PID=
    return
  fi
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  local status=0
  wait "$PID" || status=$?
  PID=
  return "$status"
}

service_log() {
  if $SYSTEMD; then journalctl -u vouch --no-pager -n 50 | grep -v 'Identity secret\|Admin token' || true; else cat "$WORK/stderr"; fi
}

wait_ready() {
  local i
  for i in $(seq 150); do
    if /usr/bin/vouch healthcheck --url "http://127.0.0.1:$PORT/readyz" --timeout 2s >/dev/null 2>&1; then return 0; fi
    if ! $SYSTEMD && ! kill -0 "$PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "--- the service's log" >&2
  service_log >&2
  return 1
}

# ---- HTTP ---------------------------------------------------------------------------

# api METHOD PATH [BODY] [BEARER]: prints the body; fails on a status >= 300.
api() {
  local method=$1 path=$2 body=${3:-} bearer=${4:-$TOKEN} status
  local -a args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $bearer")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  status=$(curl "${args[@]}" "http://127.0.0.1:$PORT$path")
  if [ "$status" -ge 300 ]; then
    echo "$method $path answered $status: $(cat "$WORK/body")" >&2
    return 1
  fi
  cat "$WORK/body"
}

json() { python3 -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[int(k)] if isinstance(v, list) else v[k]
print(v if not isinstance(v, bool) else str(v).lower())' "$@"; }

mode_owner() { stat -c '%a %U:%G' "$1"; }

# ---- build --------------------------------------------------------------------------

say "systemd is PID 1: $SYSTEMD"
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; then
  say "installing cargo-deb $CARGO_DEB_VERSION"
  cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
DEB=$(cargo deb -p vouch --locked | tail -1)
[ -f "$DEB" ] || fail "cargo deb made no package (said: $DEB)"
say "built $DEB ($(du -h "$DEB" | cut -f1))"
# The release profile carries no debug info (it once shipped 112 MB of it).
BIN_BYTES=$(stat -c %s target/release/vouch)
check "the release binary is at most 40 MB ($((BIN_BYTES / 1000000)) MB)" test "$BIN_BYTES" -le 40000000
dpkg-deb --contents "$DEB" >"$WORK/contents"
contains() { grep -Eq "$1" "$WORK/contents"; }
check "the package has the binary in /usr/bin" contains '^-rwxr-xr-x (root/root|0/0) .* \./usr/bin/vouch$'
check "the package has the unit" contains '^-rw-r--r-- (root/root|0/0) .* \./(usr/)?lib/systemd/system/vouch\.service$'
check "the package has the configuration file, mode 0640" contains '^-rw-r----- (root/root|0/0) .* \./etc/vouch/vouch\.env$'
check "the configuration file is a conffile" bash -c "dpkg-deb --ctrl-tarfile '$DEB' | tar -xO ./conffiles | grep -qx /etc/vouch/vouch.env"
depends=$(dpkg-deb --field "$DEB" Depends)
check "it depends on adduser and ca-certificates ($depends)" bash -c "[[ '$depends' == *adduser* && '$depends' == *ca-certificates* ]]"

# ---- install ------------------------------------------------------------------------

if known; then
  say "purging the vouch package already on this machine"
  dpkg_run --purge vouch
fi
dpkg_run --install "$DEB" || fail "dpkg --install"
ok "dpkg --install"
check "the vouch system user exists, home $DATA, no login shell" \
  bash -c "getent passwd vouch | grep -Eq '^vouch:x:[0-9]+:[0-9]+:.*:$DATA:/usr/sbin/nologin$'"
check "$DATA is 0700 vouch:vouch ($(mode_owner $DATA))" test "$(mode_owner $DATA)" = "700 vouch:vouch"
check "$ENV_FILE is 0640 root:vouch ($(mode_owner $ENV_FILE))" test "$(mode_owner $ENV_FILE)" = "640 root:vouch"
check "the unit is enabled (multi-user.target wants it)" test -L /etc/systemd/system/multi-user.target.wants/vouch.service
check "the installed binary runs: $(/usr/bin/vouch --version)" bash -c '/usr/bin/vouch --version | grep -q "^vouch [0-9]"'

if command -v systemd-analyze >/dev/null; then
  # Offline checks: the unit parses, names existing binaries and users.
  if systemd-analyze verify "$UNIT" >"$WORK/verify" 2>&1; then
    ok "systemd-analyze verify $UNIT"
  else
    cat "$WORK/verify" >&2
    fail "systemd-analyze verify $UNIT"
  fi
  if systemd-analyze security --offline=true "$UNIT" >"$WORK/security" 2>&1; then
    say "$(grep -i 'overall exposure' "$WORK/security" || tail -1 "$WORK/security")"
  else
    say "systemd-analyze security --offline is not available here"
  fi
else
  say "systemd-analyze is not installed: the unit file is not verified"
fi

# ---- configure and start ------------------------------------------------------------

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >>"$ENV_FILE" <<EOF

# added by scripts/test-deb.sh
VOUCH_ADDR=127.0.0.1:$PORT
VOUCH_ADMIN_TOKEN="$TOKEN"
EOF
start_service
wait_ready || fail "the service is ready on port $PORT"
ok "the service is ready (GET /readyz, by vouch healthcheck)"
if ! $SYSTEMD; then
  check "it runs as vouch ($(ps -o user= -p "$PID"))" test "$(ps -o user= -p "$PID" | tr -d ' ')" = vouch
  check "it runs with no_new_privs and no capabilities" \
    bash -c "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$PID/status && grep -q '^CapBnd:[[:space:]]*0*$' /proc/$PID/status"
fi
check "its database is 0600 vouch:vouch" test "$(mode_owner $DATA/vouch.db)" = "600 vouch:vouch"
check "its generated master key is 0600 vouch:vouch" test "$(mode_owner $DATA/master.key)" = "600 vouch:vouch"

envs=$(api GET /admin/v1/environments) || fail "list environments with VOUCH_ADMIN_TOKEN"
ENV_ID=$(json data 0 id <<<"$envs")
PK=$(json data 0 publishable_key <<<"$envs")
KEY_ID=$(api GET "/admin/v1/environments/$ENV_ID/secrets" | json data 0 id)
SECRET=$(api GET "/admin/v1/environments/$ENV_ID/secrets/$KEY_ID?reveal=true" | json value)
ok "admin API: environment $ENV_ID, secret $KEY_ID revealed"
SIG=$(VOUCH_SECRET=$SECRET /usr/bin/vouch sign "$USER_ID")
answer=$(api POST /v1/identify "{\"user_id\": \"$USER_ID\", \"signature\": \"$SIG\", \"attributes\": {\"plan\": \"deb\"}}" "$PK") ||
  fail "a signed identify"
check "a signed identify verifies the user" test "$(json user verified <<<"$answer")/$(json user verified_by <<<"$answer")" = "true/signature"
check "vouch verify accepts the signature" bash -c "VOUCH_SECRET='$SECRET' /usr/bin/vouch verify '$USER_ID' --signature '$SIG' >/dev/null"

# ---- restart --------------------------------------------------------------------------

if $SYSTEMD; then
  systemctl restart vouch
else
  stop_service || fail "the service stops cleanly on SIGTERM"
  ok "the service stopped on SIGTERM with status 0"
  start_service
fi
wait_ready || fail "the service is ready again after a restart"
ok "restarted"
user=$(api GET "/admin/v1/environments/$ENV_ID/users/$USER_ID") || fail "the user after the restart"
check "the user is still there, verified, after the restart" test "$(json verified <<<"$user")/$(json attributes plan <<<"$user")" = "true/deb"
answer=$(api POST /v1/identify "{\"user_id\": \"$USER_ID\", \"signature\": \"$SIG\"}" "$PK") || fail "identify after the restart"
check "the same signature still verifies (the master key was kept)" test "$(json user verified <<<"$answer")" = true
stop_service || fail "the service stops cleanly"

# ---- remove, reinstall, purge ---------------------------------------------------------

dpkg_run --remove vouch || fail "dpkg --remove"
ok "dpkg --remove"
check "remove: the binary is gone" test ! -e /usr/bin/vouch
check "remove: the data is kept" test -s "$DATA/vouch.db" -a -s "$DATA/master.key"
check "remove: the edited configuration is kept" grep -q "^VOUCH_ADDR=127.0.0.1:$PORT$" "$ENV_FILE"
user_exists() { getent passwd vouch >/dev/null; }
check "remove: the vouch user stays" user_exists

dpkg_run --install "$DEB" || fail "dpkg --install again"
check "reinstall: the configuration still has the edits" grep -q "^VOUCH_ADDR=127.0.0.1:$PORT$" "$ENV_FILE"
check "reinstall: $ENV_FILE is still 0640 root:vouch" test "$(mode_owner $ENV_FILE)" = "640 root:vouch"
check "reinstall: the unit is enabled again" test -L /etc/systemd/system/multi-user.target.wants/vouch.service
start_service
wait_ready || fail "the service is ready after the reinstall"
user=$(api GET "/admin/v1/environments/$ENV_ID/users/$USER_ID") || fail "the user after the reinstall"
check "reinstall: the user from before is still there" test "$(json id <<<"$user")" = "$USER_ID"
stop_service || fail "the service stops cleanly"

dpkg_run --purge vouch || fail "dpkg --purge"
ok "dpkg --purge"
check "purge: dpkg no longer knows the package" not_known
check "purge: the data is gone" test ! -e "$DATA"
check "purge: the configuration is gone" test ! -e /etc/vouch
check "purge: no stat override is left" no_override
check "purge: the unit is no longer enabled" test ! -e /etc/systemd/system/multi-user.target.wants/vouch.service
summary
