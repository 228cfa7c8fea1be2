"""Monitoring fixtures: a model store with two archives and a real TorchServe this package may abuse.

The reliability tests kill workers, switch versions and restart the server, so they get their own
server (not the serving tests' shared one). Archives come from serving/package.py via
serving/samples.py fresh_store: seeded fresh weights, since reliability does not depend on them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.ports import Ports
from serving.samples import fresh_store, noise_jpeg
from serving.server import ModelSpec, TorchServe
from serving.store import MODEL_NAME


@pytest.fixture(scope="session")
def monitoring_store(tmp_path_factory) -> Path:
    """catsdogs-1.0.mar and catsdogs-2.0.mar (different seeds: different answers)."""
    return fresh_store(tmp_path_factory.mktemp("monitoring-store"))


@pytest.fixture(scope="session")
def server(monitoring_store, tmp_path_factory):
    """TorchServe with the shipped config, 2 workers of catsdogs 1.0, on free loopback ports.

    Shared by the monitoring tests: a test that kills a worker, switches versions or restarts the
    server leaves it as it found it (serving 1.0 by default, 2 READY workers).
    """
    spec = ModelSpec(f"{MODEL_NAME}-1.0.mar", workers=2)
    with TorchServe(monitoring_store, tmp_path_factory.mktemp("ts-run"), Ports.free(), [spec], ready_timeout=180) as ts:
        yield ts


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return noise_jpeg()
