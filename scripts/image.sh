#!/usr/bin/env bash
# Build the serving image, and test it the way the Kubernetes Deployment runs it.
#
#   scripts/image.sh build   # IMAGE (catsdogs:dev) serving MAR (models/catsdogs.mar), or RELEASE's archive
#   scripts/image.sh test    # build; run it non-root, read-only, no capabilities, ports on 127.0.0.1;
#                            # scripts/smoke_test.py; management unreachable; always clean up
#
# Uses the engine that DOCKER_HOST (or the default socket) points at, through $DOCKER (default
# docker), which must do BuildKit (Docker >= 23 with buildx, or Debian's docker.io). Where there is
# no engine, as root:  scripts/container_engine.sh start && eval "$(scripts/container_engine.sh env)"
# RELEASE=dist/catsdogs-<version> (from `make release`): serve that bundle's archive after checking its
# SHA256SUMS, and label the image with its model version, data version, test accuracy and commit.
# REQUIRE_RELEASE=1 (CI) refuses to build from anything but a release: the release is the gate that
# keeps synthetic-data and below-gate models out, so an image without one could serve either.
# PIN_BASE=1 (CI) builds on BASE_IMAGE resolved to its registry digest (recorded in a label), so a
# moved tag cannot change what a rebuild of the same commit contains.
# Settings (environment): IMAGE, MAR, PY (python for the smoke test), BASE_IMAGE and TORCH_INDEX_URL
# (Dockerfile defaults; a debootstrapped Debian base when BASE_IMAGE cannot be pulled),
# TORCH_WHEEL_DIR (a folder with the CPU torch wheel for when that index is unreachable; default: the
# folders in PIP_FIND_LINKS), EXTRA_CA_BUNDLE (PEM bundle for HTTPS through a re-signing proxy while
# building; default PIP_CERT, the bundle your pip already trusts), SMOKE_TIMEOUT (180).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-catsdogs:dev}
MAR=${MAR:-models/catsdogs.mar}
RELEASE=${RELEASE:-}
PY=${PY:-python3}
DOCKER=${DOCKER:-docker}
# Inputs that are not in git (the archive, a local torch wheel) are staged here, inside the context.
STAGE=build/image

log() { echo "image.sh: $*" >&2; }
die() { log "error: $*"; exit "${2:-1}"; }
dockerfile_default() { sed -n "s/^ARG $1=//p" Dockerfile | head -1; }
BASE_IMAGE=${BASE_IMAGE:-$(dockerfile_default BASE_IMAGE)}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-$(dockerfile_default TORCH_INDEX_URL)}
EXTRA_CA_BUNDLE=${EXTRA_CA_BUNDLE:-${PIP_CERT:-}}

