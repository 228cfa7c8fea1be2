#!/usr/bin/env bash
# Install the Debian tools the production-like checks run, when they are missing (safe to re-run):
#
#   scripts/install_tools.sh prometheus       # prometheus + promtool (rule tests, live scrape test)
#   scripts/install_tools.sh compose          # docker-compose 1.29 (Compose spec; `make up`)
#   scripts/install_tools.sh podman           # podman 4.3 + runc + catatonit (`make kube-play`)
#   scripts/install_tools.sh all
#
# Each is a package of Debian 12 (apt-get, needs root). When the commands are already on PATH,
# nothing is installed, so a machine that has them from elsewhere (a newer Prometheus, Docker's
# compose) keeps its own. The container engine itself is scripts/container_engine.sh's job.
set -euo pipefail

log() { echo "install_tools: $*" >&2; }

packages_for() {  # tool -> the Debian packages that provide its commands, if any command is missing
  case "$1" in
    prometheus) command -v prometheus >/dev/null && command -v promtool >/dev/null || echo prometheus ;;
    compose) command -v docker-compose >/dev/null || echo docker-compose ;;
    # `kube play` here needs runc (crun fails on hybrid cgroups) and catatonit, the init of the pod's
    # infra container (podman builds its pause image from it; nothing can be pulled here).
    podman)
      command -v podman >/dev/null && command -v runc >/dev/null && [[ -x /usr/libexec/podman/catatonit ]] \
        || echo podman runc catatonit
      ;;
  esac
}

main() {
  local tools=("$@") missing=() tool
  ((${#tools[@]})) || { echo "usage: $0 prometheus|compose|podman|all ..." >&2; exit 2; }
  [[ " ${tools[*]} " == *" all "* ]] && tools=(prometheus compose podman)
  for tool in "${tools[@]}"; do
    case "$tool" in
      prometheus | compose | podman) ;;
      *) log "unknown tool '$tool' (prometheus, compose, podman, all)"; exit 2 ;;
    esac
    read -r -a pkgs <<<"$(packages_for "$tool")"
    missing+=("${pkgs[@]}")
  done
  if ((${#missing[@]} == 0)); then log "present: ${tools[*]}"; return 0; fi
  [[ $EUID -eq 0 ]] || { log "installing ${missing[*]} needs root (apt-get)"; exit 1; }
  log "installing ${missing[*]} with apt-get"
  apt-get update -qq
  # Debian's prometheus package would start a system service where systemd runs; the tests start
  # their own server on loopback, and `policy-rc.d` keeps the package from starting one.
  local policy=/usr/sbin/policy-rc.d created=""
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { [[ -z "$created" ]] || rm -f "$policy"; exit 1; }
  [[ -z "$created" ]] || rm -f "$policy"
}

main "$@"
