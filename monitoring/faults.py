"""TorchServe's backend workers: find them, kill one, and time how long the server takes to replace it.

A worker is a Python process (`ts/model_service_worker.py`) whose parent is the Java frontend. The
management API names each worker and its pid (`GET /models/{model}/all`); `worker_pids` cross-checks
that against the process table, so a test never signals anything but a real worker of this server.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import psutil
import requests

from serving.server import model_ready
from serving.store import MODEL_NAME


class WorkerError(RuntimeError):
    """Workers could not be read, did not look like TorchServe workers, or did not come back."""


def worker_pids(management_url: str, model: str = MODEL_NAME) -> dict[str, int]:
    """{"<version>/<worker id>": pid} of every worker of every version of `model` (READY or not)."""
    answer = requests.get(f"{management_url}/models/{model}/all", timeout=5)
    answer.raise_for_status()
    pids = {f"{v['modelVersion']}/{w['id']}": int(w["pid"]) for v in answer.json() for w in v["workers"]}
    for name, pid in pids.items():
        try:
            process = psutil.Process(pid)
            parent = process.parent()
            is_worker = (
                "model_service_worker" in " ".join(process.cmdline()) and parent and "java" in parent.name()
            )
        except psutil.Error:
            is_worker = False  # exited since the API answered: not READY, caller waits
        if not is_worker and pid > 0:
            pids[name] = -1
    return pids


@dataclass(frozen=True)
class Kill:
    worker: str
    pid: int
    killed_at: float  # time.monotonic()
    recovered_s: float  # kill -> as many workers as before, all READY, none with the killed pid


def kill_worker_and_wait(management_url: str, model: str = MODEL_NAME, timeout: float = 60.0) -> Kill:
    """SIGKILL the first worker (by name) and wait until the server has replaced it."""
    before = {k: v for k, v in worker_pids(management_url, model).items() if v > 0}
    if not before:
        raise WorkerError(f"no live worker of {model} at {management_url}")
    worker = sorted(before)[0]
    pid = before[worker]
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while time.monotonic() - killed_at < timeout:
        try:
            now = worker_pids(management_url, model)
        except requests.RequestException:
            now = {}
        # The replacement may get a new worker id: compare the set of live pids, not names.
        live = [p for p in now.values() if p > 0]
        if (
            pid not in live
            and len(live) == len(before)
            and len(now) == len(before)
            and model_ready(management_url, model)
        ):
            return Kill(worker, pid, killed_at, time.monotonic() - killed_at)
        time.sleep(0.05)
    raise WorkerError(f"worker {worker} (pid {pid}) not replaced within {timeout:.0f} s")
