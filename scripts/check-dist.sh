#!/usr/bin/env bash
# dist/ is committed: check that it is exactly what `npm run bundle` builds from the source.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s bundle >/dev/null
if ! git diff --quiet --exit-code -- dist || [ -n "$(git ls-files --others --exclude-standard dist)" ]; then
  echo "dist/ is not what the source builds to. Run \`npm run bundle\` and commit dist/:" >&2
  git status --short -- dist >&2
  echo "(A dependency bump, e.g. from Dependabot, changes the bundles too: check out its branch," >&2
  echo "run \`npm ci && npm run bundle\` and commit dist/.)" >&2
  exit 1
fi
echo "dist/ is up to date"
