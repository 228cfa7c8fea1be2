"""Prometheus metrics and access logs of a real TorchServe."""

from __future__ import annotations

import re

import pytest
import requests

from serving.client import post_native, post_v1

pytestmark = pytest.mark.slow

ACCESS_LINE = re.compile(
    r'^\S+ /127\.0\.0\.1:\d+ "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.1" (?P<status>\d{3}) (?P<ms>\d+)$'
)


def _metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"no {name}{labels} in /metrics"
    return total


def test_metrics_count_requests_and_handler_metrics(torchserve, photos):
    url = f"{torchserve.metrics_url}/metrics"
    with requests.Session() as session:
        post_native(session, torchserve.inference_url, photos["cat"])  # every metric exists from here on
        before = session.get(url, timeout=10).text
        for _ in range(3):
            assert post_native(session, torchserve.inference_url, photos["dog"]).status_code == 200
        assert post_v1(session, torchserve.inference_url, [photos["cat"], photos["dog"]]).status_code == 200
        after = session.get(url, timeout=10)
    assert after.status_code == 200 and "text/plain" in after.headers["Content-Type"]
    text = after.text
    assert (
        _metric(text, "ts_inference_requests_total", model_name="catsdogs")
        - _metric(before, "ts_inference_requests_total", model_name="catsdogs")
        == 4
    )
    assert (
        _metric(text, "PredictionsPerLabel", ModelName="catsdogs") - _metric(before, "PredictionsPerLabel")
        == 5
    )
    assert _metric(text, "PredictionConfidence_count") - _metric(before, "PredictionConfidence_count") == 5
    assert _metric(text, "PreprocessTimeMs_count") - _metric(before, "PreprocessTimeMs_count") == 4
    for name in ("ts_inference_latency_microseconds", "ts_queue_latency_microseconds", "Requests2XX"):
        assert _metric(text, name) > 0


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
