#!/usr/bin/env bash
# A throwaway container engine for machines that have none (CI, sandboxes): Debian's docker.io daemon
# with its data, exec root, socket and pid file under one state directory, stopped by its pid and
# cleaned up afterwards (containers, docker0 bridge, iptables chains, ip_forward, state directory).
#
#   scripts/container_engine.sh start          # install docker.io + debootstrap if missing, start, wait
#   eval "$(scripts/container_engine.sh env)"  # DOCKER_HOST and a BuildKit-capable DOCKER client
#   scripts/container_engine.sh base IMAGE     # print IMAGE if present or pullable, else build a
#                                              # Debian bookworm base with debootstrap and print its name
#   scripts/container_engine.sh stop           # stop by pid, remove what the daemon left
#   scripts/container_engine.sh status
#
# Every command is safe to re-run. When DOCKER_HOST points at an engine the user already has, `start`
# and `stop` leave it alone. Needs root (apt-get, dockerd, iptables). CATSDOGS_ENGINE_DIR moves the
# state directory (default: $TMPDIR/catsdogs-engine).
set -euo pipefail

STATE_DIR=${CATSDOGS_ENGINE_DIR:-${TMPDIR:-/tmp}/catsdogs-engine}
SOCK="$STATE_DIR/docker.sock"
PIDFILE="$STATE_DIR/dockerd.pid"
OUR_HOST="unix://$SOCK"
# Debian's client does BuildKit natively; a newer CLI without the buildx plugin cannot build with it.
CLIENT=/usr/bin/docker
# The debootstrapped fallback base: Debian bookworm's python3 is 3.11, like the default base image.
FALLBACK_BASE=catsdogs/debian-bookworm-minbase:local

log() { echo "container_engine: $*" >&2; }
die() { log "error: $*"; exit 1; }

user_engine() {  # true when DOCKER_HOST names an engine that is not ours
  [[ -n "${DOCKER_HOST:-}" && "${DOCKER_HOST}" != "$OUR_HOST" ]]
}

