"""Serving fixtures: a model store with two real archives, and a real TorchServe on free ports.

The archives are built by serving/package.py (the same code as `make package`) from seeded fresh
weights (serving/samples.py): no trained model is needed, and speed does not depend on weights.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from handler.preprocess import CLASS_NAMES
from serving.ports import Ports
from serving.samples import STORE_VERSIONS as VERSIONS
from serving.samples import drawn_jpeg, fresh_store, store_weights
from serving.server import ModelSpec, TorchServe
from serving.store import MODEL_NAME


@pytest.fixture(scope="session")
def catsdogs_store(tmp_path_factory) -> Path:
    """A model store holding catsdogs-1.0.mar and catsdogs-2.0.mar, packaged with the shipped settings."""
    return fresh_store(tmp_path_factory.mktemp("model-store"), VERSIONS)


@pytest.fixture(scope="session")
def model_dirs(catsdogs_store) -> dict[str, Path]:
    """{version: the model folder its archive was packaged from}: seeded fresh weights, per version."""
    return {version: store_weights(catsdogs_store, version) for version in VERSIONS}


@pytest.fixture(scope="session")
def torchserve(catsdogs_store, tmp_path_factory):
    """A real TorchServe serving catsdogs 1.0 with the shipped config (2 workers), on free ports.

    Tests that change versions or workers must put them back (the server is shared by the session).
    """
    run_dir = tmp_path_factory.mktemp("torchserve")
    spec = ModelSpec(f"{MODEL_NAME}-1.0.mar")
    with TorchServe(catsdogs_store, run_dir, Ports.free(), [spec], ready_timeout=180) as server:
        yield server


@pytest.fixture
def fake_archive():
    """make(path, name, version): a .mar with only a manifest; enough for model-store code, not a server."""

    def make(path: Path, name: str = "catsdogs", version: str = "1.0") -> Path:
        with zipfile.ZipFile(path, "w") as archive:
            manifest = {"model": {"modelName": name, "modelVersion": version}}
            archive.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest))
        return path

    return make


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """A cat and a dog JPEG drawn by the synthetic generator (tests do not need the real photos)."""
    return {name: drawn_jpeg(label) for label, name in enumerate(CLASS_NAMES)}
