#!/usr/bin/env python3
"""`make kube-play`: run the rendered Kubernetes Deployment with a real pod runtime and check its promises.

    python scripts/kube_play.py [--image catsdogs:dev] [--overlay k8s/overlays/kind] [--keep]

1. Render the overlay with `kubectl kustomize` (the same YAML `make deploy` applies to kind) and take
   its Deployment and ConfigMap unchanged, except: the image becomes --image (the overlay's tag is a
   placeholder the deploy sets), replicas become 1 (podman 4.3 starts one pod per replica, and on one
   host their ports would collide), and each containerPort gets hostIP 127.0.0.1 and a free hostPort,
   because podman publishes every containerPort on the host and a fixed 8080 may be taken.
2. Copy the image from the Docker engine (`docker save | podman load`) into a private podman: its
   containers.conf (runc, cgroupfs, the machine's own ulimits, file events) and storage live in a temp
   dir (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), so nothing of the host's podman setup changes.
3. `podman kube play` the manifest, run scripts/smoke_test.py through the published port, then check
   inside the running pod what the spec promises: the user and group, a read-only root with writable
   emptyDirs, every probe's own exec command or HTTP GET succeeding, the env and args as written (the
   process's own command line and environment), no capabilities, no privilege escalation, the
   ConfigMap's config mounted, management (8081) not published.
4. Tear down by name (`podman kube down`, the pod, the image) and remove the temp dir, whatever happened,
   and what podman's CNI networking left on the host that was not there before (its bridge and IP
   lease folder; CNI's iptables chains and state folder too unless another podman network remains
   on the host), as scripts/container_engine.sh does for dockerd.

Podman runs probes as healthchecks through systemd timers; without systemd it logs "unable to get
systemd connection to add healthchecks" and runs none, so this script runs each probe itself.

Exit 0 when everything passed; 1 when a check failed; 2 when a tool is missing. Needs root (podman),
podman with runc and catatonit (scripts/install_tools.sh podman) and a Docker engine holding the image
(`make image`; scripts/container_engine.sh where there is none).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


class CheckFailed(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"kube_play: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # requirements.txt installs it into the venv
    tool = str(beside) if beside.exists() else shutil.which("kubectl")
    if tool is None:
        raise FileNotFoundError("kubectl not found (make setup installs it into .venv/bin)")
    return tool


# --- 1. the manifest ------------------------------------------------------------------------------


def render(overlay: Path, image: str) -> tuple[list[dict], dict[int, int]]:
    """[ConfigMap..., Deployment] of the overlay for this image, and {containerPort: hostPort}."""
    text = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], check=True, capture_output=True, text=True
    ).stdout
    objects = [o for o in yaml.safe_load_all(text) if o]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    config_maps = [o for o in objects if o["kind"] == "ConfigMap"]
    deployment["spec"]["replicas"] = 1
    published = {}
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        container["image"] = image
        for port in container.get("ports", []):
            published[port["containerPort"]] = free_port()
            port.update(hostIP="127.0.0.1", hostPort=published[port["containerPort"]])
    return [*config_maps, deployment], published


# --- 2. a private podman --------------------------------------------------------------------------


class Podman:
    """podman with its configuration, storage and state under `state_dir` only."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # Measured here: runc may not set RLIMIT_NPROC above the kernel's pid_max (EPERM).
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], pid_max)
        (state_dir / "containers.conf").write_text(
            f"""# kube_play.py: a private podman (see the module docstring)
[containers]
# podman's defaults raise rlimits above this machine's hard limits, which is not permitted here.
default_ulimits = ["nofile={soft}:{hard}", "nproc={nproc}:{nproc}"]

[engine]
# crun fails on hybrid cgroup hierarchies; runc works. No systemd: cgroupfs, events to a file.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{state_dir}/tmp"
volume_path = "{state_dir}/volumes"

[network]
network_config_dir = "{state_dir}/networks"
"""
        )
        (state_dir / "storage.conf").write_text(
            f"""[storage]
driver = "overlay"
graphroot = "{state_dir}/storage"
runroot = "{state_dir}/run"
"""
        )
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(state_dir / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(state_dir / "storage.conf"),
        }

    def run(
        self, *args: str, check: bool = True, timeout: float = 300, **kwargs
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["podman", *args],
            check=False,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )
        if check and result.returncode != 0:
            raise CheckFailed(f"podman {' '.join(args[:3])}... failed: {result.stderr.strip()[-800:]}")
        return result

    def load_from_docker(self, image: str, docker: str) -> None:
        started = time.monotonic()
        save = subprocess.Popen([docker, "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["podman", "load"],
            check=False,
            stdin=save.stdout,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise CheckFailed(f"docker save {image} | podman load failed: {load.stderr.strip()[-500:]}")
        log(f"copied {image} from the Docker engine in {time.monotonic() - started:.0f} s")


# --- 3. what the pod spec promises ----------------------------------------------------------------


class Pod:
    def __init__(self, podman: Podman, container: str) -> None:
        self.podman, self.container = podman, container

    def exec(self, *command: str, check: bool = False) -> subprocess.CompletedProcess:
        return self.podman.run("exec", self.container, *command, check=check, timeout=60)


def wait_for_smoke_test(url: str, timeout: float) -> float:
    started = time.monotonic()
    smoke = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "smoke_test.py"), url, "--timeout", str(timeout)], check=False
    )
    if smoke.returncode != 0:
        raise CheckFailed("smoke test failed")
    return time.monotonic() - started