require_engine() {
  command -v "$DOCKER" >/dev/null || die "no docker CLI ($DOCKER). Install Docker, or as root on Debian:
  scripts/container_engine.sh start && eval \"\$(scripts/container_engine.sh env)\"" 2
  "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "no container engine answers at ${DOCKER_HOST:-the default socket}. Start Docker or set DOCKER_HOST; or, as root on Debian:
  scripts/container_engine.sh start && eval \"\$(scripts/container_engine.sh env)\"" 2
  local client
  client=$("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null || echo 0)
  if ((${client%%.*} >= 23)) && ! "$DOCKER" buildx version >/dev/null 2>&1; then
    die "$DOCKER $client has no buildx plugin, which BuildKit builds need: install docker-buildx, or use a
  client with built-in BuildKit (DOCKER=/usr/bin/docker from Debian's docker.io)" 2
  fi
}

torch_version() { sed -n 's/^torch==//p' requirements-serve.txt; }

stage_torch_wheel() {  # a local CPU torch wheel in $STAGE/wheels when PyTorch's index is unreachable
  local version dirs dir wheel
  version=$(torch_version)
  if [[ -z "${TORCH_WHEEL_DIR:-}" ]]; then
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=10)' \
      "$TORCH_INDEX_URL" 2>/dev/null; then
      return 0
    fi
    log "$TORCH_INDEX_URL is unreachable: looking for a local torch $version CPU wheel"
  fi
  dirs=${TORCH_WHEEL_DIR:-${PIP_FIND_LINKS:-}}
  for dir in $dirs; do
    for wheel in "${dir#file://}"/torch-"$version"+cpu-cp311-*.whl; do
      [[ -f "$wheel" ]] || continue
      mkdir -p "$STAGE/wheels"
      ln -f "$wheel" "$STAGE/wheels/" 2>/dev/null || cp "$wheel" "$STAGE/wheels/"
      log "using $wheel"
      return 0
    done
  done
  die "cannot reach $TORCH_INDEX_URL and found no torch-$version+cpu-cp311 wheel in '${dirs}': set TORCH_WHEEL_DIR"
}

LABEL_ARGS=()
choose_archive() {  # sets MAR (and LABEL_ARGS from a release); dies when REQUIRE_RELEASE=1 has none
  if [[ -n "$RELEASE" ]]; then
    [[ -f "$RELEASE/release.json" ]] || die "RELEASE=$RELEASE is not a release folder (make release writes dist/catsdogs-<version>/)" 2
    local args arg
    # Verifies every checksum and that the release is of real data; prints the label build arguments.
    args=$("$PY" -m serving.release build-args "$RELEASE") || die "release $RELEASE failed verification" 2
    while read -r arg; do LABEL_ARGS+=(--build-arg "$arg"); done <<<"$args"
    MAR=$(ls "$RELEASE"/catsdogs-*.mar)
    log "release $RELEASE verified: ${LABEL_ARGS[*]}"
  elif [[ "${REQUIRE_RELEASE:-0}" == 1 ]]; then
    die "REQUIRE_RELEASE=1: refusing to build from a bare archive ($MAR); build from a release bundle that passed the gate: make release && make image RELEASE=dist/catsdogs-<version>" 2
  fi
}

pin_base() {  # the base image by its registry digest (PIN_BASE=1), else as given
  local base=$1 digest
  if [[ "${PIN_BASE:-0}" != 1 || "$base" == *@sha256:* ]]; then echo "$base"; return; fi
  digest=$("$DOCKER" image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$base" | head -1)
  [[ "$digest" == *@sha256:* ]] || die "PIN_BASE=1: $base has no registry digest (a local image cannot be pinned)" 2
  echo "${base}@${digest#*@}"
}

build() {
  choose_archive
  require_engine
  [[ -f "$MAR" ]] || die "$MAR not found: build the model archive first (make train package)"
  rm -rf "$STAGE" && mkdir -p "$STAGE"
  cp "$MAR" "$STAGE/catsdogs.mar"
  stage_torch_wheel
  local base args=()
  base=$(DOCKER="$DOCKER" scripts/container_engine.sh base "$BASE_IMAGE")
  base=$(pin_base "$base")
  args+=(--build-arg "BASE_IMAGE=$base" --build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
  args+=(--build-arg "MODEL_ARCHIVE=$STAGE/catsdogs.mar" "${LABEL_ARGS[@]}")
  if [[ -n "$EXTRA_CA_BUNDLE" ]]; then args+=(--secret "id=extra_ca,src=$EXTRA_CA_BUNDLE"); fi
  log "building $IMAGE from $MAR on $base"
  local started=$SECONDS
  if "$DOCKER" buildx version >/dev/null 2>&1; then
    # No provenance attestation: with it, Docker's containerd image store keeps an image index that
    # `kind load docker-image` cannot load, and `docker push` publishes the index too.
    "$DOCKER" buildx build --load --provenance=false "${args[@]}" -t "$IMAGE" .
  else
    DOCKER_BUILDKIT=1 "$DOCKER" build "${args[@]}" -t "$IMAGE" .
  fi
  log "built $IMAGE in $((SECONDS - started)) s, $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" \
    | awk '{printf "%.2f GB", $1 / 1e9}')"
}

# The container's ports: serving/ports.py is their one definition (the image's config is checked against it).
read -r INFERENCE_PORT MANAGEMENT_PORT METRICS_PORT < <(
  "$PY" -c 'from serving.ports import Ports; p = Ports(); print(p.inference, p.management, p.metrics)')

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Run inside the container: management answers on its loopback and on no other address.
MANAGEMENT_CHECK='
import socket, sys
port = int(sys.argv[1])
def listening(host):
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0
ip = socket.gethostbyname(socket.gethostname())
assert listening("127.0.0.1"), f"management API is not listening on 127.0.0.1:{port} in the container"
assert ip != "127.0.0.1" and not listening(ip), f"management API answers on {ip}:{port}"
print(f"management API on 127.0.0.1:{port} only (refused on {ip}:{port})")
'

# Run inside the container after the smoke test: what the frontend and each worker hold in memory.
MEMORY_REPORT='
import psutil
java, workers = [], []
for process in psutil.process_iter(["cmdline"]):
    command = " ".join(process.info["cmdline"] or ())
    parent = process.parent()
    if "model_service_worker" in command and parent and parent.name() == "java":  # not a shell around it
        workers.append(process.memory_full_info())
    elif process.name() == "java":
        java.append(process.memory_info())
def mb(values):
    return " / ".join(f"{v / 1e6:.0f}" for v in values)
print(f"memory after the smoke test: frontend (JVM) RSS {mb(m.rss for m in java)} MB; "
      f"{len(workers)} workers RSS {mb(m.rss for m in workers)} MB, USS {mb(m.uss for m in workers)} MB")
'

test_image() {
  local started=$SECONDS
  build
  local name="catsdogs-image-test-$$" http metrics
  http=$(free_port)
  metrics=$(free_port)
  # shellcheck disable=SC2064  # the name is fixed now; the trap must remove this container
  trap "'$DOCKER' rm -f '$name' >/dev/null 2>&1 || true" EXIT
  # As k8s/base/deployment.yaml runs it: its uid, read-only root with writable /tmp and logs (the
  # emptyDirs), no capabilities, no privilege escalation, its memory limit, the image's args and env.
  "$DOCKER" run -d --name "$name" \
    --user 10001:10001 --read-only \
    --tmpfs /tmp:rw,nosuid,nodev,size=1g \
    --tmpfs /home/model-server/logs:rw,nosuid,nodev,size=512m,uid=10001,gid=10001 \
    --cap-drop ALL --security-opt no-new-privileges --memory 2g \
    -p "127.0.0.1:$http:$INFERENCE_PORT" -p "127.0.0.1:$metrics:$METRICS_PORT" \
    "$IMAGE" >/dev/null
  log "running $name: inference http://127.0.0.1:$http, metrics http://127.0.0.1:$metrics"
  local smoke=(--timeout "${SMOKE_TIMEOUT:-180}")
  # A release's image must answer with that release's version; SMOKE_LABELLED=DIR adds the accuracy
  # check on real photos (SMOKE_MIN_ACCURACY, default 0.9).
  if [[ -n "$RELEASE" ]]; then
    smoke+=(--expect-version "$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
      "$RELEASE/release.json")")
  fi
  if [[ -n "${SMOKE_LABELLED:-}" ]]; then
    smoke+=(--labelled "$SMOKE_LABELLED" --min-accuracy "${SMOKE_MIN_ACCURACY:-0.9}")
  fi
  if ! "$PY" scripts/smoke_test.py "http://127.0.0.1:$http" "${smoke[@]}"; then
    "$DOCKER" logs --tail 80 "$name" >&2 || true
    die "smoke test failed"
  fi
  log "$("$DOCKER" exec "$name" python -c "$MEMORY_REPORT")"
  [[ -z "$("$DOCKER" port "$name" "$MANAGEMENT_PORT/tcp" 2>/dev/null)" ]] \
    || die "management port $MANAGEMENT_PORT is published on the host"
  "$DOCKER" exec "$name" python -c "$MANAGEMENT_CHECK" "$MANAGEMENT_PORT" || die "management API check failed"
  [[ "$("$DOCKER" exec "$name" id -u)" == 10001 ]] || die "the server does not run as uid 10001"
  if "$DOCKER" exec "$name" touch /srv/catsdogs/x 2>/dev/null; then die "the root filesystem is writable"; fi
  "$PY" -c 'import sys, urllib.request; body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
assert "ts_inference_requests_total" in body, "no TorchServe request counter in /metrics"' \
    "http://127.0.0.1:$metrics/metrics" || die "metrics check failed"
  local health=""
  for _ in $(seq 1 30); do
    health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$name")
    [[ "$health" == healthy ]] && break
    sleep 2
  done
  [[ "$health" == healthy ]] || die "HEALTHCHECK is '$health', not healthy"
  log "HEALTHCHECK healthy; metrics on 127.0.0.1:$metrics; non-root, read-only root filesystem"
  log "image-test passed in $((SECONDS - started)) s"
}

case "${1:-}" in
  build) build ;;
  test) test_image ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
