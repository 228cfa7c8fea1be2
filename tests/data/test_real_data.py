"""Prepare on the 2,000 real photos (where present): every photo kept, a balanced 80/10/10 split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data import discover
from training.prepare import PrepareParams, prepare


@pytest.mark.shared_data
def test_real_photos_prepare_cleanly(real_data: Path, tmp_path: Path) -> None:
    candidates, unsupported = discover(real_data)
    assert len(candidates) == 2000 and unsupported == []
    report = prepare(real_data, tmp_path, PrepareParams())
    counts = report["counts"]
    assert (counts["found"], counts["kept"], counts["skipped"], counts["duplicates"]) == (2000, 2000, 0, 0)
    assert counts["splits"] == {
        "train": {"cat": 800, "dog": 800, "total": 1600},
        "val": {"cat": 100, "dog": 100, "total": 200},
        "test": {"cat": 100, "dog": 100, "total": 200},
    }
    with np.load(tmp_path / "test.npz") as data:
        assert data["images"].shape == (200, 224, 224, 3)
        assert 40 < data["images"].mean() < 200  # real pixels, not zeros from the scratch file
