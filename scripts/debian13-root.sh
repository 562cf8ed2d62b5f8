#!/usr/bin/env bash
# Today's runner shape: a Debian 13 (trixie) root, made once per machine with debootstrap and
# Debian's packages, that the runner machines of that shape and their Docker daemon run from
# (scripts/runner-machine.sh, scripts/services.sh). It has what GitHub's ubuntu-24.04 has newer
# than Debian 12: Docker 26 with containerd 1.7 (the containerd image store), skopeo 1.18,
# podman 5, and Nix 2.26.
#
#   debian13-root.sh [ensure]   build it when missing or outdated; print its path
#   debian13-root.sh path       print its path (built or not)
#
# The root lives in NCA_DEBIAN13_ROOT (default /var/cache/nca/debian13-root). It is rebuilt when
# this script's package list changes (a stamp file holds its hash). Needs root or passwordless
# sudo; nothing of this machine's own system is changed but the root's folder and the
# debootstrap package.
set -euo pipefail

ROOT=${NCA_DEBIAN13_ROOT:-/var/cache/nca/debian13-root}
MIRROR=${NCA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie

# What a runner of today's shape has for the action: docker (CLI, daemon, containerd), skopeo,
# podman/buildah, Nix, and the programs the action and the tests call beside them.
PACKAGES=(
  docker.io docker-cli containerd runc skopeo podman buildah nix-bin
  sudo zstd xz-utils gzip tar curl ca-certificates git busybox-static
  util-linux mount procps libstdc++6 openssh-client
)

log() { echo "debian13-root: $*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi
}

# What the root was built from: the suite and the package list.
stamp() {
  printf '%s\n' "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -d' ' -f1
}

is_current() {
  [[ -f $ROOT/.nca-stamp && $(cat "$ROOT/.nca-stamp") == "$(stamp)" ]]
}

# apt in the root may not start services (maintainer scripts try to start dockerd).
in_root() {
  as_root chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"
}

# proc, sys and dev for apt's maintainer scripts, unmounted again whatever happens.
with_mounts() {
  as_root mount -t proc proc "$ROOT/proc"
  as_root mount --rbind /sys "$ROOT/sys"
  as_root mount --rbind /dev "$ROOT/dev"
  local status=0
  "$@" || status=$?
  as_root umount -R "$ROOT/dev" || true
  as_root umount -R "$ROOT/sys" || true
  as_root umount "$ROOT/proc" || true
  return "$status"
}

install_packages() {
  in_root apt-get update -q
  in_root apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
  in_root apt-get clean
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  log "installing debootstrap"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
}

# A new root: debootstrap beside, then moved in place, so a root is either whole or absent.
bootstrap() {
  ensure_debootstrap
  as_root mkdir -p "$(dirname "$ROOT")"
  local work=$ROOT.building
  as_root rm -rf "$work"
  log "debootstrap $SUITE into $work (minbase)"
  as_root debootstrap --variant=minbase "$SUITE" "$work" "$MIRROR" >&2
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > '$work/usr/sbin/policy-rc.d' && chmod 755 '$work/usr/sbin/policy-rc.d'"
  as_root sh -c "printf 'deb $MIRROR $SUITE main\n' > '$work/etc/apt/sources.list'"
  as_root mv "$work" "$ROOT"
}

# The packages (again, for a root whose list changed); the stamp is written last, so a root
# whose install was cut short is completed the next time.
build() {
  [[ -f $ROOT/usr/sbin/policy-rc.d ]] || bootstrap
  as_root cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  log "installing into $ROOT: ${PACKAGES[*]}"
  with_mounts install_packages
  stamp | as_root tee "$ROOT/.nca-stamp" >/dev/null
  log "ready: $ROOT ($(versions))"
}

versions() {
  local docker skopeo nix
  docker=$(as_root chroot "$ROOT" dockerd --version 2>/dev/null | awk '{print $3}' | tr -d ,)
  skopeo=$(as_root chroot "$ROOT" skopeo --version 2>/dev/null | awk '{print $3}')
  nix=$(as_root chroot "$ROOT" dpkg-query -W -f='${Version}' nix-bin 2>/dev/null)
  echo "docker $docker, skopeo $skopeo, nix $nix"
}

case "${1:-ensure}" in
ensure)
  if ! is_current; then
    [[ -e $ROOT ]] && log "$ROOT is outdated or incomplete: rebuilding"
    build
  fi
  echo "$ROOT"
  ;;
path) echo "$ROOT" ;;
*) die "usage: debian13-root.sh [ensure|path]" ;;
esac
