#!/usr/bin/env bash
# Installs the language runtimes the test suites call (Debian packages only).
set -euo pipefail
need=()
command -v ruby >/dev/null || need+=(ruby)
command -v php >/dev/null || need+=(php-cli)
command -v go >/dev/null || need+=(golang-go)
command -v node >/dev/null || need+=(nodejs)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -c 'import jwt, cryptography, standardwebhooks' 2>/dev/null || pip install -q 'pyjwt[crypto]' 'standardwebhooks==1.1.0' >/dev/null
echo "runtimes: node $(node --version), python $(python3 --version 2>&1 | cut -d' ' -f2), ruby $(ruby -e 'print RUBY_VERSION'), php $(php -r 'echo PHP_VERSION;'), $(go version | cut -d' ' -f3)"
# PostgreSQL: this kind of machine runs one; start it when it is not running
# (cargo test --workspace includes the multi-node tests).
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
pg_isready -h 127.0.0.1 -p 5432
