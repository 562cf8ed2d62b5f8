#!/usr/bin/env bash
# A remote Nix builder on loopback for the tests: Debian's openssh-server with a host key of its
# own, keys only, letting in one user with one authorized key, serving a second Nix store. sshd
# runs in a private mount namespace whose /nix is DIR/store/nix (that user's), so the
# `nix-store --serve` / `nix-daemon --stdio` the client starts over SSH builds in that store, with
# this machine's /bin/sh (no sandbox, no build users), and /etc/nix/nix.conf is DIR/nix.conf
# (extra-platforms, so a builder line may offer a system this machine only pretends to run).
# Nix 2.8 takes no port in an ssh URI: sshd listens on port 22 of another loopback address.
#
#   ssh-builder.sh start DIR USER ADDRESS AUTHORIZED_KEY_FILE   prints the base64 host key line
#   ssh-builder.sh stop DIR                                     stops sshd and removes DIR
#
# Needs root (sshd, port 22, the mount namespace). DIR/store is left readable for the tests:
# `nix-store --store DIR/store ...` (as root) asks the builder's store what it holds.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { echo "ssh-builder: $*" >&2; }
die() { log "$*"; exit 1; }

# The builder's own Nix settings: it builds what the tests' flakes describe, for both systems.
builder_conf() {
  cat <<CONF
experimental-features = nix-command flakes
sandbox = false
substituters =
build-users-group =
extra-platforms = aarch64-linux
CONF
}

sshd_conf() {
  local dir=$1 user=$2 address=$3
  cat <<CONF
ListenAddress $address:22
HostKey $dir/host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
# A locked account (no password, as the runner user is) logs in with a key only through PAM.
UsePAM yes
StrictModes no
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
LogLevel VERBOSE
CONF
}

# Inside `unshare --mount`: the builder's /nix and nix.conf, then sshd in the foreground.
init() {
  local dir=$1
  mount --make-rprivate /
  mkdir -p /nix
  mount --bind "$dir/store/nix" /nix
  mkdir -p /etc/nix
  [[ -e /etc/nix/nix.conf ]] || touch /etc/nix/nix.conf
  mount --bind "$dir/nix.conf" /etc/nix/nix.conf
  exec /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log"
}

cmd_start() {
  (($# == 4)) || die "usage: ssh-builder.sh start DIR USER ADDRESS AUTHORIZED_KEY_FILE"
  local dir=$1 user=$2 address=$3 key=$4
  [[ $(id -u) == 0 ]] || die "needs root (sshd on port 22, a mount namespace)"
  [[ -x /usr/sbin/sshd ]] || die "no /usr/sbin/sshd: install openssh-server (scripts/install-deps.sh)"
  id -u "$user" >/dev/null || die "no user '$user'"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  # Its user initialises the store below: it must reach it.
  chmod 0755 "$dir"
  ssh-keygen -q -t ed25519 -N '' -C nca-builder -f "$dir/host_ed25519_key"
  install -m 0644 "$key" "$dir/authorized_keys"
  builder_conf >"$dir/nix.conf"
  sshd_conf "$dir" "$user" "$address" >"$dir/sshd_config"
  # The builder's store: initialised, and its user's (a single-user store).
  mkdir -p "$dir/store/nix/var/nix"
  chown -R "$user:" "$dir/store"
  chmod 0755 "$dir/store"
  local home
  home=$(getent passwd "$user" | cut -d: -f6)
  setpriv --reuid="$user" --regid="$user" --init-groups -- \
    env HOME="$home" NIX_CONF_DIR="$dir" nix-store --store "$dir/store" --init
  # sshd's privilege separation directory, as Debian's ssh service makes it.
  mkdir -p /run/sshd
  /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd rejects its configuration"
  setsid unshare --mount --propagation private -- "$0" _init "$dir" </dev/null >"$dir/builder.log" 2>&1 &
  echo "$!" >"$dir/holder.pid"
  local deadline=$((SECONDS + 20))
  until [[ -s $dir/sshd.pid ]] && ssh-keyscan -T 2 -t ed25519 "$address" >/dev/null 2>&1; do
    kill -0 "$(cat "$dir/holder.pid")" 2>/dev/null || { cat "$dir/sshd.log" "$dir/builder.log" >&2 || true; die "sshd exited while starting"; }
    ((SECONDS < deadline)) || { cat "$dir/sshd.log" >&2 || true; die "sshd not answering on $address:22 after 20 s"; }
    sleep 0.1
  done
  # Field 8 of a machine line: the host's public key line, base64-encoded.
  base64 -w0 <"$dir/host_ed25519_key.pub"
  echo
}

cmd_stop() {
  (($# == 1)) || die "usage: ssh-builder.sh stop DIR"
  local dir=$1 pid
  [[ -d $dir ]] || return 0
  pid=$(cat "$dir/holder.pid" 2>/dev/null || true)
  # The holder became sshd (exec): its session holds the connections' processes too.
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/cmdline" 2>/dev/null | tr '\0' ' ') == *sshd* ]]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  chmod -R u+w "$dir" 2>/dev/null || true
  rm -rf "$dir"
}

case "${1:-}" in
_init) shift && init "$@" ;;
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) die "usage: ssh-builder.sh start DIR USER ADDRESS AUTHORIZED_KEY_FILE | stop DIR" ;;
esac
