"""Stand-ins for a trained model and for uploads, shared by the tests, the benchmark and the load test.

    write_fresh_model(folder, seed=0)    # a model folder as training writes it, from seeded fresh weights
    fresh_store(store, ("1.0", "2.0"))   # catsdogs-<v>.mar per version, packaged by serving/package.py
    drawn_jpeg(label, index=0)           # a SYNTHETIC cat (0) or dog (1) drawing, as a JPEG upload
    noise_jpeg(seed=0)                   # a JPEG of noise about the size of a web upload

Serving speed and the protocol plumbing do not depend on the weights, so a seeded, freshly initialised
network stands in for a trained one wherever accuracy is not the point. What a model folder holds is
decided here once: when it changes, only this module does.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from serving.store import MODEL_NAME

STORE_VERSIONS = ("1.0", "2.0")


def write_fresh_model(folder: Path, seed: int = 0, arch: str = "catsdogsnet") -> Path:
    """A model folder as training writes it (training/model.py), from seeded, untrained weights."""
    import torch  # heavy: only callers that build a model pay for it

    from training.model import write_fresh

    with torch.random.fork_rng():  # seeded weights without touching the caller's random state
        return write_fresh(Path(folder), arch, seed)


def store_weights(store: Path, version: str) -> Path:
    """The model folder `fresh_store` packaged `version` from (kept beside the archives)."""
    return Path(store) / f".weights-{version}"


def fresh_store(store: Path, versions: tuple[str, ...] = STORE_VERSIONS, **package) -> Path:
    """A model store with `catsdogs-<v>.mar` for each version, different seeds per version, built by
    serving/package.py (the code `make package` runs); `package` goes to build_archive (e.g. batching)."""
    from serving.package import build_archive

    for seed, version in enumerate(versions):
        model_dir = write_fresh_model(store_weights(store, version), seed=seed)
        build_archive(model_dir, version, Path(store) / f"{MODEL_NAME}-{version}.mar", **package)
    return Path(store)


def drawn_jpeg(label: int, index: int = 0, seed: int = 0) -> bytes:
    """A SYNTHETIC drawing of class `label` (0 cat, 1 dog) from training/synthetic.py, as a JPEG."""
    from training.synthetic import draw_animal

    return jpeg_bytes(draw_animal(label, seed=seed, index=index))


def noise_jpeg(seed: int = 0, size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG of noise, about the size of a web upload, so decoding costs what it does in production."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return jpeg_bytes(Image.fromarray(pixels))


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
