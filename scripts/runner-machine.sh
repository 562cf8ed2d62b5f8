#!/usr/bin/env bash
# A simulated runner machine: a private mount namespace whose root is a copy-on-write overlay of
# this machine's (writes to / stay in the namespace, so `sudo mkdir /nix` or a whiteout of
# /usr/bin/nix are private to it), with /tmp, /dev, /proc, /sys, /run and the other mounts
# shared, and a /nix of the shape asked for:
#
#   none          no /nix and no nix on PATH: the action installs Nix (through sudo)
#   single-user   an empty /nix the user owns, Debian's nix on PATH (nix-quick-install-action)
#   daemon        a root-owned /nix behind nix-daemon, the user trusted (cachix/install-nix-action)
#   root          a root-owned /nix without a daemon, steps run as root (self-hosted runners)
#
# The /nix of the last three is DIR/nix on disk, so a test can read it from outside. Every
# process of the machine is in one process group; `stop` ends them and the namespace with them.
# Needs root. Run commands inside with:
#   nsenter -t "$(cat DIR/pid)" -m -r --wd=CWD -- setpriv --reuid=USER --regid=USER --init-groups -- CMD
#
#   runner-machine.sh start DIR SHAPE USER    prints the holder's pid once the machine is ready
#   runner-machine.sh stop DIR                stops it and removes DIR
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { echo "runner-machine: $*" >&2; }
die() { log "$*"; exit 1; }

# Settings for the daemon of a `daemon` machine, as the tests' NIX_CONFIG has them for clients.
daemon_conf() {
  cat <<CONF
experimental-features = nix-command flakes
sandbox = false
substituters =
build-users-group =
trusted-users = root $1
CONF
}

# Mount points of the host to share with the machine: every one but / and /nix, outermost only.
shared_mounts() {
  awk '{ print $5 }' /proc/self/mountinfo | sort -u | awk '
    $0 == "/" || $0 == "/nix" || index($0, "/nix/") == 1 { next }
    { for (i = 1; i <= n; i++) if (index($0, kept[i] "/") == 1) next; kept[++n] = $0; print }'
}

# Inside `unshare --mount`: build the machine's root, then become the holder.
init() {
  local dir=$1 shape=$2 user=$3
  local root=$dir/root layers=$dir/layers
  mount --make-rprivate /
  mount -t tmpfs -o mode=0755 nca-machine "$layers"
  mkdir "$layers/upper" "$layers/work"
  mount -t overlay nca-machine -o "lowerdir=/,upperdir=$layers/upper,workdir=$layers/work" "$root"
  local m
  while read -r m; do
    [[ -d $m && -d $root$m ]] && mount --rbind "$m" "$root$m"
  done < <(shared_mounts; echo /tmp)
  rm -rf "$root/nix"
  case $shape in
  none)
    local program
    for program in "$root"/usr/bin/nix "$root"/usr/bin/nix-* "$root"/usr/local/bin/nix; do
      [[ -e $program || -L $program ]] && rm -f "$program"
    done
    ;;
  single-user | daemon | root)
    mkdir "$root/nix"
    mount --bind "$dir/nix" "$root/nix"
    ;;
  esac
  if [[ $shape == daemon ]]; then
    mkdir -p "$root/etc/nix"
    daemon_conf "$user" >"$root/etc/nix/nix.conf"
  fi
  local home
  home=$(getent passwd "$user" | cut -d: -f6)
  # An installed Nix leaves an initialised store (its database made) owned by its user.
  if [[ $shape == single-user || $shape == root ]]; then
    chroot "$root" setpriv --reuid="$user" --regid="$user" --init-groups -- \
      env HOME="$home" nix-store --init
  fi
  # The checkout is root's; git refuses a repository another user owns unless told it is safe
  # (on GitHub the checkout is the runner's own).
  if [[ $user != root && -d $root$home ]]; then
    printf '[safe]\n\tdirectory = *\n' >"$root$home/.gitconfig"
    chown "$user:" "$root$home/.gitconfig"
  fi
  touch "$dir/ready"
  if [[ $shape == daemon ]]; then
    exec chroot "$root" /bin/sh -c 'nix-daemon >/tmp/.nca-daemon-$$.log 2>&1 & exec sleep infinity'
  fi
  exec chroot "$root" sleep infinity
}

cmd_start() {
  (($# == 3)) || die "usage: runner-machine.sh start DIR SHAPE USER"
  local dir=$1 shape=$2 user=$3
  [[ $(id -u) == 0 ]] || die "needs root (it makes a mount namespace)"
  case $shape in none | single-user | daemon | root) ;; *) die "unknown shape '$shape'" ;; esac
  id -u "$user" >/dev/null || die "no user '$user'"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  mkdir -p "$dir/root" "$dir/layers"
  if [[ $shape != none ]]; then
    mkdir -p "$dir/nix"
    if [[ $shape == single-user ]]; then chown "$user:" "$dir/nix"; fi
  fi
  setsid unshare --mount --propagation private -- "$0" _init "$dir" "$shape" "$user" \
    </dev/null >"$dir/machine.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pid"
  local deadline=$((SECONDS + 30))
  until [[ -e $dir/ready ]] && { [[ $shape != daemon ]] || [[ -S $dir/nix/var/nix/daemon-socket/socket ]]; }; do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/machine.log" >&2; die "the machine exited while starting"; }
    ((SECONDS < deadline)) || { cat "$dir/machine.log" >&2; die "not ready after 30 s"; }
    sleep 0.05
  done
  echo "$pid"
}

cmd_stop() {
  (($# == 1)) || die "usage: runner-machine.sh stop DIR"
  local dir=$1 pid
  [[ -d $dir ]] || return 0
  pid=$(cat "$dir/pid" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/cmdline" 2>/dev/null | tr '\0' ' ') == *sleep* ]]; then
    kill -KILL -- "-$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  fi
  rm -rf "$dir"
}

case "${1:-}" in
_init) shift && init "$@" ;;
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) die "usage: runner-machine.sh start DIR SHAPE USER | stop DIR" ;;
esac
