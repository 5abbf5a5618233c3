#!/usr/bin/env bash
# Runs every signing recipe against the committed test vectors and against a live Vouch.
#
#   bash recipes/run.sh            # install runtimes (Debian packages), build, start Vouch, check
#   VOUCH_BIN=path/to/vouch bash recipes/run.sh
#   RECIPES_LANGS=node,python bash recipes/run.sh   # a subset
#   RECIPES_NO_INSTALL=1 bash recipes/run.sh        # use what is installed, skip the rest
#
# Prints a table (language → vectors / live Vouch / why skipped) and "N passed, N failed"
# as its last line; exits non-zero on any failure. Node, Python, Ruby, PHP, Go, Elixir and
# Java are required (their runtimes install from Debian and the npm/PyPI registries);
# C# runs only where a .NET 8 SDK is already installed, since Debian 12 has none.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export RECIPES_BUILD="${RECIPES_BUILD:-$ROOT/recipes/.build}"
export RECIPES_REQUIRE="${RECIPES_REQUIRE-node,python,ruby,php,go,elixir,java}"
export LC_ALL=C.UTF-8 LANG=C.UTF-8
log() { echo "[recipes] $*" >&2; }

# --- 1. runtimes and libraries ------------------------------------------------------------
if [ -z "${RECIPES_NO_INSTALL:-}" ]; then
  need=()
  for pkg in ruby php-cli golang-go elixir erlang-jose erlang-jiffy default-jdk-headless \
    libjackson2-databind-java ruby-jwt golang-github-golang-jwt-jwt-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  command -v node >/dev/null || need+=(nodejs npm)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null \
      || log "apt-get install failed; the missing languages will be reported"
  fi
  if [ ! -d recipes/node/node_modules/canonicalize ] || [ ! -d recipes/node/node_modules/jsonwebtoken ]; then
    log "npm ci (recipes/node)"
    (cd recipes/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || log "npm ci failed"
  fi
  if ! python3 -c 'import rfc8785, jwt, cryptography' 2>/dev/null; then
    log "pip install -r recipes/python/requirements.txt"
    python3 -m pip install -q -r recipes/python/requirements.txt 2>/dev/null \
      || python3 -m pip install -q --break-system-packages -r recipes/python/requirements.txt \
      || log "pip install failed"
  fi
fi

# --- 2. compile Go, Java and C# -----------------------------------------------------------
rm -rf "$RECIPES_BUILD"
mkdir -p "$RECIPES_BUILD"
if command -v go >/dev/null; then
  # Build offline against Debian's golang-jwt (the registry for Go modules is not used).
  src="$RECIPES_BUILD/go/src"
  mkdir -p "$src"
  cp -r recipes/go/. "$src/"
  (
    cd "$src" &&
      go mod edit -replace github.com/golang-jwt/jwt/v4=/usr/share/gocode/src/github.com/golang-jwt/jwt &&
      for p in sign_user sign_company sign_attributes identity_token; do
        GOFLAGS=-mod=mod GOPROXY=off go build -o "../$p" "./$p" || exit 1
      done
  ) || log "go build failed"
fi
if command -v javac >/dev/null; then
  cp=/usr/share/java/jackson-core.jar:/usr/share/java/jackson-databind.jar:/usr/share/java/jackson-annotations.jar
  javac -Xlint:all -Werror -cp "$cp" -d "$RECIPES_BUILD/java" recipes/java/*.java || log "javac failed"
fi
if command -v dotnet >/dev/null; then
  dotnet build recipes/csharp/VouchRecipes.csproj -c Release -o "$RECIPES_BUILD/csharp" -v quiet >/dev/null \
    || log "dotnet build failed"
fi

# --- 3. a live Vouch on a free port --------------------------------------------------------
if [ -z "${VOUCH_BIN:-}" ]; then
  VOUCH_BIN="$ROOT/target/debug/vouch"
  log "cargo build -p vouch"
  cargo build -q -p vouch || { echo "0 passed, 1 failed"; exit 1; }
fi
data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export VOUCH_ADMIN_TOKEN="recipes-$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
env -u VOUCH_PUBLIC_URL -u VOUCH_DATABASE_URL -u VOUCH_MASTER_KEY -u VOUCH_DATA_DIR -u VOUCH_ADDR \
  "$VOUCH_BIN" serve --data-dir "$data" --addr "127.0.0.1:$port" --allow-private-webhooks >"$data/stdout" 2>"$data/stderr" &
server=$!
cleanup() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.2
done
banner="$(cat "$data/stdout")"
VOUCH_PK="$(grep -oE 'pk_(test|live)_[A-Za-z0-9]+' <<<"$banner" | head -1)"
VOUCH_SK="$(sed -nE 's/.*Identity secret:[[:space:]]+([^[:space:]]+).*/\1/p' <<<"$banner" | head -1)"
VOUCH_ENV="$(grep -oE 'env_[A-Za-z0-9]+' <<<"$banner" | head -1)"
VOUCH_KID="$(sed -nE 's/.*Identity secret:.*\((key_[A-Za-z0-9]+)\).*/\1/p' <<<"$banner" | head -1)"
if [ -z "$VOUCH_PK" ] || [ -z "$VOUCH_SK" ] || [ -z "$VOUCH_KID" ] || [ -z "$VOUCH_ENV" ]; then
  log "could not start Vouch or read its banner:"
  cat "$data/stdout" "$data/stderr" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
export VOUCH_URL="http://127.0.0.1:$port" VOUCH_PK VOUCH_SK VOUCH_KID VOUCH_ENV
log "Vouch at $VOUCH_URL (${VOUCH_KID})"

# --- 4. the checks -------------------------------------------------------------------------
python3 recipes/check.py
