"""Request logs: every request leaves method, path, status and latency; no log holds payloads or secrets.

Requests carry a distinctive base64 payload, raw bytes with a marker, an Authorization header and a
cookie; afterwards every log file in the server's run folder is searched for them.
"""

from __future__ import annotations

import base64
import re
import secrets
import time

import pytest
import requests

pytestmark = pytest.mark.slow

# 2025-01-01T12:00:00,123 /127.0.0.1:50412 "POST /predictions/catsdogs HTTP/1.1" 200 7
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.1" (?P<status>\d{3}) (?P<ms>\d+)$')


def log_text(server) -> str:
    files = [server.log_file, *sorted(server.logs_dir.rglob("*.log"))]
    return "\n".join(f.read_text(errors="replace") for f in files if f.is_file())


def access_lines(server) -> list[dict]:
    lines = server.access_log.read_text().splitlines() if server.access_log.exists() else []
    return [m.groupdict() for m in map(ACCESS_LINE.search, lines) if m]


def test_request_logs_have_method_path_status_latency_and_no_payload_or_secret(server, jpeg):
    token, cookie, marker = (f"{name}-{secrets.token_hex(12)}" for name in ("token", "cookie", "marker"))
    headers = {"Authorization": f"Bearer {token}", "Cookie": f"session={cookie}"}
    image = jpeg + marker.encode()  # bytes after the JPEG end marker: still a valid image
    b64 = base64.b64encode(image).decode()
    bad_b64 = base64.b64encode(f"not an image {marker}".encode() * 4).decode()
    sent = [
        (
            "POST",
            "/predictions/catsdogs",
            200,
            {"data": image, "headers": {**headers, "Content-Type": "image/jpeg"}},
        ),
        (
            "POST",
            "/v1/models/catsdogs:predict",
            200,
            {"json": {"instances": [{"data": b64}]}, "headers": headers},
        ),
        (
            "POST",
            "/v2/models/catsdogs/infer",
            200,
            {
                "json": {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64]}]},
                "headers": headers,
            },
        ),
        (
            "POST",
            "/v1/models/catsdogs:predict",
            400,
            {"json": {"instances": [{"data": bad_b64}]}, "headers": headers},
        ),
    ]
    before = len(access_lines(server))
    round_trips_ms = []
    for method, path, status, kwargs in sent:
        started = time.perf_counter()
        answer = requests.request(method, server.inference_url + path, timeout=30, **kwargs)
        round_trips_ms.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == status

    deadline = time.monotonic() + 10  # the access log is written after the response
    while len(access_lines(server)) < before + len(sent) and time.monotonic() < deadline:
        time.sleep(0.2)
    logged = access_lines(server)[before:]
    expected = [(m, p, str(s)) for m, p, s, _ in sent]
    assert [(line["method"], line["path"], line["status"]) for line in logged] == expected
    # The last field is the server's latency in ms: never more than what the client waited for it
    # (a field in other units, e.g. microseconds or bytes, would exceed it).
    for line, waited in zip(logged, round_trips_ms, strict=True):
        assert int(line["ms"]) <= waited + 1, (line, waited)

    text = log_text(server)
    assert "/v2/models/catsdogs/infer" in text  # the search sees the logs
    for secret in (token, cookie, marker, b64[100:140], b64[-60:-20], bad_b64[:40]):
        assert secret not in text, f"a log under {server.run_dir} contains request content: {secret[:20]}..."
    assert "Authorization" not in text and "Bearer" not in text
