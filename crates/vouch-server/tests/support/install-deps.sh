#!/usr/bin/env bash
# Installs what the vouch-server black-box tests need besides Rust:
# python3 with PyJWT (independent JWT verification of session tokens) and
# node (customer-backend signatures). Safe to run more than once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v python3 >/dev/null || { apt-get update && apt-get install -y python3 python3-pip; }
command -v node >/dev/null || { apt-get update && apt-get install -y nodejs; }
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
  python3 -m pip install --quiet -r "$here/requirements.txt" \
    || python3 -m pip install --quiet --break-system-packages -r "$here/requirements.txt"
fi
python3 -c 'import jwt; print("PyJWT", jwt.__version__)'
node --version
