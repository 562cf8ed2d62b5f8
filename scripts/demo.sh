#!/usr/bin/env bash
# The action's whole job on the built-in example: start a Docker daemon, a registry and a
# cache service (the v1 cache API, as GitHub's runner offers it) on 127.0.0.1, run the bundled
# action (dist/) as the GitHub runner does (the unprivileged `runner` user with sudo, on a fresh
# simulated runner machine with a single-user Nix), print its outputs, and stop everything
# again. Works as root or as a user with passwordless sudo. Extra `name=value` arguments
# override the inputs:
#   npm run demo -- attribute=container-stream tags=v2
# NCA_DEMO_NIX=none|single-user|daemon|root picks how Nix is there before the step;
# NCA_RUNNER_OS=debian13 runs it on today's runner shape (Docker's containerd image store).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }

bash scripts/install-deps.sh
dir=$(mktemp -d /tmp/nca-demo-XXXXXX)
cache_pid=
cleanup() {
  [ -z "$cache_pid" ] || kill "$cache_pid" 2>/dev/null || true
  as_root scripts/services.sh stop "$dir"
  as_root rm -rf "$dir"
}
trap cleanup EXIT
# Services are root's (dockerd); the action runs as the runner user. The runner machine is of
# this machine's own OS unless NCA_RUNNER_OS=debian13 (after scripts/debian13-root.sh).
debian13=0
[[ ${NCA_RUNNER_OS:-debian12} != debian13 ]] || debian13=1
as_root env NCA_DEBIAN13=$debian13 scripts/services.sh start "$dir"
set -a
# shellcheck disable=SC1091
source "$dir/env"
set +a

# The store cache's service: prints ACTIONS_CACHE_URL=... once it listens.
node scripts/cache-server.mjs >"$dir/cache-server.env" &
cache_pid=$!
for _ in $(seq 50); do grep -q . "$dir/cache-server.env" && break; sleep 0.1; done
export "$(cat "$dir/cache-server.env")" ACTIONS_RUNTIME_TOKEN=demo

# The example flake has no inputs and builds with the host's tools: no network, no sandbox.
NIX_CONFIG=$(cat scripts/test-nix.conf)
export NIX_CONFIG

node scripts/run-action.mjs --machine "${NCA_DEMO_NIX:-single-user}" \
  flake=./examples/hello \
  attribute=container \
  registry="$REGISTRY" \
  image=demo/hello \
  tags=v1,latest \
  "$@"
