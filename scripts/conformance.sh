#!/usr/bin/env bash
# Conformance with other projects: runs their published test vectors through Vouch.
#
#   scripts/conformance.sh PEER_DATA_DIR
#
# PEER_DATA_DIR holds public test inputs and known answers of other projects (RFC 8785 /
# JCS files and the ES6 number table, Standard Webhooks, RFC 4231 HMAC, RFC 7515 / 8037
# JOSE, jwt.io, PyJWT), with a SOURCES.md naming the upstream of each file. It is not part
# of this repository and the project's own tests never need it: when the folder is
# missing, this script says so and exits 0 — except under CI=true, whose machines always
# have it, where a missing folder fails the step instead of passing it without a vector.
#
# Builds the `vouch` binary and the runner (crates/vouch/examples/conformance) once, then
# runs every applicable vector through vouch-core, vouch-server and the CLI, printing
# per-suite counts (passed / failed / not applicable, with the reason). Exits 1 on any
# failure. CONFORMANCE_NUMBERS sets how many lines of the ES6 number table are
# regenerated and hashed (default 1000000; the published hashes go up to 100000000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ $# -ne 1 ]; then
  echo "usage: scripts/conformance.sh PEER_DATA_DIR" >&2
  exit 2
fi
dir=$1
if [ ! -d "$dir" ]; then
  if [ "${CI:-}" = true ]; then
    echo "conformance: peer data not present at $dir; CI machines have it, so this fails" >&2
    exit 1
  fi
  echo "conformance: peer data not present at $dir, skipped"
  exit 0
fi

cargo build --locked -p vouch --bin vouch --example conformance
target/debug/examples/conformance "$dir" --vouch target/debug/vouch \
  --numbers "${CONFORMANCE_NUMBERS:-1000000}"
