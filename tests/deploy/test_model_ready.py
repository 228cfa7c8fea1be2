"""scripts/model_ready.py (the image's HEALTHCHECK and the pod's startup/readiness probe) against a real
TorchServe started with the container config, as in the pod (ports moved to free ones)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from serving.ports import Ports
from serving.properties import write_properties
from serving.server import ModelSpec, TorchServe, startup_snapshot
from tests.deploy.conftest import CONTAINER_CONFIG, REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "model_ready.py"


def model_ready(config) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--config", str(config)], capture_output=True, text=True,
                          timeout=30)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from serving.package import build_archive
    from serving.samples import write_fresh_model

    store = tmp_path_factory.mktemp("store")
    build_archive(write_fresh_model(tmp_path_factory.mktemp("model")), "1.0", store / "catsdogs.mar")
    return store


def test_finds_the_startup_models_like_torchserve():
    """model_snapshot wins over load_models when both are set, as in TorchServe's ModelServer."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from model_ready import model_names
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert model_names({"load_models": "catsdogs=catsdogs.mar"}) == ["catsdogs"]
    assert model_names({"load_models": "a=x.mar, b.mar,"}) == ["a", "b"]
    assert model_names({"load_models": ""}) == model_names({}) == []
    snapshot = json.dumps(startup_snapshot({"b": {"1.0": {}}, "a": {"1.0": {}, "2.0": {}}}))
    assert model_names({"model_snapshot": snapshot, "load_models": "c=c.mar"}) == ["a", "b"]
    assert model_names({"model_snapshot": "{not json"}) == []


@pytest.mark.slow
def test_ready_only_once_the_model_has_a_ready_worker(store, tmp_path):
    server = TorchServe(store, tmp_path / "run", ports=Ports.free(), models=[ModelSpec("catsdogs.mar", workers=1)],
                        base_config=CONTAINER_CONFIG)
    config = tmp_path / "config.properties"
    write_properties(server.config(), config)
    before = model_ready(config)
    assert before.returncode == 1 and "not ready" in before.stderr

    server.start()
    try:
        server.wait_ready(timeout=180)
        ready = model_ready(config)
        assert ready.returncode == 0, ready.stderr
        # A model the server does not have is not ready, and the sentence names it.
        snapshot = json.loads(server.config()["model_snapshot"])
        snapshot["models"]["nosuch"] = {"1.0": {}}
        props = server.config() | {"model_snapshot": json.dumps(snapshot)}
        write_properties(props, config)
        missing = model_ready(config)
        assert missing.returncode == 1 and "nosuch" in missing.stderr
    finally:
        server.stop()
