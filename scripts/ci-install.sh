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
