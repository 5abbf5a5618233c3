#!/usr/bin/env bash
# What the tests call out to, installed only when it is missing.
#
# The test command (scripts/test.sh, i.e. cargo test --workspace) needs:
#   Node.js; Python 3 with PyJWT (with cryptography) and standardwebhooks;
#   PostgreSQL at VOUCH_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres,
#   a user that may create databases) for the multi-node and migrate-store tests.
# CI's other suites also need Ruby, PHP and Go (vectors/check.sh, recipes/run.sh).
#
# As root on a machine with apt, what is missing is installed (Debian's packages, Python's
# from PyPI) and a stopped local PostgreSQL is started. Otherwise nothing is installed: the
# script names what is missing and how to install it, and fails if the test command needs
# it; for Ruby, PHP and Go it names the suites that will fail and goes on.
set -euo pipefail

can_install=false
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then can_install=true; fi
problems=0
report() { printf 'ci-install: %s\n' "$*" >&2; }

# ---- Debian packages ----------------------------------------------------------------
required=() # package names whose tool the test command runs
optional=()
command -v node >/dev/null || required+=(nodejs)
command -v python3 >/dev/null || required+=(python3 python3-pip)
command -v ruby >/dev/null || optional+=(ruby)
command -v php >/dev/null || optional+=(php-cli)
command -v go >/dev/null || optional+=(golang-go)
missing=("${required[@]}" "${optional[@]}")
if [ ${#missing[@]} -gt 0 ]; then
  if $can_install; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    if [ ${#required[@]} -gt 0 ]; then
      report "missing, and needed by cargo test: ${required[*]}"
      problems=$((problems + 1))
    fi
    if [ ${#optional[@]} -gt 0 ]; then
      report "missing: ${optional[*]}: cargo test does not need them, but vectors/check.sh and recipes/run.sh will fail"
    fi
    report "install them (Debian/Ubuntu): sudo apt-get install ${missing[*]}"
    report "  (elsewhere: Node.js 18+, Python 3.9+, Ruby, PHP 8 CLI and Go from your package manager)"
  fi
fi

# ---- Python modules -----------------------------------------------------------------
py_modules_ok() { python3 -c 'import jwt, cryptography, standardwebhooks' 2>/dev/null; }
if command -v python3 >/dev/null && ! py_modules_ok; then
  if $can_install; then
    python3 -m pip install -q 'pyjwt[crypto]' 'standardwebhooks==1.1.0' >/dev/null
  else
    report "missing Python modules (PyJWT with cryptography, standardwebhooks), needed by cargo test"
    report "install them: python3 -m pip install --user 'pyjwt[crypto]' 'standardwebhooks==1.1.0'"
    problems=$((problems + 1))
  fi
fi

# ---- PostgreSQL ---------------------------------------------------------------------
PG_URL=${VOUCH_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
PG_SHOWN=$(printf '%s' "$PG_URL" | sed -E 's#(://[^:@/]*):[^@/]*@#\1:***@#') # no password in the output
pg_answers() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -d "$PG_URL"
  else
    # Without the client tools, a TCP connection to the default server has to do.
    [ -z "${VOUCH_TEST_POSTGRES:-}" ] && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}
if ! pg_answers; then
  if [ "$(id -u)" -eq 0 ] && [ -z "${VOUCH_TEST_POSTGRES:-}" ] && [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
    version=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 100); do pg_answers && break; sleep 0.2; done
  fi
fi
if ! pg_answers; then
  report "PostgreSQL does not answer at $PG_SHOWN; the multi-node and migrate-store tests need it"
  if [ -n "${VOUCH_TEST_POSTGRES:-}" ]; then
    report "check VOUCH_TEST_POSTGRES, or unset it to use postgres://postgres@127.0.0.1:5432/postgres"
  elif [ -d /etc/postgresql ]; then
    report "start it: sudo pg_ctlcluster $(ls /etc/postgresql | sort -V | tail -1) main start"
    report "  or set VOUCH_TEST_POSTGRES to a server where its user may create databases"
  else
    report "install it (sudo apt-get install postgresql) and let the user postgres connect from"
    report "  127.0.0.1 without a password, or set VOUCH_TEST_POSTGRES to a server where its user"
    report "  may create databases"
  fi
  problems=$((problems + 1))
fi

if [ "$problems" -gt 0 ]; then
  report "$problems problem(s) above: cargo test --workspace would fail, so the tests are not run"
  exit 1
fi

version_of() { command -v "$1" >/dev/null && "$@" 2>/dev/null || echo missing; }
echo "runtimes: node $(version_of node --version)," \
  "python $(python3 --version 2>&1 | cut -d' ' -f2)," \
  "ruby $(version_of ruby -e 'print RUBY_VERSION')," \
  "php $(version_of php -r 'echo PHP_VERSION;')," \
  "go $(version_of go env GOVERSION); PostgreSQL answers at $PG_SHOWN"
