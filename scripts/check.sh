#!/usr/bin/env bash
# The checks before the tests, in two lanes side by side (a runner has two cores): the
# typecheck and the linters in one, dist/ against a fresh bundle in the other. Each lane's
# output is printed whole once it ends.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(npm run -s typecheck && npm run -s lint) >"$out/static" 2>&1 &
static=$!
scripts/check-dist.sh >"$out/dist" 2>&1 &
dist=$!
status=0
wait "$static" || status=1
cat "$out/static"
wait "$dist" || status=1
cat "$out/dist"
exit "$status"
