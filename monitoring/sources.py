"""Labelled images to send: a prepared split (`.npz`) or a raw folder, optionally a seeded sample.

A prepared split stores `load_image` arrays; each is sent as a lossless PNG, so the server decodes
exactly the array the evaluate stage scored and live predictions are comparable with the reference
item for item. A raw folder is read with training's own discovery (same layouts, same labels).
"""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from handler.preprocess import CLASS_NAMES
from training.data import discover  # training owns the accepted layouts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    file: str
    label: str  # the true label, one of CLASS_NAMES
    data: bytes  # encoded image, exactly what is sent


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def from_npz(path: Path, indices: Sequence[int] | None = None) -> list[Item]:
    """Items of a prepared split; `indices` picks a subset (encoding only those)."""
    with np.load(path, allow_pickle=False) as split:
        images, labels, files = split["images"], split["labels"], split["files"]
    chosen = range(len(labels)) if indices is None else indices
    return [Item(str(files[i]), CLASS_NAMES[int(labels[i])], png_bytes(images[i])) for i in chosen]


def npz_size(path: Path) -> int:
    with np.load(path, allow_pickle=False) as split:
        return len(split["labels"])


def from_folder(root: Path, n: int | None = None, seed: int = 0) -> list[Item]:
    """Items of a raw image folder in any layout training's data discovery supports.

    Files discovery skips (not an image type) are logged and not sent; files that merely look like
    images are sent as they are, and the server's verdict on them is part of the measurement.
    """
    candidates, skipped = discover(root)
    for entry in skipped:
        logger.warning("not sent: %s (%s)", entry["file"], entry["reason"])
    chosen = [candidates[i] for i in sample_indices(len(candidates), n, seed)]
    return [Item(c.file, CLASS_NAMES[c.label], c.path.read_bytes()) for c in chosen]


def sample_indices(total: int, n: int | None, seed: int) -> list[int]:
    """A reproducible sample of n of `total` positions in their original order (all when n is None)."""
    if n is None or n >= total:
        return list(range(total))
    if n <= 0:
        raise ValueError(f"sample size must be positive, got {n}")
    return sorted(random.Random(seed).sample(range(total), n))


def load_items(source: Path, n: int | None = None, seed: int = 0) -> list[Item]:
    """A prepared `.npz` split or a raw folder -> the items to send (a sample of n when given)."""
    if not source.exists():
        hint = " (the prepare stage writes it: `dvc repro prepare`)" if source.suffix == ".npz" else ""
        raise FileNotFoundError(f"{source} does not exist{hint}")
    if source.suffix == ".npz":
        return from_npz(source, sample_indices(npz_size(source), n, seed))
    if not source.is_dir():
        raise ValueError(f"{source} is neither a prepared .npz split nor a folder of images")
    return from_folder(source, n, seed)
