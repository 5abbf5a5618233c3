#!/usr/bin/env bash
# The test command of the README: installs what the tests call out to (Node,
# Python's PyJWT and standardwebhooks, Ruby, PHP, Go; starts the local
# PostgreSQL if it is stopped), then runs every Rust test of the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ci-install.sh
cargo test --workspace --locked "$@"
