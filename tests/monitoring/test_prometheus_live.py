"""A real Prometheus scraping a real TorchServe: every documented query returns data.

Debian's `prometheus` (scripts/install_tools.sh prometheus) runs on a free loopback port with the
shipped monitoring/prometheus/prometheus.yml and rules.yml (only the target and a 1 s interval
changed), scraping the monitoring tests' TorchServe while a client sends predictions, a two-image v1
request, a versioned request and bad input. Then every query of monitoring/grafana-dashboard.json,
every PromQL of the README's "What to watch" table and every recording rule must return at least
one finite value through the HTTP API, and every rule must evaluate without error.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time

import pytest
import requests

from monitoring.prometheus_server import PrometheusServer, prometheus_binary

pytestmark = pytest.mark.slow

DASHBOARD = "monitoring/grafana-dashboard.json"
README_TABLE = "| question | PromQL |"
# Grafana's variables, as the dashboard would substitute them against this Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$model": "catsdogs"}


def dashboard_queries(repo_root) -> list[str]:
    dashboard = json.loads((repo_root / DASHBOARD).read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for name, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(name, value) for e in exprs]
    return exprs


def readme_queries(repo_root) -> list[str]:
    """The code spans of the README's PromQL table that are queries (they call a function).

    A `|` inside a table cell is written `\\|` (GitHub Markdown), also within code spans."""
    text = (repo_root / "README.md").read_text().replace("\\|", "|")
    table = text[text.index(README_TABLE) :].split("\n\n", 1)[0]
    return [span for line in table.splitlines()[2:] for span in re.findall(r"`([^`]+)`", line) if "(" in span]


def test_readme_table_is_found_and_has_queries(repo_root):
    queries = readme_queries(repo_root)
    assert len(queries) >= 8 and all("rate(" in q or "histogram_quantile" in q for q in queries), queries


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    if prometheus_binary() is None:
        pytest.skip("prometheus not installed: scripts/install_tools.sh prometheus (Debian's package)")
    target = server.metrics_url.removeprefix("http://")
    prom = PrometheusServer(tmp_path_factory.mktemp("prometheus"), targets=[target], scrape_interval="1s")
    prom.start()
    try:
        yield prom.wait_ready()
    finally:
        prom.stop()


@pytest.fixture(scope="module")
def traffic(server, jpeg):
    """A client predicting in the background (good, versioned, two-image v1 and bad requests)."""
    import base64

    stop = threading.Event()
    sent = {"ok": 0, "bad": 0}
    v1 = {"instances": [{"data": base64.b64encode(jpeg).decode()}] * 2}

    def client():
        with requests.Session() as session:
            url = f"{server.inference_url}/predictions/catsdogs"
            headers = {"Content-Type": "image/jpeg"}
            while not stop.is_set():
                for path in ("", "/1.0"):
                    sent["ok"] += session.post(url + path, data=jpeg, headers=headers, timeout=30).ok
                sent["ok"] += session.post(
                    f"{server.inference_url}/v1/models/catsdogs:predict", json=v1, timeout=30
                ).ok
                sent["bad"] += (
                    session.post(url, data=b"not an image", headers=headers, timeout=30).status_code == 400
                )
                stop.wait(0.2)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join(timeout=60)


def finite(result: list[dict]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def wait_for_data(prometheus, exprs: list[str], timeout: float = 150.0) -> dict[str, list]:
    """{expr: result} once every expr has a finite value, or what there is at the deadline.

    TorchServe refreshes its host gauges (CPU, memory) once a minute, hence the long deadline."""
    deadline = time.monotonic() + timeout
    results: dict[str, list] = {}
    while True:
        results = {expr: prometheus.query(expr) for expr in exprs}
        if all(map(finite, results.values())) or time.monotonic() > deadline:
            return results
        time.sleep(2)


def test_every_documented_query_returns_data(prometheus, traffic, repo_root):
    queries = dashboard_queries(repo_root) + readme_queries(repo_root)
    results = wait_for_data(prometheus, sorted(set(queries)))
    empty = [expr for expr, result in results.items() if not finite(result)]
    assert not empty, f"no data from Prometheus for {len(empty)} queries (traffic {traffic}):\n" + "\n".join(
        empty
    )
    assert traffic["ok"] > 0 and traffic["bad"] > 0


def test_every_rule_evaluates_and_records_data(prometheus, traffic):
    groups = prometheus.get("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 19, [r["name"] for r in rules]
    recorded = [r["name"] for r in rules if r["type"] == "recording"]
    results = wait_for_data(prometheus, recorded)
    empty = [name for name, result in results.items() if not finite(result)]
    assert not empty, f"recording rules without data: {empty}"
    groups = prometheus.get("/api/v1/rules")["groups"]
    unhealthy = {r["name"]: r.get("lastError") for g in groups for r in g["rules"] if r["health"] != "ok"}
    assert not unhealthy, unhealthy
    # The handler's histogram gives a plausible server-side p99 (seconds; a tiny CNN on 2 cores).
    (p99,) = prometheus.query("catsdogs:handler_latency_seconds:p99_rate5m")
    assert 0.001 < float(p99["value"][1]) < 5, p99


def test_target_is_up_with_the_shipped_job_name(prometheus):
    (up,) = prometheus.query('up{job="catsdogs"}')
    assert up["value"][1] == "1"
