"""Start, wait for and stop a TorchServe whose files all live in one run folder.

Used by `make serve` / `make stop`, the integration tests, the benchmark and the monitoring tests:

    server = TorchServe(model_store, run_dir, ports=Ports.free(), models=[ModelSpec("catsdogs-1.0.mar")])
    with server:                          # start() + wait_ready(); stop() on exit
        requests.post(f"{server.inference_url}/predictions/catsdogs", ...)

The run folder holds the effective config.properties, torchserve.pid, torchserve.log (the server's
stdout), logs/ (access_log.log, ts_log.log, model_log.log, metrics logs) and tmp/ (worker sockets,
unpacked archives), so several servers can run side by side on one machine. The server runs in its
own process group whose id is its pid; stop() signals that group (TERM, then KILL), so the Java
frontend and its Python workers all end. `--ncs` means a restart loads exactly `models`, nothing
remembered from a previous run.

The models are loaded at start from a `model_snapshot` (TorchServe's own format for restoring
models with their settings, also what KServe's TorchServe runtime reads) rather than `load_models`:
it is the only start-up path that takes each archive's batching as is, including a delay of 0
(serving/package.py Batching).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from serving.ports import Ports, check_free, local_url
from serving.process_group import group_members, stop_group
from serving.properties import read_properties, write_properties
from serving.store import MODEL_NAME, archive_batching, read_manifest

SERVING_DIR = Path(__file__).resolve().parent
LOCAL_CONFIG = SERVING_DIR / "config.properties"
LOG_CONFIG = SERVING_DIR / "log4j2.xml"
METRICS_CONFIG = SERVING_DIR / "metrics.yaml"
PID_FILE = "torchserve.pid"


def model_ready(management_url: str, name: str = MODEL_NAME) -> bool:
    """Every registered version of model `name` has at least its minimum of workers, all READY.

    `/ping` says Healthy before any worker has loaded the model, so readiness asks the management API.
    """
    try:
        answer = requests.get(f"{management_url}/models/{name}/all", timeout=2)
        versions = answer.json() if answer.status_code == 200 else []
    except (requests.RequestException, ValueError):
        return False
    return bool(versions) and all(
        v["workers"]
        and len(v["workers"]) >= v.get("minWorkers", 1)
        and all(w["status"] == "READY" for w in v["workers"])
        for v in versions
    )


class ServerError(RuntimeError):
    """TorchServe could not be started, did not become ready, or is not running; says why."""


def model_state(mar: str, props: dict[str, str], batch_size: int, max_batch_delay_ms: int,
                workers: int | None = None, default: bool = True) -> dict:
    """One version's entry in a TorchServe model snapshot (wlm/Model.java setModelState). Workers
    and timeouts default to the config's (`props`): a snapshot entry without timeouts would take
    TorchServe's archive defaults (120 s) instead."""
    workers = int(props["default_workers_per_model"]) if workers is None else workers
    return {"defaultVersion": default, "marName": mar, "minWorkers": workers, "maxWorkers": workers,
            "batchSize": batch_size, "maxBatchDelay": max_batch_delay_ms,
            "responseTimeout": int(props["default_response_timeout"]),
            "startupTimeout": int(props["default_startup_timeout"])}


def startup_snapshot(models: dict[str, dict[str, dict]]) -> dict:
    """A TorchServe model snapshot ({name: {version: model_state}}) for config.properties'
    `model_snapshot`. TorchServe registers each archive under its own manifest's version; the
    version keys here are labels."""
    count = sum(len(versions) for versions in models.values())
    return {"name": "startup.cfg", "modelCount": count, "models": models}


@dataclass(frozen=True)
class ModelSpec:
    """One archive in the model store to load at start, with its worker count. (Batching is the
    archive's own setting: serving/package.py Batching.)"""

    mar: str = f"{MODEL_NAME}.mar"
    workers: int | None = None  # None: the config's default_workers_per_model


