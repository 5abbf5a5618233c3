#!/usr/bin/env bash
# Cross-check the committed test vectors against real runtimes.
#
#   vectors/check.sh           run every installed generator (node, python3,
#                              ruby, php, go) and compare with vectors.json
#   vectors/check.sh --write   regenerate vectors.json from inputs.json with
#                              Node, then check the other runtimes against it
#
# Exits 1 if any runtime disagrees. With CI or VECTORS_REQUIRE set, also
# exits 1 when fewer than 4 runtimes could be run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
min_runtimes=4

write=0
case "${1:-}" in
  "") ;;
  --write) write=1 ;;
  -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: vectors/check.sh [--write]" >&2; exit 2 ;;
esac

if ! command -v python3 >/dev/null; then
  echo "vectors/check.sh: python3 is needed to compare the outputs" >&2
  exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ "$write" = 1 ]; then
  if ! command -v node >/dev/null; then
    echo "vectors/check.sh --write: node is needed to generate vectors.json" >&2
    exit 2
  fi
  node gen/node.mjs inputs.json >"$tmp/vectors.json"
  mv "$tmp/vectors.json" vectors.json
  echo "wrote vectors/vectors.json"
fi

# Go: standard library only, GOPATH mode, so nothing is ever downloaded.
go_run() {
  if [ -z "${GOCACHE:-}" ]; then
    local cache
    cache="$(go env GOCACHE 2>/dev/null || true)"
    if [ -z "$cache" ] || [ "$cache" = off ]; then
      export GOCACHE="$tmp/gocache"
    fi
  fi
  GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local go run gen/main.go "$@"
}

# name | command that must exist | how to run the generator
runtimes=(
  "node|node|node gen/node.mjs inputs.json"
  "python|python3|python3 gen/python.py inputs.json"
  "ruby|ruby|ruby gen/ruby.rb inputs.json vectors.json"
  "php|php|php gen/php.php inputs.json vectors.json"
  "go|go|go_run inputs.json vectors.json"
)

ran=()
skipped=()
broken=()
outputs=()
for entry in "${runtimes[@]}"; do
  IFS='|' read -r name tool cmd <<<"$entry"
  if ! command -v "$tool" >/dev/null; then
    skipped+=("$name")
    continue
  fi
  if eval "$cmd" >"$tmp/$name.json" 2>"$tmp/$name.err"; then
    ran+=("$name")
    outputs+=("$name=$tmp/$name.json")
  else
    broken+=("$name")
    echo "✗ $name: generator failed:" >&2
    sed 's/^/    /' "$tmp/$name.err" >&2
  fi
done

status=0
if [ "${#outputs[@]}" -gt 0 ]; then
  python3 compare.py vectors.json "${outputs[@]}" || status=1
fi
[ "${#broken[@]}" -eq 0 ] || status=1

echo "runtimes run: ${#ran[@]} (${ran[*]:-none}); skipped, not installed: ${skipped[*]:-none}${broken:+; failed: ${broken[*]}}"

ci="${CI:-}"
if [ "$ci" = false ] || [ "$ci" = 0 ]; then ci=""; fi
if [ "${#ran[@]}" -lt "$min_runtimes" ] && { [ -n "$ci" ] || [ -n "${VECTORS_REQUIRE:-}" ]; }; then
  echo "✗ only ${#ran[@]} runtime(s) ran; at least $min_runtimes are required (install: apt-get install -y nodejs python3 ruby php-cli golang-go)" >&2
  status=1
fi

if [ "$status" = 0 ]; then
  echo "vectors: all ${#ran[@]} runtimes agree with vectors/vectors.json"
else
  echo "vectors: check FAILED, see above" >&2
fi
exit "$status"
