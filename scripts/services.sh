#!/usr/bin/env bash
# Start and stop the loopback services the end-to-end tests run against: Docker daemons (no
# iptables, no bridge) and CNCF distribution registries, each with its own state under one
# directory, so nothing on the machine is shared. Two daemons, one per runner OS:
#   - this machine's Docker (20.10 on Debian 12), the classic image store (vfs);
#   - Debian 13's Docker 26, run from the root scripts/debian13-root.sh made, on the containerd
#     image store (as Docker 29 on ubuntu-latest), when that root is there (NCA_DEBIAN13=0: not).
# DIR/env has DOCKER_HOST_DEBIAN12, DOCKER_HOST_DEBIAN13 (when started) and REGISTRY; DOCKER_HOST
# is the Debian 13 daemon when there is one.
#
#   services.sh start DIR                          dockerd(s) + registry; writes DIR/env, DIR/pids
#   services.sh registry DIR NAME [--htpasswd USER PASS]
#                                                  one more registry; prints 127.0.0.1:PORT
#   services.sh stop DIR                           kill exactly DIR/pids, remove DIR
set -euo pipefail

# dockerd lives in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

READY_TIMEOUT=${NCA_READY_TIMEOUT:-60}
STOP_TIMEOUT=${NCA_STOP_TIMEOUT:-20}

log() { echo "services: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  sed -n '6,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

need() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null || die "$cmd not found: run scripts/install-deps.sh"
  done
}

abs_dir() { mkdir -p "$1" && cd "$1" && pwd -P; }

# A TCP port that was free a moment ago on 127.0.0.1 (callers retry on a lost race).
free_port() {
  if command -v node >/dev/null; then
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
  else
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
  fi
}

alive() { kill -0 "$1" 2>/dev/null; }

# True when PID is still a process started for DIR (its command line names DIR), so a
# recycled PID of an unrelated process is never signalled. The process may exit while its
# cmdline is read ("tr: read error: No such process"): that is a plain "no", not worth a line.
ours() {
  local pid=$1 dir=$2
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$dir/"
}

log_tail() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || continue
    echo "----- last lines of $f -----" >&2
    tail -n 40 "$f" >&2
  done
}

# Poll CHECK (a command) every 0.25 s until it succeeds; fail early when PID dies.
wait_until() {
  local what=$1 pid=$2
  shift 2
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    alive "$pid" || { log "$what exited before it was ready"; return 1; }
    ((SECONDS < deadline)) || { log "$what not ready after ${READY_TIMEOUT}s"; return 1; }
    sleep 0.25
  done
}

# --- dockerd -----------------------------------------------------------------

