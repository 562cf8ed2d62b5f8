#!/usr/bin/env bash
# Make the user GitHub's hosted runners run steps as: `runner` (uid 1001 where free), a home of
# its own, passwordless sudo and the docker group, as on ubuntu-latest. Idempotent; needs root
# (or passwordless sudo). Prints the user's name.
# Usage: scripts/runner-user.sh [NAME]
set -euo pipefail

name=${1:-${NCA_RUNNER_USER:-runner}}
[[ $name =~ ^[a-z_][a-z0-9_-]*$ ]] || { echo "runner-user: bad user name '$name'" >&2; exit 2; }

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi
}

getent group docker >/dev/null || as_root groupadd --system docker
if ! id -u "$name" >/dev/null 2>&1; then
  uid_option=()
  getent passwd 1001 >/dev/null || uid_option=(--uid 1001)
  as_root useradd --create-home --shell /bin/bash "${uid_option[@]}" --groups docker "$name"
fi
id -nG "$name" | tr ' ' '\n' | grep -qx docker || as_root usermod -aG docker "$name"
sudoers=/etc/sudoers.d/nca-$name
if [[ ! -f $sudoers ]]; then
  as_root sh -c "umask 0337 && printf '%s ALL=(ALL) NOPASSWD:ALL\n' '$name' > '$sudoers'"
fi
echo "$name"
