#!/usr/bin/env bash
# Install the Debian packages the end-to-end tests run against (Nix, Docker daemon,
# registry, skopeo, htpasswd, zstd, busybox-static: the program in the images the tests run;
# lighttpd with mod_webdav: the HTTP binary cache that takes PUT; openssh-server: the remote
# builder). Idempotent: installs only what is missing and is a quick no-op when everything is
# present.
set -euo pipefail

PACKAGES=(nix-bin docker.io docker-registry skopeo apache2-utils zstd curl xz-utils sudo busybox-static)
# The binary cache tests' HTTP store (binary-cache: http://...), on loopback.
PACKAGES+=(lighttpd lighttpd-mod-webdav)
# The remote builder the builders tests reach over SSH (scripts/ssh-builder.sh).
PACKAGES+=(openssh-server)

log() { echo "install-deps: $*" >&2; }

# Packages from PACKAGES that dpkg does not report as installed.
missing_packages() {
  local pkg status
  for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || echo "$pkg"
  done
}

# Run as root directly, else through non-interactive sudo.
as_root() {
  if [[ $(id -u) == 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    log "need root (or passwordless sudo) to run: $*"
    exit 1
  fi
}

# Keep apt's maintainer scripts from starting system dockerd/registry services:
# the tests start their own, on private sockets and ports.
block_service_starts() {
  local policy=/usr/sbin/policy-rc.d
  [[ -e $policy ]] && return 0
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
  trap 'as_root rm -f '"$policy" EXIT
}

main() {
  command -v dpkg-query >/dev/null || { log "dpkg-query not found: this script needs Debian or Ubuntu"; exit 1; }
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    log "all present: ${PACKAGES[*]}"
    return 0
  fi
  log "installing: ${missing[*]}"
  block_service_starts
  as_root apt-get update -q
  # With recommended packages, as on the machines the tests were written on (nix-bin's
  # nix-setup-systemd brings /etc/nix/nix.conf; docker.io's bring cgroupfs-mount, apparmor).
  as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l apt-get install -y -q "${missing[@]}"
  log "installed: ${missing[*]}"
}

main "$@"
