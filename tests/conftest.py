"""Fixtures every test tier shares: the real photos when present, free loopback ports, metric scrapes,
the bad-input corpus sized for a live server."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared real photos sit beside the project on development and CI machines; a user's clone lacks
# them, and tests that need them skip. CATSDOGS_REAL_DATA points elsewhere.
REAL_DATA = Path(
    os.environ.get("CATSDOGS_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "cats-dogs-2000")
)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Root of the real cat and dog photos (train/cats, train/dogs), or skip."""
    if not (REAL_DATA / "train" / "cats").is_dir():
        pytest.skip(f"real photos not found at {REAL_DATA} (set CATSDOGS_REAL_DATA)")
    return REAL_DATA


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_metrics_until(metrics_url: str, ready: Callable[[str], bool], timeout: float = 15.0) -> str:
    """The first /metrics text for which `ready` holds.

    TorchServe's frontend learns handler metrics by parsing the worker's log stream, after the
    response has gone out, so a scrape right after a request may not show it yet.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = requests.get(f"{metrics_url}/metrics", timeout=10).text
        if ready(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


@pytest.fixture(scope="session")
def scrape_until() -> Callable[..., str]:
    return scrape_metrics_until


def served_bad_inputs(server, photo: bytes) -> list:
    """serving/bad_inputs.py's corpus for a live `server`, with the image limit its first archive sets."""
    from handler.settings import Settings
    from serving.bad_inputs import bad_inputs
    from serving.store import read_model_config

    handler_config = read_model_config(server.model_store / server.models[0].mar).get("handler")
    return bad_inputs(photo, Settings.resolve(handler_config, {}).max_instances)


@pytest.fixture(scope="session")
def live_bad_inputs() -> Callable[..., list]:
    """live_bad_inputs(server, photo) -> the shared bad-input corpus sized for that server."""
    return served_bad_inputs
