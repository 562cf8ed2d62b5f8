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
# and of an OS:
#
#   debian12      this machine's own system (Docker 20.10, skopeo 1.9, Nix 2.8): an older
#                 self-hosted runner
#   debian13      the root scripts/debian13-root.sh made (Docker 26 on the containerd image
#                 store, skopeo 1.18, podman 5, Nix 2.26): today's ubuntu-latest; /proc, /sys,
#                 /dev, /tmp and the folders in NCA_MACHINE_BINDS (colon-separated: the
#                 checkout) are this machine's, and so are the users (passwd, group, sudoers)
#
# The /nix of the last three is DIR/nix on disk, so a test can read it from outside. Every
# process of the machine is in one process group; `stop` ends them and the namespace with them.
# Needs root. Run commands inside with:
#   nsenter -t "$(cat DIR/pid)" -m -r --wd=CWD -- setpriv --reuid=USER --regid=USER --init-groups -- CMD
#
#   runner-machine.sh start DIR SHAPE USER [OS]   prints the holder's pid once the machine is ready
#   runner-machine.sh stop DIR                    stops it and removes DIR
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
  # A test's own settings, after the defaults (a later line wins): e.g. an untrusted user and
  # require-sigs.
  if [[ -n ${NCA_DAEMON_NIX_CONF:-} ]]; then printf '%s\n' "$NCA_DAEMON_NIX_CONF"; fi
}

# Mount points of the host to share with the machine: every one but / and /nix, outermost only.
shared_mounts() {
  awk '{ print $5 }' /proc/self/mountinfo | sort -u | awk '
    $0 == "/" || $0 == "/nix" || index($0, "/nix/") == 1 { next }
    { for (i = 1; i <= n; i++) if (index($0, kept[i] "/") == 1) next; kept[++n] = $0; print }'
}

# What a machine of another OS shares with this one: the kernel's file systems, /tmp (runs'
# files, sockets) and the checkout.
foreign_shared_dirs() {
  printf '%s\n' /proc /sys /dev /tmp
  local IFS=:
  local dir
  for dir in ${NCA_MACHINE_BINDS:-}; do [[ -n $dir ]] && echo "$dir"; done
}

# The users of this machine (the runner, the docker group, sudo rights) in a foreign root.
copy_identity() {
  local root=$1 user=$2 file
  for file in passwd group shadow gshadow; do
    [[ -f /etc/$file ]] && cp -p "/etc/$file" "$root/etc/$file"
  done
  mkdir -p "$root/etc/sudoers.d"
  for file in /etc/sudoers.d/nca-*; do
    [[ -f $file ]] && cp -p "$file" "$root/etc/sudoers.d/"
  done
  local home
  home=$(getent passwd "$user" | cut -d: -f6)
  if [[ $user != root && -d $home ]]; then
    mkdir -p "$root$(dirname "$home")"
    cp -a "$home" "$root$home"
  fi
}

# Inside `unshare --mount`: build the machine's root, then become the holder.
init() {
  local dir=$1 shape=$2 user=$3 os=$4 lower=/
  local root=$dir/root layers=$dir/layers
  [[ $os == debian13 ]] && lower=$(debian13_root)
  mount --make-rprivate /
  mount -t tmpfs -o mode=0755 nca-machine "$layers"
  mkdir "$layers/upper" "$layers/work"
  mount -t overlay nca-machine -o "lowerdir=$lower,upperdir=$layers/upper,workdir=$layers/work" "$root"
  local m
  if [[ $os == debian12 ]]; then
    while read -r m; do
      [[ -d $m && -d $root$m ]] && mount --rbind "$m" "$root$m"
    done < <(shared_mounts; echo /tmp)
  else
    while read -r m; do
      mkdir -p "$root$m"
      mount --rbind "$m" "$root$m"
    done < <(foreign_shared_dirs)
    copy_identity "$root" "$user"
  fi
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
  # An installed Nix leaves an initialised store (its database made) owned by its user. Nix
  # >= 2.20 takes a /nix without var/nix for someone else's and makes a chroot store in HOME.
  if [[ $shape == single-user || $shape == root ]]; then
    chroot "$root" setpriv --reuid="$user" --regid="$user" --init-groups -- \
      env HOME="$home" sh -c 'mkdir -p /nix/var/nix && nix-store --init'
  fi
  # The checkout is root's (or a contributor's); git refuses a repository another user owns
  # unless told it is safe (on GitHub the checkout is the runner's own). Written in the
  # machine's own layer: this machine's files are not touched.
  if [[ -d $root$home ]]; then
    printf '[safe]\n\tdirectory = *\n' >"$root$home/.gitconfig"
    chown "$user:" "$root$home/.gitconfig"
  fi
  touch "$dir/ready"
  if [[ $shape == daemon ]]; then
    exec chroot "$root" /bin/sh -c 'nix-daemon >/tmp/.nca-daemon-$$.log 2>&1 & exec sleep infinity'
  fi
  exec chroot "$root" sleep infinity
}

# The Debian 13 root, which must have been built (scripts/debian13-root.sh).
debian13_root() {
  local root
  root=$("$(dirname "$0")/debian13-root.sh" path)
  [[ -f $root/.nca-stamp ]] || die "no Debian 13 root at $root: run scripts/debian13-root.sh"
  echo "$root"
}

cmd_start() {
  (($# == 3 || $# == 4)) || die "usage: runner-machine.sh start DIR SHAPE USER [OS]"
  local dir=$1 shape=$2 user=$3 os=${4:-debian12}
  [[ $(id -u) == 0 ]] || die "needs root (it makes a mount namespace)"
  case $shape in none | single-user | daemon | root) ;; *) die "unknown shape '$shape'" ;; esac
  case $os in debian12) ;; debian13) debian13_root >/dev/null ;; *) die "unknown OS '$os'" ;; esac
  id -u "$user" >/dev/null || die "no user '$user'"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  mkdir -p "$dir/root" "$dir/layers"
  if [[ $shape != none ]]; then
    mkdir -p "$dir/nix"
    if [[ $shape == single-user ]]; then chown "$user:" "$dir/nix"; fi
  fi
  setsid unshare --mount --propagation private -- "$0" _init "$dir" "$shape" "$user" "$os" \
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
  fi
  # Killed processes write nothing more, and the machine's mounts are its namespace's, not
  # this one's: DIR can go at once. The kernel takes a second or more to tear the namespace down
  # (a grace period per mount); waiting for that is only needed when something of the machine
  # still holds DIR.
  rm -rf "$dir" 2>/dev/null && return 0
  local deadline=$((SECONDS + 10))
  while [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.05
  done
  rm -rf "$dir"
}

case "${1:-}" in
_init) shift && init "$@" ;;
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) die "usage: runner-machine.sh start DIR SHAPE USER [OS] | stop DIR" ;;
esac
