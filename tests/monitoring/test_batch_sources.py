"""What the collector sends: prepared splits as lossless PNGs, raw folders via training's discovery."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from handler.preprocess import load_image
from monitoring.sources import load_items, sample_indices


@pytest.fixture
def split(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "test.npz"
    np.savez(
        path,
        images=rng.integers(0, 256, (6, 224, 224, 3), dtype=np.uint8),
        labels=np.array([0, 1, 0, 1, 1, 0]),
        files=np.array([f"raw/{i}.jpg" for i in range(6)]),
    )
    return path


def test_npz_items_decode_to_the_stored_arrays(split):
    # The server's decode of what we send must equal what the evaluate stage scored.
    items = load_items(split)
    with np.load(split) as data:
        for item, image, label in zip(items, data["images"], data["labels"]):
            assert np.array_equal(load_image(item.data), image)
            assert item.label == ("cat", "dog")[label]
    assert [i.file for i in items] == [f"raw/{i}.jpg" for i in range(6)]


def test_sample_is_seeded_and_ordered(split):
    first = [i.file for i in load_items(split, n=3, seed=1)]
    assert first == [i.file for i in load_items(split, n=3, seed=1)]
    assert len(first) == 3 and first == sorted(first)
    assert sample_indices(10, 20, 0) == list(range(10))
    with pytest.raises(ValueError):
        sample_indices(10, 0, 0)


def test_raw_folder_layout(tmp_path):
    for folder, color in (("cats", (200, 10, 10)), ("dogs", (10, 10, 200))):
        (tmp_path / "train" / folder).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 30), color).save(tmp_path / "train" / folder / f"{i}.jpg")
    (tmp_path / "train" / "cats" / "notes.txt").write_text("not an image")
    items = load_items(tmp_path)
    assert sorted((i.file, i.label) for i in items) == [
        ("train/cats/0.jpg", "cat"),
        ("train/cats/1.jpg", "cat"),
        ("train/dogs/0.jpg", "dog"),
        ("train/dogs/1.jpg", "dog"),
    ]
    assert items[0].data[:2] == b"\xff\xd8"  # the file's own bytes, sent as they are


def test_unusable_sources_raise(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_items(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="cat/dog folders"):
        load_items(tmp_path)