running() {  # our daemon's pid is alive and its API answers
  [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null \
    && DOCKER_HOST="$OUR_HOST" "$CLIENT" version >/dev/null 2>&1
}

install_tools() {
  local missing=()
  command -v dockerd >/dev/null && [[ -x "$CLIENT" ]] || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  ((${#missing[@]})) || return 0
  [[ $EUID -eq 0 ]] || die "installing ${missing[*]} needs root (apt-get)"
  log "installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start() {
  if user_engine; then
    DOCKER_HOST="$DOCKER_HOST" "$CLIENT" version >/dev/null 2>&1 || docker version >/dev/null 2>&1 \
      || die "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to start a throwaway engine"
    log "DOCKER_HOST=$DOCKER_HOST is set: using that engine, not starting one"
    return 0
  fi
  if running; then log "already running (pid $(cat "$PIDFILE"))"; return 0; fi
  [[ $EUID -eq 0 ]] || die "the throwaway engine needs root (dockerd, iptables)"
  install_tools
  # A second daemon would fight over the default bridge and iptables chains.
  if [[ -e /var/run/docker.sock ]] && docker -H unix:///var/run/docker.sock version >/dev/null 2>&1; then
    die "an engine already answers on /var/run/docker.sock: export DOCKER_HOST=unix:///var/run/docker.sock"
  fi
  mkdir -p "$STATE_DIR"
  # Remembered so `stop` restores exactly what it found.
  cat /proc/sys/net/ipv4/ip_forward >"$STATE_DIR/ip_forward.before"
  # dockerd sets the FORWARD policy to DROP when it turns forwarding on.
  if command -v iptables >/dev/null; then
    iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}' >"$STATE_DIR/forward_policy.before" || true
  fi
  if ip link show docker0 >/dev/null 2>&1; then touch "$STATE_DIR/bridge.preexisting"; fi
  log "starting dockerd under $STATE_DIR"
  dockerd --data-root "$STATE_DIR/data" --exec-root "$STATE_DIR/exec" -H "$OUR_HOST" \
    --pidfile "$PIDFILE" >"$STATE_DIR/dockerd.log" 2>&1 &
  echo $! >"$STATE_DIR/launcher.pid"
  local i
  for i in $(seq 1 60); do
    if running; then log "up after ${i}x0.5 s; log: $STATE_DIR/dockerd.log"; return 0; fi
    kill -0 "$(cat "$STATE_DIR/launcher.pid")" 2>/dev/null || break
    sleep 0.5
  done
  tail -20 "$STATE_DIR/dockerd.log" >&2 || true
  stop
  die "dockerd did not come up"
}

print_env() {
  if user_engine; then
    echo "export DOCKER_HOST=${DOCKER_HOST@Q}"
  elif running; then
    echo "export DOCKER_HOST=${OUR_HOST@Q}"
    echo "export DOCKER=${CLIENT@Q}"
  else
    die "no engine: run '$0 start' first (or set DOCKER_HOST)"
  fi
}

base() {  # print a base image name that exists in the engine
  local want=${1:?usage: base IMAGE}
  local docker=("${DOCKER:-docker}")
  # Our throwaway engine when it runs; otherwise the engine the user has (DOCKER_HOST or the default
  # socket, as on GitHub's runners).
  if ! user_engine && running; then docker=(env DOCKER_HOST="$OUR_HOST" "$CLIENT"); fi
  if "${docker[@]}" image inspect "$want" >/dev/null 2>&1 \
    || timeout 60 "${docker[@]}" pull -q "$want" >/dev/null 2>&1; then
    echo "$want"; return 0
  fi
  if ! "${docker[@]}" image inspect "$FALLBACK_BASE" >/dev/null 2>&1; then
    log "cannot pull $want: building $FALLBACK_BASE with debootstrap (~40 s)"
    install_tools
    local root="$STATE_DIR/rootfs"
    rm -rf "$root"
    mkdir -p "$STATE_DIR"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$STATE_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$STATE_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
    # Slim it the way Debian's -slim images are: no docs, man pages or translations, now or from
    # later installs, and no apt caches.
    cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\n' \
      >"$root/etc/apt/apt.conf.d/docker-clean"
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/cache/apt/*.bin \
      "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    tar -C "$root" -c . | "${docker[@]}" import - "$FALLBACK_BASE" >/dev/null
    rm -rf "$root"
  fi
  echo "$FALLBACK_BASE"
}

remove_iptables() {  # delete every rule that jumps to a DOCKER chain, then the chains themselves
  command -v iptables >/dev/null || return 0
  local table chain rule
  for table in filter nat; do
    for chain in INPUT FORWARD OUTPUT PREROUTING POSTROUTING; do
      { iptables -t "$table" -S "$chain" 2>/dev/null || true; } | { grep -E -- '-j DOCKER|-o docker0|-i docker0' || true; } \
        | while read -r rule; do
          # shellcheck disable=SC2086  # the saved rule is re-split into iptables' own arguments
          iptables -t "$table" ${rule/#-A/-D} 2>/dev/null || true
        done
    done
    { iptables -t "$table" -S 2>/dev/null || true; } | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}' \
      | while read -r chain; do
        iptables -t "$table" -F "$chain" 2>/dev/null || true
        iptables -t "$table" -X "$chain" 2>/dev/null || true
      done
  done
}

stop() {
  if user_engine; then log "DOCKER_HOST=$DOCKER_HOST is yours: not stopping it"; return 0; fi
  [[ -d "$STATE_DIR" ]] || { log "not running"; return 0; }
  if running; then
    # Our engine is throwaway: containers left in it would keep shims and mounts alive.
    DOCKER_HOST="$OUR_HOST" "$CLIENT" ps -aq | xargs -r env DOCKER_HOST="$OUR_HOST" "$CLIENT" rm -f >/dev/null || true
  fi
  local pid
  while read -r pid; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  done < <(for f in "$PIDFILE" "$STATE_DIR/launcher.pid"; do [[ -f "$f" ]] && echo "$(<"$f")"; done | sort -u)
  # Mounts of overlay layers or netns left by a killed daemon would block removing the state dir.
  grep -F " $STATE_DIR/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  if [[ ! -e "$STATE_DIR/bridge.preexisting" ]] && ip link show docker0 >/dev/null 2>&1; then
    ip link delete docker0 || true
  fi
  remove_iptables
  if [[ -s "$STATE_DIR/forward_policy.before" ]]; then
    iptables -P FORWARD "$(<"$STATE_DIR/forward_policy.before")" 2>/dev/null || true
  fi
  if [[ -f "$STATE_DIR/ip_forward.before" ]]; then
    cat "$STATE_DIR/ip_forward.before" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
  fi
  # Renamed first: a `start` right after this one gets a fresh directory while the old one goes.
  local trash
  trash="$STATE_DIR.removing.$$"
  mv "$STATE_DIR" "$trash" && rm -rf "$trash"
  log "stopped and removed $STATE_DIR"
}

status() {
  if user_engine; then echo "using DOCKER_HOST=$DOCKER_HOST"
  elif running; then echo "running: pid $(cat "$PIDFILE"), DOCKER_HOST=$OUR_HOST"
  else echo "not running"; return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  base) base "${2:-}" ;;
  status) status ;;
  *) echo "usage: $0 start|stop|env|status|base IMAGE" >&2; exit 2 ;;
esac
