#!/usr/bin/env bash
# compose.yaml as a person runs it, and as CI tests it.
#
#   scripts/compose.sh up [PROFILE...]   # start (PROFILE: monitoring); wait until catsdogs is healthy
#   scripts/compose.sh down [-v]         # stop and remove every service of the project (all profiles;
#                                        # -v: and the Prometheus/Grafana data volumes)
#   scripts/compose.sh test              # `catsdogs` on free ports under a throwaway project name:
#                                        # healthy, scripts/smoke_test.py, metrics, the hardening
#                                        # compose.yaml promises; always torn down
#
# Compose: $COMPOSE if set, else `docker compose` (v2) when the docker CLI has it, else Debian's
# docker-compose 1.29 (scripts/install_tools.sh compose). The engine is DOCKER_HOST's (see
# scripts/container_engine.sh where there is none). Settings: IMAGE (catsdogs:dev), PROJECT
# (catsdogs), BIND, HTTP_PORT, METRICS_PORT (compose.yaml), PY (python for the smoke test),
# HEALTH_TIMEOUT (240 s).
set -euo pipefail
cd "$(dirname "$0")/.."

export IMAGE=${IMAGE:-catsdogs:dev}
PROJECT=${PROJECT:-catsdogs}
PY=${PY:-python3}
DOCKER=${DOCKER:-docker}

log() { echo "compose.sh: $*" >&2; }
die() { log "error: $*"; exit "${2:-1}"; }

compose_cmd() {
  if [[ -n "${COMPOSE:-}" ]]; then
    read -r -a COMPOSE_ARGV <<<"$COMPOSE"
  elif "$DOCKER" compose version >/dev/null 2>&1; then
    COMPOSE_ARGV=("$DOCKER" compose)
  elif command -v docker-compose >/dev/null; then
    COMPOSE_ARGV=(docker-compose)
  else
    die "no Compose: install Docker Compose v2, or Debian's docker-compose (scripts/install_tools.sh compose)" 2
  fi
}

compose() { "${COMPOSE_ARGV[@]}" -f compose.yaml -p "$PROJECT" "$@"; }

wait_healthy() {  # until the catsdogs container's HEALTHCHECK says healthy
  local id health="" deadline=$((SECONDS + ${HEALTH_TIMEOUT:-240}))
  id=$(compose ps -q catsdogs)
  [[ -n "$id" ]] || die "no catsdogs container"
  while ((SECONDS < deadline)); do
    health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$id")
    [[ "$health" == healthy ]] && return 0
    [[ "$("$DOCKER" inspect -f '{{.State.Running}}' "$id")" == true ]] || break
    sleep 2
  done
  compose logs --tail 60 catsdogs >&2 || true
  die "catsdogs is '$health', not healthy"
}

up() {
  local args=() profile
  for profile in "$@"; do args+=(--profile "$profile"); done
  "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1 || "$DOCKER" pull -q "$IMAGE" >/dev/null 2>&1 \
    || die "image $IMAGE not found: build it (make image) or set IMAGE to a tag you can pull" 2
  local started=$SECONDS
  compose "${args[@]}" up -d
  wait_healthy
  log "catsdogs healthy after $((SECONDS - started)) s: http://${BIND:-127.0.0.1}:${HTTP_PORT:-8080}/predictions/catsdogs," \
    "metrics http://${BIND:-127.0.0.1}:${METRICS_PORT:-8082}/metrics"
  if [[ " $* " == *" monitoring "* ]]; then
    log "Prometheus http://${BIND:-127.0.0.1}:${PROMETHEUS_PORT:-9090}, Grafana http://${BIND:-127.0.0.1}:${GRAFANA_PORT:-3000}"
  fi
}

# Named volumes (Prometheus and Grafana data) survive `down`, like a server's disk; `down -v` drops them.
down() { compose --profile monitoring down --remove-orphans "$@"; }

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

test_compose() {
  local started=$SECONDS
  PROJECT="catsdogs-compose-test-$$"
  export BIND=127.0.0.1 HTTP_PORT METRICS_PORT
  HTTP_PORT=$(free_port)
  METRICS_PORT=$(free_port)
  trap 'down -v' EXIT
  up
  local id
  id=$(compose ps -q catsdogs)
  "$PY" scripts/smoke_test.py "http://127.0.0.1:$HTTP_PORT" --timeout 120 || die "smoke test failed"
  "$PY" -c 'import sys, urllib.request; body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
assert "ts_inference_requests_total" in body, "no TorchServe request counter in /metrics"' \
    "http://127.0.0.1:$METRICS_PORT/metrics" || die "metrics check failed"
  # What compose.yaml promises, as the engine applied it.
  [[ "$("$DOCKER" exec "$id" id -u)" == 10001 ]] || die "not running as uid 10001"
  if "$DOCKER" exec "$id" touch /srv/catsdogs/x 2>/dev/null; then die "the root filesystem is writable"; fi
  "$DOCKER" exec "$id" touch /tmp/x /home/model-server/logs/x || die "/tmp or the logs are not writable"
  [[ "$("$DOCKER" inspect -f '{{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}' "$id")" == *ALL*no-new-privileges* ]] \
    || die "capabilities or no-new-privileges not applied"
  local published
  published=$("$DOCKER" port "$id")
  [[ "$published" != *8081* ]] || die "management (8081) is published"
  [[ "$(grep -c '127.0.0.1:' <<<"$published")" == "$(grep -c . <<<"$published")" ]] \
    || die "a port is published beyond 127.0.0.1: $published"
  log "compose test passed in $((SECONDS - started)) s (${COMPOSE_ARGV[*]})"
}

case "${1:-}" in
  up) shift; compose_cmd; up "$@" ;;
  down) shift; compose_cmd; down "$@" ;;
  test) compose_cmd; test_compose ;;
  *) echo "usage: $0 up [monitoring] | down | test" >&2; exit 2 ;;
esac
