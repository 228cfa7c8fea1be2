"""Find and stop the processes of one process group: a TorchServe launcher, its JVM and its workers.

serving/server.py starts TorchServe in a new session, so the group id is the launcher's pid and every
process TorchServe spawns (the JVM, the Python workers) inherits it; signalling the group ends them
all, including after the launcher itself has gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil


def group_members(pgid: int, marker: str = "") -> list[psutil.Process]:
    """Live (non-zombie) processes of group `pgid` whose command line contains `marker`."""
    members = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if os.getpgid(process.pid) != pgid or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
        except OSError:
            continue
        if marker in " ".join(process.info["cmdline"] or ()):
            members.append(process)
    return members


def stop_group(pgid: int, timeout: float, child: subprocess.Popen | None = None) -> None:
    """SIGTERM the group, wait up to `timeout` s for it to end, then SIGKILL what is left."""

    def alive() -> bool:
        if child is not None:
            child.poll()  # reap our own child, or it lingers as a zombie
        return bool(group_members(pgid))

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            return
