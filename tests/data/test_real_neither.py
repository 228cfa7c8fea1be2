"""Prepare on the real photos with the 630 real non-pet photos (where both are present)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from training.prepare import PrepareParams, prepare

# Nine kinds, 70 photos each, beside the cat and dog photos; CATSDOGS_NOT_PETS points elsewhere.
NOT_PETS = Path(os.environ.get("CATSDOGS_NOT_PETS", REPO_ROOT.parent / "shared" / "data" / "not-pets-630"))


@pytest.mark.shared_data
def test_real_non_pets_prepare_cleanly_and_split_per_kind(real_data: Path, tmp_path: Path) -> None:
    if not NOT_PETS.is_dir():
        pytest.skip(f"real non-pet photos not found at {NOT_PETS} (set CATSDOGS_NOT_PETS)")
    report = prepare(real_data, tmp_path, PrepareParams(neither_dir=str(NOT_PETS)))
    assert report["counts"]["kept"] == 2000 and report["counts"]["skipped"] == 0  # no photo in both
    neither = report["neither"]
    assert neither["counts"] == {
        "found": 630,
        "kept": 630,
        "skipped": 0,
        "duplicates": 0,
        "splits": {"train": 504, "val": 63, "test": 63},
    }
    assert len(neither["kinds"]) == 9 and set(neither["kinds"].values()) == {70}
    with np.load(tmp_path / "neither_test.npz") as data:
        images, files = data["images"], data["files"]
    assert images.shape == (63, 224, 224, 3) and 40 < images.mean() < 200
    kinds = [f.split("/")[0] for f in files]
    assert all(kinds.count(kind) == 7 for kind in neither["kinds"])  # every kind held out alike