@dataclass
class TorchServe:
    """One TorchServe: `models` from `model_store`, configured by `base_config`, its files in `run_dir`."""

    model_store: Path
    run_dir: Path
    ports: Ports | None = None  # None: the ports `base_config` names
    models: list[ModelSpec] = field(default_factory=lambda: [ModelSpec()])
    threads_per_worker: int = 1  # OMP_NUM_THREADS of each worker process
    base_config: Path = LOCAL_CONFIG
    overrides: dict[str, str] = field(default_factory=dict)  # config.properties keys, applied last
    ready_timeout: float = 120.0  # seconds `with TorchServe(...)` waits for READY workers

    def __post_init__(self) -> None:
        self.model_store = Path(self.model_store).resolve()
        self.run_dir = Path(self.run_dir).resolve()
        if self.ports is None:  # the config file's ports, never a second default that overrides them
            self.ports = Ports.from_properties(read_properties(self.base_config))
        self._process: subprocess.Popen | None = None
        self._names: list[str] = []

    # --- where things are -------------------------------------------------------------------------
    inference_url = property(lambda self: local_url("inference", self.ports))
    management_url = property(lambda self: local_url("management", self.ports))
    metrics_url = property(lambda self: local_url("metrics", self.ports))
    pid_file = property(lambda self: self.run_dir / PID_FILE)
    log_file = property(lambda self: self.run_dir / "torchserve.log")
    logs_dir = property(lambda self: self.run_dir / "logs")
    access_log = property(lambda self: self.run_dir / "logs" / "access_log.log")

    @property
    def pid(self) -> int | None:
        """The server's pid (= its process group) if any process of this run folder still runs."""
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        # The group id alone could have been reused by now; our processes name the run folder.
        return pid if group_members(pid, str(self.run_dir)) else None

    # --- lifecycle --------------------------------------------------------------------------------
    def config(self) -> dict[str, str]:
        """The effective config.properties: the base file, this run's ports/paths/models, overrides."""
        props = read_properties(self.base_config)
        snapshot: dict[str, dict] = {}
        for spec in self.models:
            mar = self.model_store / spec.mar
            (name, version), (batch_size, delay_ms) = read_manifest(mar), archive_batching(mar)
            versions = snapshot.setdefault(name, {})
            versions[version] = model_state(spec.mar, props, batch_size, delay_ms, spec.workers, default=not versions)
        self._names = sorted(snapshot)
        props.pop("load_models", None)
        props.update(self.ports.addresses(props))
        props.update(
            model_store=str(self.model_store),
            metrics_config=str(METRICS_CONFIG),
            model_snapshot=json.dumps(startup_snapshot(snapshot)),
        )
        props.update(self.overrides)
        return props

    def start(self) -> TorchServe:
        """Start TorchServe in the background; returns at once (see wait_ready)."""
        if self.pid is not None:
            raise ServerError(f"TorchServe already runs from {self.run_dir} (pid {self.pid}); stop it first")
        props = self.config()
        try:
            check_free(self.ports)
        except OSError as e:
            raise ServerError(str(e)) from e
        tmp = self.run_dir / "tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # unpacked archives and sockets of a previous run
        for folder in (tmp, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        config_file = self.run_dir / "config.properties"
        write_properties(props, config_file)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # workers import only the .mar
        threads = str(self.threads_per_worker)
        env.update(
            # One setting, three readers: OpenMP/MKL pools, and the handler's torch.set_num_threads.
            OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, CATSDOGS_THREADS=threads,
            # The launcher's pid file ($TMPDIR), Java's tmpdir ($TEMP: worker sockets, unpacked archives).
            TMPDIR=str(tmp), TEMP=str(tmp),
            LOG_LOCATION=str(self.logs_dir), METRICS_LOCATION=str(self.logs_dir),
        )  # fmt: skip
        command = [
            sys.executable, "-m", "ts.model_server", "--foreground", "--ncs",
            "--ts-config", str(config_file), "--log-config", str(LOG_CONFIG),
            "--model-store", str(self.model_store),
        ]  # fmt: skip
        with open(self.log_file, "ab") as out:
            self._process = subprocess.Popen(
                command,
                cwd=self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own group: stop() ends all of it
            )
        self.pid_file.write_text(str(self._process.pid))
        return self

    def wait_ready(self, timeout: float = 120.0) -> TorchServe:
        """Block until every loaded model version has all its workers READY, or raise ServerError."""
        names = self._names or [MODEL_NAME]
        deadline = time.monotonic() + timeout
        while True:
            # Our own child is asked directly: right after fork its command line is still the
            # parent's, so the run-folder check behind `pid` could miss it for a moment.
            gone = self._process.poll() is not None if self._process is not None else self.pid is None
            if gone:
                raise ServerError(f"TorchServe exited during start-up; see {self.log_file}:\n{self.tail()}")
            if all(model_ready(self.management_url, name) for name in names):
                return self
            if time.monotonic() > deadline:
                raise ServerError(
                    f"models {names} not READY after {timeout:.0f} s; see {self.logs_dir}:\n{self.tail()}"
                )
            time.sleep(0.25)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server of this run folder (TERM, then KILL after `timeout`). False if none ran."""
        own = self._process is not None and self._process.poll() is None
        pid = self._process.pid if own else self.pid
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        stop_group(pid, timeout, child=self._process)
        self._process = None
        return True

    def tail(self, lines: int = 30) -> str:
        """The last lines of the server's output and model log, for error messages."""
        texts = []
        for path in (self.log_file, self.logs_dir / "model_log.log"):
            if path.exists():
                texts.append(
                    f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(texts)

    def __enter__(self) -> TorchServe:
        self.start()
        try:
            return self.wait_ready(self.ready_timeout)
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
