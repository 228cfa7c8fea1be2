"""A real Prometheus on loopback, configured from monitoring/prometheus/prometheus.yml, for tests.

    with PrometheusServer(run_dir, targets=["127.0.0.1:8082"], scrape_interval="1s") as prom:
        prom.wait_ready()
        prom.query('sum(rate(ts_inference_requests_total[1m]))')   # the API's `result` list

It starts the `prometheus` binary (Debian's package; scripts/install_tools.sh prometheus) with the
shipped scrape config and rules, only the targets, intervals and paths replaced, so the live tests
exercise the files a deployment uses. Its data lives in `run_dir`; it listens on a free 127.0.0.1
port and is stopped by its pid.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import requests
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parent / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrometheusServer:
    run_dir: Path
    targets: list[str]
    scrape_interval: str = "1s"
    port: int = field(default_factory=_free_port)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self._process: subprocess.Popen | None = None

    url = property(lambda self: f"http://127.0.0.1:{self.port}")

    def config(self) -> dict:
        """prometheus.yml with this run's targets and intervals, and the rules file by absolute path."""
        config = yaml.safe_load(CONFIG.read_text())
        config["global"].update(
            scrape_interval=self.scrape_interval, evaluation_interval=self.scrape_interval
        )
        config["global"]["scrape_timeout"] = self.scrape_interval
        config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
        (job,) = config["scrape_configs"]
        job["static_configs"] = [{"targets": list(self.targets)}]
        return config

    def start(self) -> PrometheusServer:
        binary = prometheus_binary()
        if binary is None:
            raise FileNotFoundError("no prometheus binary: scripts/install_tools.sh prometheus")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.run_dir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        with open(self.run_dir / "prometheus.log", "ab") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={self.run_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.run_dir,
            )
        return self

    def wait_ready(self, timeout: float = 30.0) -> PrometheusServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready after {timeout} s:\n{self.tail()}")

    def query(self, expr: str) -> list[dict]:
        """The `result` of an instant query; raises on a query error (bad PromQL, unknown function)."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]

    def get(self, path: str) -> dict:
        return requests.get(f"{self.url}{path}", timeout=10).json()["data"]

    def tail(self, lines: int = 20) -> str:
        log = self.run_dir / "prometheus.log"
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
