#!/usr/bin/env bash
# Runs a command where /nix is NIX_DIR and this machine's nix is hidden, in a private mount
# namespace (needs root): how the tests install Nix "into an empty /nix" without touching the
# machine's own /nix or /usr/bin/nix. Nothing outside the namespace sees the mounts.
# Usage: scripts/with-private-nix.sh NIX_DIR COMMAND [ARG...]
set -euo pipefail

nix_dir=${1:?usage: with-private-nix.sh NIX_DIR COMMAND [ARG...]}
shift
[ $# -gt 0 ] || { echo "with-private-nix: no command given" >&2; exit 2; }

if [ "${NCA_PRIVATE_NIX:-}" != "$nix_dir" ]; then
  exec env NCA_PRIVATE_NIX="$nix_dir" unshare --mount --propagation private "$0" "$nix_dir" "$@"
fi

mkdir -p /nix
mount --bind "$nix_dir" /nix
# A non-executable file over the host's nix: `which nix` finds nothing, the nix-* links break.
for program in /usr/bin/nix /usr/local/bin/nix; do
  if [ -e "$program" ]; then
    hidden=$(mktemp /tmp/nca-hidden-nix-XXXXXX)
    mount --bind "$hidden" "$program"
    rm -f "$hidden"
  fi
done
exec "$@"
