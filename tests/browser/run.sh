#!/usr/bin/env bash
# The browser suite: the /demo page and the admin UI in real Chromium, and the browser SDK
# (unit tests with a fake fetch, plus calls against the real server).
#
#   bash tests/browser/run.sh          # installs what is missing, builds vouch, runs every test
#   VOUCH_BIN=/path/to/vouch bash tests/browser/run.sh   # test a binary built elsewhere
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

bash tests/browser/install.sh

if [ -z "${VOUCH_BIN:-}" ]; then
  cargo build -p vouch
  export VOUCH_BIN="$root/target/debug/vouch"
fi
if [ ! -x "$VOUCH_BIN" ]; then
  echo "run.sh: no vouch binary at $VOUCH_BIN" >&2
  exit 1
fi

mkdir -p ci-output/screenshots
node --test tests/browser/