MANAGEMENT_CHECK = """
import socket
def listening(host):
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, 8081)) == 0
ip = socket.gethostbyname(socket.gethostname())
assert listening("127.0.0.1"), "nothing listens on 127.0.0.1:8081"
assert ip != "127.0.0.1" and not listening(ip), f"management answers on {ip}:8081"
"""


def probe_ok(pod: Pod, probe: dict, ports: dict[str, int]) -> str:
    """Run a probe as the kubelet would, from inside the pod; '' when it passes, else why not."""
    if "exec" in probe:
        result = pod.exec(*probe["exec"]["command"])
        return "" if result.returncode == 0 else f"exit {result.returncode}: {result.stderr.strip()}"
    http = probe["httpGet"]
    port = ports.get(http["port"], http["port"])
    # urllib in the image's Python: an HTTP GET of the probe's own path and port, like the kubelet's.
    code = (
        "import sys, urllib.request; "
        f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{port}{http['path']}', timeout=5).status < 400"
        " else 1)"
    )
    result = pod.exec("python", "-c", code)
    return "" if result.returncode == 0 else f"GET :{port}{http['path']}: {result.stderr.strip()[-300:]}"


def check_pod(pod: Pod, deployment: dict, published: dict[int, int], podman: Podman) -> list[str]:
    """Every promise of the pod spec that does not hold (empty when all do); prints each result."""
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    failures = []

    def check(what: str, problem: str) -> None:
        print(f"  {'ok  ' if not problem else 'FAIL'} {what}{': ' + problem if problem else ''}", flush=True)
        if problem:
            failures.append(f"{what}: {problem}")

    uid, gid = pod.exec("id", "-u").stdout.strip(), pod.exec("id", "-g").stdout.strip()
    want = f"{security['runAsUser']}:{security['runAsGroup']}"
    check(f"runs as {want}", "" if f"{uid}:{gid}" == want else f"runs as {uid}:{gid}")
    status = dict(
        line.split(":\t", 1)
        for line in pod.exec("cat", "/proc/1/status").stdout.splitlines()
        if ":\t" in line
    )
    check("no capabilities (CapEff 0)", "" if int(status["CapEff"], 16) == 0 else status["CapEff"])
    check(
        "no privilege escalation (NoNewPrivs)", "" if status["NoNewPrivs"].strip() == "1" else "NoNewPrivs 0"
    )
    writable = pod.exec("touch", "/srv/catsdogs/written-by-kube-play")
    check("read-only root filesystem", "" if writable.returncode != 0 else "/srv/catsdogs is writable")
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            result = pod.exec("touch", f"{mount['mountPath']}/written-by-kube-play")
            check(
                f"emptyDir {mount['mountPath']} writable", result.stderr.strip() if result.returncode else ""
            )
        elif "configMap" in volume:
            mounted = pod.exec("cat", f"{mount['mountPath']}/config.properties").stdout
            shipped = (ROOT / "k8s" / "base" / "config.properties").read_text()
            check(
                f"ConfigMap {volume['configMap']['name']} at {mount['mountPath']}",
                "" if mounted == shipped else "differs from k8s/base/config.properties",
            )
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        if kind in container:
            probe = container[kind]
            how = " ".join(probe["exec"]["command"]) if "exec" in probe else f"GET {probe['httpGet']['path']}"
            check(f"{kind} ({how})", probe_ok(pod, probe, ports))
    cmdline = pod.exec("cat", "/proc/1/cmdline").stdout.split("\0")[:-1]
    args = container.get("args", [])
    check(
        f"args as written ({' '.join(args[:3])} ...)",
        "" if cmdline[-len(args) :] == args else f"PID 1 runs {cmdline}",
    )
    # The container's environment, as its init (PID 1, tini) got it and passes it on to TorchServe.
    environ = dict(
        item.split("=", 1) for item in pod.exec("cat", "/proc/1/environ").stdout.split("\0") if "=" in item
    )
    for variable in container.get("env", []):
        got = environ.get(variable["name"])
        check(
            f"env {variable['name']}={variable['value']}", "" if got == variable["value"] else f"is {got!r}"
        )
    # Management listens on the pod's loopback only (config.properties): not on the pod's own address.
    management = pod.exec("python", "-c", MANAGEMENT_CHECK)
    check(
        "management (8081) on the pod's 127.0.0.1 only",
        management.stderr.strip()[-300:] if management.returncode else "",
    )
    mapping = podman.run("port", pod.container, check=False).stdout
    check("management (8081) not published", "" if "8081" not in mapping else mapping.strip())
    check(
        "ports published on 127.0.0.1 only",
        ""
        if all(f"127.0.0.1:{p}" in mapping for p in published.values()) and "0.0.0.0" not in mapping
        else mapping.strip(),
    )
    return failures