start_dockerd() {
  local dir=$1 d=$1/docker
  local sock=$d/docker.sock
  ((${#sock} < 100)) || die "socket path too long (${#sock} chars, max ~100): $sock; use a short DIR such as \$(mktemp -d /tmp/nca-XXXXXX)"
  mkdir -p "$d"
  echo '{}' >"$d/daemon.json" # keeps the machine's /etc/docker/daemon.json out
  setsid dockerd --config-file "$d/daemon.json" --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" -H "unix://$sock" \
    </dev/null >"$d/dockerd.log" 2>&1 &
  local pid=$!
  echo "$pid" >>"$dir/pids"
  if ! wait_until dockerd "$pid" docker -H "unix://$sock" version; then
    log_tail "$d/dockerd.log"
    return 1
  fi
  # dockerd's own containerd: listed too, so a dockerd that must be killed leaves no orphan.
  local cpid
  cpid=$(cat "$d/exec/containerd/containerd.pid" 2>/dev/null || true)
  [[ -n $cpid ]] && echo "$cpid" >>"$dir/pids"
  echo "DOCKER_HOST_DEBIAN12=unix://$sock" >>"$dir/env"
}

# --- dockerd of Debian 13, on the containerd image store ----------------------------

# Inside `unshare --mount`: a root that is a copy-on-write overlay of the Debian 13 root (the
# daemon's writes stay out of it), with this machine's /proc, /sys, /dev and /tmp (the socket
# and the data root live under DIR, at the same path on both sides); then dockerd in it.
dockerd13_init() {
  local root13=$1 d=$2 gid=$3
  local rootfs=$d/rootfs layers=$d/layers
  mount --make-rprivate /
  mkdir -p "$rootfs" "$layers"
  mount -t tmpfs -o mode=0755 nca-docker13 "$layers"
  mkdir "$layers/upper" "$layers/work"
  mount -t overlay nca-docker13 -o "lowerdir=$root13,upperdir=$layers/upper,workdir=$layers/work" "$rootfs"
  local m
  for m in /proc /sys /dev /tmp; do
    mkdir -p "$rootfs$m"
    mount --rbind "$m" "$rootfs$m"
  done
  mount -t tmpfs -o mode=0755 nca-docker13-run "$rootfs/run"
  exec chroot "$rootfs" dockerd --config-file "$d/daemon.json" --iptables=false --ip6tables=false \
    --bridge=none --group "$gid" --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" \
    -H "unix://$d/docker.sock"
}

start_dockerd13() {
  local dir=$1 d=$1/docker13 root13=$2
  local sock=$d/docker.sock
  mkdir -p "$d"
  echo '{"features": {"containerd-snapshotter": true}}' >"$d/daemon.json"
  # The socket's group: the docker group of this machine, which the runner machines share.
  local gid
  gid=$(getent group docker | cut -d: -f3)
  [[ -n $gid ]] || die "no docker group: run scripts/runner-user.sh"
  setsid unshare --mount --propagation private -- "$0" _dockerd13 "$root13" "$d" "$gid" \
    </dev/null >"$d/dockerd.log" 2>&1 &
  local pid=$!
  echo "$pid" >>"$dir/pids"
  if ! wait_until "dockerd (Debian 13)" "$pid" docker -H "unix://$sock" version; then
    log_tail "$d/dockerd.log"
    return 1
  fi
  local driver
  driver=$(docker -H "unix://$sock" info --format '{{json .DriverStatus}}')
  [[ $driver == *io.containerd.snapshotter.v1* ]] ||
    { log "dockerd (Debian 13) is not on the containerd image store: $driver"; return 1; }
  echo "DOCKER_HOST_DEBIAN13=unix://$sock" >>"$dir/env"
}

# The Debian 13 root when it was built and not turned off.
debian13_root() {
  [[ ${NCA_DEBIAN13:-1} != 0 ]] || return 0
  local root
  root=$("$(dirname "$0")/debian13-root.sh" path)
  [[ -f $root/.nca-stamp ]] && echo "$root"
  return 0
}

# --- registry ----------------------------------------------------------------

write_registry_config() {
  local rdir=$1 port=$2 htpasswd=$3
  cat >"$rdir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $rdir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: nca-test-$port
YAML
  if [[ -n $htpasswd ]]; then
    cat >>"$rdir/config.yml" <<YAML
auth:
  htpasswd:
    realm: nca-test
    path: $htpasswd
YAML
  fi
}

# 200 (open) or 401 (auth required) means the registry is serving /v2/.
registry_up() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/v2/")
  [[ $code == 200 || $code == 401 ]]
}

# Start a registry under RDIR on a free port (a few ports tried: picking one races with
# other processes); append its pid to DIR/pids and print the port.
start_registry() {
  local dir=$1 rdir=$2 htpasswd=${3:-}
  mkdir -p "$rdir/data"
  local attempt port pid
  for attempt in 1 2 3; do
    port=$(free_port)
    write_registry_config "$rdir" "$port" "$htpasswd"
    setsid docker-registry serve "$rdir/config.yml" </dev/null >"$rdir/registry.log" 2>&1 &
    pid=$!
    echo "$pid" >>"$dir/pids"
    if wait_until "registry on port $port" "$pid" registry_up "$port"; then
      echo "$port"
      return 0
    fi
    grep -q 'address already in use' "$rdir/registry.log" || break
    log "port $port was taken, retrying (attempt $attempt)"
  done
  log_tail "$rdir/registry.log"
  return 1
}

# --- subcommands ---------------------------------------------------------------

cmd_start() {
  (($# == 1)) || usage
  need dockerd docker docker-registry curl
  [[ $(id -u) == 0 ]] || die "dockerd needs root (it runs without iptables or a bridge, but still as root)"
  local dir
  dir=$(abs_dir "$1")
  # Reachable by the unprivileged user the tests run the action as (the docker group's socket
  # is inside); nothing here is listed to others.
  chmod 0711 "$dir"
  [[ ! -e $dir/pids ]] || die "$dir/pids exists: services already started there (stop them first)"
  : >"$dir/pids"
  : >"$dir/env"
  local port root13
  root13=$(debian13_root)
  if ! start_dockerd "$dir" || { [[ -n $root13 ]] && ! start_dockerd13 "$dir" "$root13"; } ||
    ! port=$(start_registry "$dir" "$dir/registry"); then
    log "start failed; stopping what was started (logs kept in $dir)"
    kill_pids "$dir"
    exit 1
  fi
  local default
  default=$(sed -n 's/^DOCKER_HOST_DEBIAN13=//p' "$dir/env")
  [[ -n $default ]] || default=$(sed -n 's/^DOCKER_HOST_DEBIAN12=//p' "$dir/env")
  echo "DOCKER_HOST=$default" >>"$dir/env"
  echo "REGISTRY=127.0.0.1:$port" >>"$dir/env"
  log "ready: $(tr '\n' ' ' <"$dir/env")"
}

cmd_registry() {
  (($# == 2 || $# == 5)) || usage
  local dir name=$2 htpasswd=''
  [[ -e $1/pids ]] || die "$1/pids not found: run 'services.sh start $1' first"
  dir=$(abs_dir "$1")
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "registry NAME must be a plain directory name, got '$name'"
  need docker-registry curl
  if (($# == 5)); then
    [[ $3 == --htpasswd ]] || usage
    need htpasswd
    mkdir -p "$dir/$name"
    htpasswd=$dir/$name/htpasswd
    htpasswd -Bbn "$4" "$5" >"$htpasswd"
  fi
  local port
  port=$(start_registry "$dir" "$dir/$name" "$htpasswd") || exit 1
  echo "127.0.0.1:$port"
}

# Recorded pids that are still running and still ours.
live_pids() {
  local dir=$1 pid
  [[ -f $dir/pids ]] || return 0
  while read -r pid; do
    [[ $pid =~ ^[0-9]+$ ]] && ours "$pid" "$dir" && echo "$pid"
  done <"$dir/pids"
  return 0
}

parent_of() {
  local stat
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 0
  stat=${stat##*) } # skip "pid (comm) ", comm may hold spaces
  set -- $stat
  echo "$2"
}

# TERM all recorded processes at once, except children of a recorded one (dockerd's
# containerd), which their parent shuts down; wait (bounded), then KILL what is left.
kill_pids() {
  local dir=$1 pid
  local -a pids
  mapfile -t pids < <(live_pids "$dir")
  ((${#pids[@]})) || return 0
  for pid in "${pids[@]}"; do
    [[ " ${pids[*]} " == *" $(parent_of "$pid") "* ]] || kill -TERM "$pid" 2>/dev/null || true
  done
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while [[ -n $(live_pids "$dir") ]] && ((SECONDS < deadline)); do sleep 0.2; done
  for pid in $(live_pids "$dir"); do
    log "pid $pid still running ${STOP_TIMEOUT}s after TERM: killing"
    kill -KILL "$pid" 2>/dev/null || true
  done
  sleep 0.2 # let the kernel reap before the caller looks at mounts
}

# Mount points below DIR, deepest first (mountinfo escapes spaces as \040).
mounts_under() {
  awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

cmd_stop() {
  (($# == 1)) || usage
  [[ -d $1 ]] || { log "$1 does not exist: nothing to stop"; return 0; }
  local dir
  dir=$(abs_dir "$1")
  [[ -f $dir/pids ]] || die "$dir/pids not found: not a services directory, not removing it"
  kill_pids "$dir"
  # dockerd bind-mounts its data root onto itself and undoes it on a clean shutdown;
  # a killed one leaves it behind. Undo only those: anything else mounted here is
  # not ours, so the directory is kept.
  local m
  while read -r m; do
    [[ -n $m && $m == "$dir/docker/"* ]] && umount "$m" 2>/dev/null || true
  done < <(mounts_under "$dir")
  if [[ -n $(mounts_under "$dir") ]]; then
    die "still mounted below $dir, not removing it: $(mounts_under "$dir" | tr '\n' ' ')"
  fi
  rm -rf "$dir"
  log "stopped; removed $dir"
}

case "${1:-}" in
_dockerd13) shift && dockerd13_init "$@" ;;
start) shift && cmd_start "$@" ;;
registry) shift && cmd_registry "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) usage ;;
esac
