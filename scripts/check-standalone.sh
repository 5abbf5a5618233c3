#!/usr/bin/env bash
# The repository stands on its own: no tracked file may point to the planning
# folder it was developed beside (a "shared" folder next to the checkout, or
# the design file in it). Prints every hit and exits 1 when there is one.
#
# The patterns are regular expressions written so that this file does not
# match them itself: `\.\.` needs two dots in a row, `[d]` a plain "d",
# `\.md` a dot right after the name.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

patterns=(
  -e '\.\./shared'
  -e '/work/share[d]'
  -e 'DESIGN\.md'
)

# git grep searches exactly the tracked files (as they are in the working tree); -I
# skips binary ones. It exits 1 when nothing matches, which is the good case, and
# above 1 on an error, which must fail the check too.
status=0
hits=$(git grep -n -I -E "${patterns[@]}") || status=$?
if [ "$status" -gt 1 ]; then
  echo "standalone: git grep failed ($status)" >&2
  exit "$status"
fi
if [ "$status" -eq 0 ]; then
  echo "These tracked files point outside the repository:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "standalone: no tracked file points outside the repository ($(git ls-files | wc -l) files checked)"