# --- 4. what podman's CNI networking leaves on the host --------------------------------------------

CNI_STATE = Path("/var/lib/cni")
# The network `podman kube play` creates for its pods (in our private network_config_dir).
KUBE_NETWORK = "podman-default-kube-network"


def _cni_chains() -> set[tuple[str, str]]:
    """(table, chain) of the iptables chains CNI creates (CNI-*), in the nat and filter tables."""
    chains = set()
    for table in ("nat", "filter"):
        result = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True, check=False)
        chains |= {
            (table, line.split()[1]) for line in result.stdout.splitlines() if line.startswith("-N CNI-")
        }
    return chains


def host_network() -> dict:
    """What CNI may add to the host: bridges, its state folder and IP lease folders, iptables chains."""
    return {
        "links": set(os.listdir("/sys/class/net")),
        "cni_state": CNI_STATE.exists(),
        "leases": set(os.listdir(CNI_STATE / "networks")) if (CNI_STATE / "networks").exists() else set(),
        "chains": _cni_chains() if shutil.which("iptables") else set(),
    }


def restore_host_network(before: dict) -> None:
    """Remove what appeared since `before` and nobody else uses (other podmans may share the host)."""
    for link in sorted(set(os.listdir("/sys/class/net")) - before["links"]):
        # Our bridge has no ports left after teardown; a bridge with ports is someone else's, in use.
        if link.startswith("cni-podman") and not os.listdir(f"/sys/class/net/{link}/brif"):
            subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
    if (CNI_STATE / "networks").exists():
        for lease in set(os.listdir(CNI_STATE / "networks")) - before["leases"]:
            if lease == KUBE_NETWORK:
                shutil.rmtree(CNI_STATE / "networks" / lease, ignore_errors=True)
    if any(link.startswith("cni-podman") for link in os.listdir("/sys/class/net")):
        return  # another podman's network remains: its CNI state and chains stay with it
    if not before["cni_state"]:
        shutil.rmtree(CNI_STATE, ignore_errors=True)
    if not shutil.which("iptables"):
        return
    new = _cni_chains() - before["chains"]
    for table in {t for t, _ in new}:
        chains = {c for t, c in new if t == table}
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True, check=False)
        for rule in rules.stdout.splitlines():  # jumps into our chains from chains we keep
            words = shlex.split(rule)  # comments are quoted
            jumps_to = words[words.index("-j") + 1] if "-j" in words else None
            if words[0] == "-A" and words[1] not in chains and jumps_to in chains:
                subprocess.run(["iptables", "-t", table, "-D", *words[1:]], capture_output=True, check=False)
        for flag in ("-F", "-X"):
            for chain in chains:
                subprocess.run(["iptables", "-t", table, flag, chain], capture_output=True, check=False)


