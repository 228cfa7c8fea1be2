"""De-duplication before the split, and a split that is stratified, seeded and leak-free."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.data.conftest import make_dataset, write_photo
from training.data import Decoded, SourceFile, deduplicate, split
from training.prepare import PrepareParams, prepare


def _items(cats: int, dogs: int) -> list[Decoded]:
    """Metadata-only decode results: distinct contents, labels as asked."""
    labels = [0] * cats + [1] * dogs
    return [
        Decoded(SourceFile(Path(f"f{i}"), f"f{i:03d}.jpg", label), hashlib.sha256(b"%d" % i).hexdigest())
        for i, label in enumerate(labels)
    ]


def _assignment(splits: dict[str, list[Decoded]]) -> dict[str, str]:
    return {d.source.file: name for name, members in splits.items() for d in members}


def test_split_ignores_listing_order() -> None:
    items = _items(40, 30)
    shuffled = items[:]
    random.Random(5).shuffle(shuffled)
    assert _assignment(split(items, 7, 0.1, 0.1)) == _assignment(split(shuffled, 7, 0.1, 0.1))
    assert _assignment(split(items, 7, 0.1, 0.1)) == _assignment(split(items[::-1], 7, 0.1, 0.1))


def test_split_depends_on_the_seed() -> None:
    items = _items(40, 30)
    assert _assignment(split(items, 7, 0.1, 0.1)) != _assignment(split(items, 8, 0.1, 0.1))


def test_split_is_stratified_and_complete() -> None:
    items = _items(50, 30)
    splits = split(items, 0, 0.1, 0.2)
    counts = {name: [sum(d.source.label == c for d in m) for c in (0, 1)] for name, m in splits.items()}
    assert counts == {"train": [35, 21], "val": [5, 3], "test": [10, 6]}
    assert sorted(_assignment(splits)) == sorted(d.source.file for d in items)
    assert all([d.source.file for d in m] == sorted(d.source.file for d in m) for m in splits.values())


def test_renamed_files_keep_their_split() -> None:
    items = _items(20, 20)
    renamed = [
        dataclasses.replace(d, source=dataclasses.replace(d.source, file="new_" + d.source.file))
        for d in items
    ]
    by_hash = {d.sha256: name for name, m in split(items, 3, 0.1, 0.1).items() for d in m}
    by_hash_renamed = {d.sha256: name for name, m in split(renamed, 3, 0.1, 0.1).items() for d in m}
    assert by_hash == by_hash_renamed


def test_duplicates_keep_the_first_path_and_conflicts_are_dropped() -> None:
    a, b, c = (hashlib.sha256(x).hexdigest() for x in (b"a", b"b", b"c"))
    items = [
        Decoded(SourceFile(Path("z"), "cats/z_copy.jpg", 0), a),
        Decoded(SourceFile(Path("y"), "cats/a.jpg", 0), a),
        Decoded(SourceFile(Path("x"), "cats/sub/a_again.jpg", 0), a),
        Decoded(SourceFile(Path("w"), "cats/both.jpg", 0), b),
        Decoded(SourceFile(Path("v"), "dogs/both.jpg", 1), b),
        Decoded(SourceFile(Path("u"), "dogs/unique.jpg", 1), c),
    ]
    unique, duplicates, conflicts = deduplicate(items)
    assert sorted(d.source.file for d in unique) == ["cats/a.jpg", "dogs/unique.jpg"]
    assert sorted(duplicates, key=lambda d: d["file"]) == [
        {"file": "cats/sub/a_again.jpg", "duplicate_of": "cats/a.jpg"},
        {"file": "cats/z_copy.jpg", "duplicate_of": "cats/a.jpg"},
    ]
    assert sorted(c["file"] for c in conflicts) == ["cats/both.jpg", "dogs/both.jpg"]
    assert all("labelled both cat and dog" in c["reason"] for c in conflicts)


@pytest.fixture
def with_copies(tmp_path: Path) -> Path:
    """30 + 30 photos, plus byte-identical copies within a class, across folders and across classes."""
    root = make_dataset(tmp_path / "raw", "train/cats", "train/dogs", cats=30, dogs=30)
    for i in range(10):  # every cat 0..9 also appears under a second name
        shutil.copy(root / "train/cats" / f"cat_{i:03d}.jpg", root / "train/cats" / f"copy_{i}.jpg")
    (root / "train/dogs/nested").mkdir()  # same name and bytes, another folder
    shutil.copy(root / "train/dogs/dog_000.jpg", root / "train/dogs/nested/dog_000.jpg")
    write_photo(root / "train/cats/conflict.jpg", seed=777)
    shutil.copy(root / "train/cats/conflict.jpg", root / "train/dogs/conflict.jpg")
    return root


def test_prepare_has_no_leakage_and_accounts_for_copies(with_copies: Path, tmp_path: Path) -> None:
    report = prepare(with_copies, tmp_path / "out", PrepareParams(seed=3))
    counts = report["counts"]
    assert (counts["found"], counts["kept"], counts["duplicates"], counts["skipped"]) == (73, 60, 11, 2)
    assert counts["found"] == counts["kept"] + counts["skipped"] + counts["duplicates"]
    seen: dict[str, str] = {}
    for name in ("train", "val", "test"):
        with np.load(tmp_path / "out" / f"{name}.npz") as data:
            for file in data["files"].tolist():
                digest = hashlib.sha256((with_copies / file).read_bytes()).hexdigest()
                assert digest not in seen, f"{file} ({name}) has the same bytes as a {seen[digest]} image"
                seen[digest] = name
    assert len(seen) == 60


def test_prepare_split_is_reproducible_and_seeded(with_copies: Path, tmp_path: Path) -> None:
    def files(out: Path, seed: int) -> list[str]:
        prepare(with_copies, out, PrepareParams(seed=seed), workers=1)
        with np.load(out / "test.npz") as data:
            return data["files"].tolist()

    assert files(tmp_path / "a", 1) == files(tmp_path / "b", 1)
    assert files(tmp_path / "a", 1) != files(tmp_path / "c", 2)
