"""Serving fixtures: a model store with two real archives, and a real TorchServe on free ports.

The archives are built by serving/package.py (the same code as `make package`, on the default
runtime) from a freshly initialised, seeded CatsDogsNet: no trained model is needed, and the
plumbing does not depend on weights.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from serving.ports import Ports
from serving.server import ModelSpec, TorchServe

VERSIONS = ("1.0", "2.0")


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """{version: model folder}: seeded fresh CatsDogsNet weights, different per version."""
    from training.model import write_fresh  # imported lazily

    return {version: write_fresh(tmp_path_factory.mktemp(f"model-{version}"), "catsdogsnet", seed)
            for seed, version in enumerate(VERSIONS)}


@pytest.fixture(scope="session")
def catsdogs_store(model_dirs, tmp_path_factory) -> Path:
    """A model store holding catsdogs-1.0.mar and catsdogs-2.0.mar, packaged with the shipped settings."""
    from serving.package import build_archive  # imported lazily

    store = tmp_path_factory.mktemp("model-store")
    for version, model_dir in model_dirs.items():
        build_archive(model_dir, version, store / f"catsdogs-{version}.mar")
    return store


@pytest.fixture(scope="session")
def torchserve(catsdogs_store, tmp_path_factory):
    """A real TorchServe serving catsdogs 1.0 with the shipped config (2 workers), on free ports.

    Tests that change versions or workers must put them back (the server is shared by the session).
    """
    server = TorchServe(
        catsdogs_store,
        tmp_path_factory.mktemp("torchserve"),
        ports=Ports.free(),
        models=[ModelSpec("catsdogs-1.0.mar")],
    )
    server.start()
    try:
        server.wait_ready(timeout=180)
        yield server
    finally:
        server.stop()


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
    import io

    from training.synthetic import draw_animal

    images = {}
    for label, name in enumerate(("cat", "dog")):
        buffer = io.BytesIO()
        draw_animal(label, seed=0, index=0).save(buffer, format="JPEG", quality=90)
        images[name] = buffer.getvalue()
    return images