# --- the run ----------------------------------------------------------------------------------------


def play(args: argparse.Namespace, state_dir: Path) -> int:
    objects, published = render(args.overlay, args.image)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    manifest = state_dir / "kube.yaml"
    manifest.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    podman = Podman(state_dir)
    podman.load_from_docker(args.image, args.docker)
    name = deployment["metadata"]["name"]
    started = time.monotonic()
    container = ""
    try:
        podman.run("kube", "play", str(manifest))
        (container,) = [
            c
            for c in podman.run("ps", "--format", "{{.Names}}").stdout.split()
            if c.endswith("-" + deployment["spec"]["template"]["spec"]["containers"][0]["name"])
        ]
        http = published[8080]
        log(f"pod of Deployment {name} started; container {container}; inference http://127.0.0.1:{http}")
        smoke_s = wait_for_smoke_test(f"http://127.0.0.1:{http}", args.timeout)
        log(
            f"smoke test passed {time.monotonic() - started:.1f} s after kube play ({smoke_s:.1f} s of it waiting/testing)"
        )
        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{published[8082]}/metrics", timeout=10).read().decode()
        )
        if "ts_inference_requests_total" not in body:
            raise CheckFailed("no TorchServe request counter in /metrics")
        print("what the pod spec promises:", flush=True)
        failures = check_pod(Pod(podman, container), deployment, published, podman)
        if failures:
            raise CheckFailed(f"{len(failures)} promise(s) of the pod spec do not hold")
        log(f"kube-play passed in {time.monotonic() - started:.0f} s")
        return 0
    except CheckFailed:
        logs = podman.run("logs", "--tail", "40", container, check=False) if container else None
        if logs is not None:
            print(logs.stdout[-3000:] + logs.stderr[-1000:], file=sys.stderr)
        raise
    finally:
        if not args.keep:
            podman.run("kube", "down", str(manifest), check=False)
            podman.run("pod", "rm", "--force", "--time", "0", f"{name}-pod-0", check=False)
            podman.run("network", "rm", "--force", KUBE_NETWORK, check=False)
            podman.run("rmi", "--all", "--force", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=os.environ.get("IMAGE", "catsdogs:dev"))
    parser.add_argument("--overlay", type=Path, default=ROOT / "k8s" / "overlays" / "kind")
    parser.add_argument("--docker", default=os.environ.get("DOCKER", "docker"), help="the Docker CLI")
    parser.add_argument("--timeout", type=float, default=180, help="seconds for the pod to answer")
    parser.add_argument("--keep", action="store_true", help="leave the pod and temp dir for inspection")
    args = parser.parse_args(argv)
    # `timeout` and CI cancel with SIGTERM: tear down as on any other failure.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for tool in ("podman", "runc", args.docker):
        if shutil.which(tool) is None:
            log(f"{tool} not found: scripts/install_tools.sh podman (and a Docker engine with the image)")
            return 2
    state_dir = Path(tempfile.mkdtemp(prefix="catsdogs-kube-play-"))
    before = host_network()
    try:
        return play(args, state_dir)
    except (CheckFailed, subprocess.CalledProcessError, FileNotFoundError) as e:
        log(f"error: {e}")
        return 1
    finally:
        if args.keep:
            log(
                f"kept: CONTAINERS_CONF={state_dir}/containers.conf CONTAINERS_STORAGE_CONF={state_dir}/storage.conf"
            )
        else:
            subprocess.run(
                ["umount", "--recursive", "--lazy", str(state_dir / "storage" / "overlay")],
                capture_output=True,
                check=False,
            )
            shutil.rmtree(state_dir, ignore_errors=True)
            restore_host_network(before)


if __name__ == "__main__":
    sys.exit(main())
