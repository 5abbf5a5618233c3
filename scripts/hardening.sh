#!/usr/bin/env bash
# The hardening suite (issue 7), bounded for CI:
#   1. fuzzing: every cargo-fuzz target for FUZZ_SECONDS (60) from its committed seeds
#   2. schemathesis against /openapi.json: every operation, 0 server errors, schema conformance
#   3. crash durability: SIGKILL over CRASH_ROUNDS (5) rounds, 0 acknowledged writes lost
#   4. soak: half the measured maximum identify rate for SOAK_SECONDS (60), 0 errors, flat RSS
#   5. secrets: no issued secret in any logged line, database file or non-creation answer
# (The hostile-input table is crates/vouch-server/tests/it/hostile/table/, run by `cargo test`.)
# Installs what it needs (cargo-fuzz, schemathesis, wrk, hey), prints one line per check
# and a final `N passed, N failed`; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
CRASH_ROUNDS=${CRASH_ROUNDS:-5}
SOAK_SECONDS=${SOAK_SECONDS:-60}
MAX_EXAMPLES=${MAX_EXAMPLES:-30}
OUT=${HARDENING_OUT:-$ROOT/ci-output/hardening}
rm -rf "$OUT"
mkdir -p "$OUT"
export HARDENING_OUT=$OUT
export VOUCH_BIN=${VOUCH_BIN:-$ROOT/target/debug/vouch}

passed=0
failed=0
failures=()
record() { # name, exit code
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "hardening: PASS $1"
  else
    failed=$((failed + 1)); failures+=("$1"); echo "hardening: FAIL $1 (exit $2)"
  fi
}
step() { printf '\n--- hardening: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "tools"
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v hey >/dev/null || need_apt+=(hey)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c 'import schemathesis, yaml' 2>/dev/null || pip install -q schemathesis >/dev/null
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz >/dev/null 2>&1
for t in wrk hey schemathesis cargo-fuzz; do
  command -v $t >/dev/null || { echo "hardening: $t could not be installed"; exit 1; }
done
cargo build -p vouch --locked 2>&1 | tail -n 1
[ -x "$VOUCH_BIN" ] || { echo "hardening: $VOUCH_BIN was not built"; exit 1; }

step "1. fuzzing (${FUZZ_SECONDS} s per target)"
# cargo-fuzz needs nightly flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
# No sanitizer: our crates forbid unsafe code; the targets check panics and properties.
export RUSTC_BOOTSTRAP=1
FUZZ_FLAGS=(--sanitizer none --fuzz-dir "$ROOT/fuzz")
if ! cargo fuzz build "${FUZZ_FLAGS[@]}" >"$OUT/fuzz-build.log" 2>&1; then
  tail -n 30 "$OUT/fuzz-build.log"
  record "fuzz build" 1
else
  for target in $(cargo fuzz list --fuzz-dir "$ROOT/fuzz"); do
    work=$OUT/fuzz-corpus/$target
    mkdir -p "$work"
    # New inputs go to the scratch corpus; the committed seeds are only read.
    cargo fuzz run "${FUZZ_FLAGS[@]}" "$target" "$work" "$ROOT/fuzz/corpus/$target" -- \
      -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$OUT/fuzz-$target.log" 2>&1
    rc=$?
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$OUT/fuzz-$target.log" | grep -Eo '[0-9]+$' || echo "?")
    echo "hardening: fuzz $target: $runs executions in ${FUZZ_SECONDS} s"
    if [ $rc -ne 0 ]; then
      grep -E 'panicked|ERROR|Test unit written|SUMMARY' "$OUT/fuzz-$target.log" | head -n 10
    fi
    record "fuzz $target" $rc
  done
fi
unset RUSTC_BOOTSTRAP

step "2. schemathesis (max ${MAX_EXAMPLES} examples per operation)"
MAX_EXAMPLES=$MAX_EXAMPLES bash tests/hardening/schema.sh
record "schemathesis" $?

step "3. crash durability (${CRASH_ROUNDS} SIGKILL rounds)"
ROUNDS=$CRASH_ROUNDS python3 tests/hardening/crash.py
record "crash durability" $?

step "4. soak (${SOAK_SECONDS} s)"
DURATION=$SOAK_SECONDS bash tests/hardening/soak.sh
record "soak" $?

step "5. secrets in logs, database files and answers"
python3 tests/hardening/scan_secrets.py "$OUT"
record "secrets scan" $?

echo
[ ${#failures[@]} -eq 0 ] || echo "hardening: failed: ${failures[*]}"
echo "hardening: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
