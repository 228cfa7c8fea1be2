"""Prometheus metrics and access logs of a real TorchServe."""

from __future__ import annotations

import re
import time

import pytest
import requests

from serving.client import post_native, post_v1

pytestmark = pytest.mark.slow

ACCESS_LINE = re.compile(
    r'^\S+ /127\.0\.0\.1:\d+ "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.1" (?P<status>\d{3}) (?P<ms>\d+)$'
)


def _metric(text: str, name: str, **labels: str) -> float | None:
    """Sum of the samples of `name` whose labels include `labels`; None when there are none."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())
    ]
    return sum(values) if values else None


# What one native request and one two-image v1 request add to each counter, after the warm-up.
EXPECTED_INCREASE = {
    ("ts_inference_requests_total", "model_name"): 4,
    ("PredictionsPerLabel", "ModelName"): 5,
    ("PredictionConfidence_count", "ModelName"): 5,
    ("PreprocessTimeMs_count", "ModelName"): 4,
}


def _counters(text: str) -> dict[str, float | None]:
    return {name: _metric(text, name, **{label: "catsdogs"}) for name, label in EXPECTED_INCREASE}


def test_metrics_count_requests_and_handler_metrics(torchserve, photos, scrape_until):
    with requests.Session() as session:
        post_native(session, torchserve.inference_url, photos["cat"])  # every metric exists from here on
        before = _counters(scrape_until(torchserve.metrics_url, lambda t: None not in _counters(t).values()))
        assert None not in before.values(), f"metrics missing after a prediction: {before}"
        for _ in range(3):
            assert post_native(session, torchserve.inference_url, photos["dog"]).status_code == 200
        assert post_v1(session, torchserve.inference_url, [photos["cat"], photos["dog"]]).status_code == 200
        expected = {name: before[name] + n for (name, _), n in EXPECTED_INCREASE.items()}
        text = scrape_until(
            torchserve.metrics_url,
            lambda t: all((v or 0) >= expected[k] for k, v in _counters(t).items()),
        )
        response = session.get(f"{torchserve.metrics_url}/metrics", timeout=10)
    assert response.status_code == 200 and "text/plain" in response.headers["Content-Type"]
    assert _counters(text) == expected
    for name in ("ts_inference_latency_microseconds", "ts_queue_latency_microseconds", "Requests2XX"):
        assert (_metric(text, name) or 0) > 0, name


def test_access_log_has_method_path_status_latency_and_no_bodies_or_secrets(torchserve, photos):
    marker = b"BODY-MARKER-7f3a9c"
    with requests.Session() as session:
        assert post_native(session, torchserve.inference_url, photos["cat"]).status_code == 200
        rejected = session.post(
            f"{torchserve.inference_url}/predictions/catsdogs",
            data=marker * 10,
            headers={"Content-Type": "application/octet-stream", "Authorization": "Bearer SECRET-TOKEN-5d1e"},
            timeout=30,
        )
        assert rejected.status_code == 400
    lines = torchserve.access_log.read_text().splitlines()
    parsed = [m.groupdict() for m in map(ACCESS_LINE.match, lines) if m]
    assert len(parsed) == len(lines), (
        f"unexpected access log lines: {[line for line in lines if not ACCESS_LINE.match(line)][:3]}"
    )
    predictions = [p for p in parsed if p["method"] == "POST" and p["path"] == "/predictions/catsdogs"]
    assert {"200", "400"} <= {p["status"] for p in predictions}
    for folder in (torchserve.logs_dir, torchserve.run_dir):
        for log in folder.glob("*.log"):
            content = log.read_bytes()
            assert marker not in content and b"SECRET-TOKEN-5d1e" not in content, f"leaked into {log}"


def test_server_log_keeps_per_request_chatter_out(torchserve, photos, scrape_until):
    """The metric lines a worker prints reach /metrics, but are not echoed into ts_log.log (log4j2.xml)."""
    with requests.Session() as session:
        assert post_native(session, torchserve.inference_url, photos["cat"]).status_code == 200
    # Once /metrics counts a prediction, the frontend has read its metric lines (and would have echoed them).
    scrape_until(torchserve.metrics_url, lambda t: (_metric(t, "PredictionsPerLabel") or 0) > 0)
    ts_log, deadline = torchserve.logs_dir / "ts_log.log", time.monotonic() + 10
    while "Backend response time" not in (log := ts_log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the per-batch line stays; it can reach the file just after the answer
    assert "Backend response time" in log
    for chatter in ("[METRICS]", "Sending response for jobId"):
        assert chatter not in log, f"{chatter!r} is logged for every request again"
