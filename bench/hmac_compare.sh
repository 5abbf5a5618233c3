#!/usr/bin/env bash
# Per-request verification cost: vouch-core (criterion) beside what existing
# products run per request — Node's createHmac + timingSafeEqual and Ruby's
# OpenSSL::HMAC.hexdigest + a constant-time compare — in the same run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-300000}
SECRET=sk_test_benchmark_secret_0123456789abcdefghijklmnop
ID=user_12345
node_ns=$(node -e '
const crypto = require("crypto");
const secret = process.argv[1], id = process.argv[2], n = +process.argv[3];
const sig = crypto.createHmac("sha256", secret).update(id).digest("hex");
const check = (s) => {
  const mac = crypto.createHmac("sha256", secret).update(id).digest();
  const given = Buffer.from(s, "hex");
  return given.length === mac.length && crypto.timingSafeEqual(given, mac);
};
for (let i = 0; i < 20000; i++) check(sig);
const t = process.hrtime.bigint();
let ok = 0;
for (let i = 0; i < n; i++) ok += check(sig) ? 1 : 0;
const ns = Number(process.hrtime.bigint() - t) / n;
if (ok !== n) throw new Error("verification failed");
console.log(ns.toFixed(1));
' "$SECRET" "$ID" "$N")
ruby_ns=$(ruby -ropenssl -e '
secret, id, n = ARGV[0], ARGV[1], ARGV[2].to_i
sig = OpenSSL::HMAC.hexdigest("SHA256", secret, id)
check = lambda do |s|
  mac = OpenSSL::HMAC.hexdigest("SHA256", secret, id)
  s.bytesize == mac.bytesize && OpenSSL.fixed_length_secure_compare(s, mac)
end
20000.times { check.call(sig) }
t = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
ok = 0
n.times { ok += 1 if check.call(sig) }
ns = (Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - t).to_f / n
raise "verification failed" unless ok == n
puts format("%.1f", ns)
' "$SECRET" "$ID" "$N")
cargo bench -q -p vouch-core --bench verify -- --warm-up-time 1 --measurement-time 3 'verify/hex|floor' 2>/dev/null | tee /tmp/vouch-crit.txt >/dev/null
core_ns=$(python3 - <<'PY'
import re
text = open("/tmp/vouch-crit.txt").read()
def ns(name):
    m = re.search(re.escape(name) + r"\s+time:\s+\[[^\]]*?([\d.]+) (ns|µs|us)\s+([\d.]+) (ns|µs|us)", text)
    if not m:
        return None
    v, unit = float(m.group(3)), m.group(4)
    return v * (1000 if unit in ("µs", "us") else 1)
print(ns("verify/hex") or "nan", ns("floor/sha256_two_blocks") or "nan")
PY
)
read -r core floor <<<"$core_ns"
python3 - "$core" "$floor" "$node_ns" "$ruby_ns" <<'PY'
import sys
core, floor, node, ruby = map(float, sys.argv[1:])
print("| verification of a hex signature | ns/op | vs vouch-core |")
print("|---|---|---|")
print(f"| vouch-core `KeyRing::verify_signature` | {core:.1f} | 1.0× |")
print(f"| floor: two SHA-256 block compressions | {floor:.1f} | {floor/core:.2f}× |")
print(f"| Node {'createHmac + timingSafeEqual'} | {node:.1f} | {node/core:.1f}× slower |")
print(f"| Ruby OpenSSL::HMAC.hexdigest + secure compare | {ruby:.1f} | {ruby/core:.1f}× slower |")
PY
