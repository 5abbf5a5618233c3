#!/usr/bin/env bash
# Webhook delivery latency (p50/p99 from identify to receiver) under a load of
# identifies; see bench/webhook_latency.py. Bounded to about a minute.
#
#   bench/webhook_latency.sh [--identifies 2000] [--clients 16] [--rate 500]
#   BUILD=debug bench/webhook_latency.sh        (default: release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "${BUILD:-release}" = debug ]; then
  cargo build -q -p vouch
  BIN=target/debug/vouch
else
  cargo build -q --release -p vouch
  BIN=target/release/vouch
fi
exec timeout 90 python3 bench/webhook_latency.py --bin "$BIN" "$@"
