"""Builders for tiny image folders, and a loopback HTTP server that honours Range requests."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def photo_bytes(seed: int, size: tuple[int, int] = (48, 40), fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """A small noise picture, distinct for every seed (so no accidental duplicates)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def write_photo(path: Path, seed: int, **kwargs) -> Path:
    fmt = {".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}.get(path.suffix.lower(), "JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_bytes(seed, fmt=fmt, **kwargs))
    return path


def make_dataset(root: Path, cat_dir: str, dog_dir: str, cats: int, dogs: int, seed: int = 0) -> Path:
    """root/<cat_dir>/cat_<i>.jpg and root/<dog_dir>/dog_<i>.jpg, all distinct."""
    for i in range(cats):
        write_photo(root / cat_dir / f"cat_{i:03d}.jpg", seed=seed * 100_000 + i)
    for i in range(dogs):
        write_photo(root / dog_dir / f"dog_{i:03d}.jpg", seed=seed * 100_000 + 50_000 + i)
    return root


class RangeServer(ThreadingHTTPServer):
    """Serves one payload at /archive.zip; records each request's byte range and bytes sent."""

    def __init__(self, payload: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _RangeHandler)
        self.payload = payload
        self.members: dict[str, bytes] = {}  # what the payload holds, for tests to compare against
        self.truncate = False  # send half the body under a full Content-Length, then hang up
        self.requests = 0  # every request, HEAD included
        self.ranges: list[tuple[int, int] | None] = []  # GETs: the byte range, or None for whole
        self.bytes_sent = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/archive.zip"


class _RangeHandler(BaseHTTPRequestHandler):
    server: RangeServer

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def _respond(self, send_body: bool) -> None:
        with self.server.lock:
            self.server.requests += 1
        if self.path != "/archive.zip":
            self.send_error(404)
            return
        payload, total = self.server.payload, len(self.server.payload)
        start, end, status = 0, total - 1, 200
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match and (match[1] or match[2]):
            if match[1]:
                start, end = int(match[1]), min(int(match[2] or total - 1), total - 1)
            else:  # suffix form: the last N bytes
                start = max(0, total - int(match[2]))
            status = 206
        body = payload[start : end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        self.end_headers()
        if not send_body:
            return
        if self.server.truncate:
            body = body[: len(body) // 2]
        with self.server.lock:
            self.server.ranges.append((start, end) if status == 206 else None)
            self.server.bytes_sent += len(body)
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def range_server() -> Iterator[RangeServer]:
    """A started RangeServer (set .payload before use); stopped after the test."""
    server = RangeServer(b"")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
