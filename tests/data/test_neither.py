"""Non-pet photos in prepare (prepare.neither_dir): validation, de-duplication also against the pets,
a split per kind, the report's `neither` section, and what happens without them."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.data.conftest import make_dataset, write_photo
from training.data import NEITHER_LABEL, load_neither
from training.prepare import main

KINDS = ("church", "golf_ball")


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "raw", "cats", "dogs", cats=10, dogs=10)


@pytest.fixture
def others(tmp_path: Path, raw: Path) -> Path:
    """10 photos of each of two kinds, a broken file, a note, a duplicate within, and a copy of a cat."""
    root = tmp_path / "not-pets"
    for k, kind in enumerate(KINDS):
        for i in range(10):
            write_photo(root / kind / f"{kind}_{i:02d}.jpg", seed=900_000 + 100 * k + i)
    (root / "church" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("where the photos came from\n")
    shutil.copy(root / "church" / "church_00.jpg", root / "church" / "zz_copy_of_church_00.jpg")
    shutil.copy(raw / "cats" / "cat_003.jpg", root / "golf_ball" / "misfiled_cat.jpg")
    return root


def _params(tmp_path: Path, neither_dir: Path | str) -> list[str]:
    path = tmp_path / "params.yaml"
    path.write_text(f"prepare:\n  neither_dir: '{neither_dir}'\n")
    return ["--params", str(path)]


def _run(raw: Path, out: Path, params: list[str]) -> int:
    return main(["--raw-dir", str(raw), "--out-dir", str(out), *params])


def test_non_pets_are_validated_deduplicated_split_per_kind_and_reported(
    raw: Path, others: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "prepared"
    with caplog.at_level(logging.INFO, logger="training.prepare"):
        assert _run(raw, out, _params(tmp_path, others)) == 0
    assert (
        "non-pet photos: 24 files found" in caplog.text
        and "20 kept (train 16 / val 2 / test 2)" in caplog.text
    )
    report = json.loads((out / "report.json").read_text())
    neither = report["neither"]
    # 20 photos + broken + notes + an inner duplicate + the copy of a cat = 24 files found.
    assert neither["source"] == str(others) and neither["synthetic"] is False
    assert neither["counts"] == {
        "found": 24,
        "kept": 20,
        "skipped": 3,
        "duplicates": 1,
        "splits": {"train": 16, "val": 2, "test": 2},
    }
    assert neither["kinds"] == {"church": 10, "golf_ball": 10}
    reasons = {s["file"]: s["reason"] for s in neither["skipped"]}
    assert set(reasons) == {"church/broken.jpg", "notes.txt", "golf_ball/misfiled_cat.jpg"}
    assert reasons["notes.txt"] == "unsupported file type .txt"
    assert reasons["church/broken.jpg"].startswith("cannot decode image")
    assert "pet and the non-pet folders" in reasons["golf_ball/misfiled_cat.jpg"]
    assert "cats/cat_003.jpg (cat)" in reasons["golf_ball/misfiled_cat.jpg"]
    assert neither["duplicates"] == [
        {"file": "church/zz_copy_of_church_00.jpg", "duplicate_of": "church/church_00.jpg"}
    ]
    # The cat it copies is dropped from the pets too, and reported there.
    pets = report["counts"]
    assert (pets["found"], pets["kept"], pets["skipped"]) == (20, 19, 1)
    assert report["skipped"][0]["file"] == "cats/cat_003.jpg"
    assert "golf_ball/misfiled_cat.jpg" in report["skipped"][0]["reason"]
    for split, n in (("train", 16), ("val", 2), ("test", 2)):
        with np.load(out / f"neither_{split}.npz") as data:
            assert set(data.files) == {"images", "files"}  # no labels: they are no class of the model
            images, files = data["images"], data["files"]
        assert images.dtype == np.uint8 and images.shape == (n, 224, 224, 3)
        assert sorted({f.split("/")[0] for f in files}) == list(KINDS)  # every kind in every split
        assert images.mean() > 40  # real pixels, not the scratch file's zeros
    assert load_neither(out, "test").shape == (2, 224, 224, 3)
    with np.load(out / "train.npz") as data:
        assert NEITHER_LABEL not in data["labels"] and "cats/cat_003.jpg" not in data["files"]


def test_the_pet_split_does_not_depend_on_the_non_pets(raw: Path, tmp_path: Path) -> None:
    others = tmp_path / "others"
    for i in range(12):
        write_photo(others / "car" / f"{i}.jpg", seed=700_000 + i)
    assert _run(raw, tmp_path / "with", _params(tmp_path, others)) == 0
    assert _run(raw, tmp_path / "without", _params(tmp_path, "")) == 0
    for split in ("train", "val", "test"):
        with (
            np.load(tmp_path / "with" / f"{split}.npz") as a,
            np.load(tmp_path / "without" / f"{split}.npz") as b,
        ):
            assert a["files"].tolist() == b["files"].tolist()
            assert np.array_equal(a["images"], b["images"])


def test_no_setting_trains_without_outlier_photos_and_says_so(
    raw: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "prepared"
    with caplog.at_level(logging.INFO, logger="training.prepare"):
        assert _run(raw, out, _params(tmp_path, "")) == 0
    assert "no non-pet photos (prepare.neither_dir is not set): the model trains without outlier photos" in (
        caplog.text
    )
    assert json.loads((out / "report.json").read_text())["neither"] is None
    assert not list(out.glob("neither_*")) and load_neither(out, "train") is None


def test_an_empty_folder_means_none_and_removes_earlier_non_pet_splits(
    raw: Path, others: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "prepared"
    assert _run(raw, out, _params(tmp_path, others)) == 0
    assert load_neither(out, "val") is not None
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.INFO, logger="training.prepare"):
        assert _run(raw, out, _params(tmp_path, tmp_path / "empty")) == 0
    assert (
        f"no image files in {tmp_path / 'empty'}" in caplog.text and "without outlier photos" in caplog.text
    )
    neither = json.loads((out / "report.json").read_text())["neither"]
    assert neither["counts"]["found"] == 0 and neither["counts"]["kept"] == 0
    assert not list(out.glob("neither_*"))


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing", "does not exist"),
        ("raw/cats", "overlaps the pet folder"),
        ("raw", "overlaps the pet folder"),
        ("broken", "None of the 2 image files"),
    ],
)
def test_unusable_non_pet_folders_are_errors_with_a_sentence(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture, where: str, message: str
) -> None:
    (tmp_path / "broken" / "bird").mkdir(parents=True)
    (tmp_path / "broken" / "bird" / "a.jpg").write_bytes(b"")
    (tmp_path / "broken" / "bird" / "b.png").write_bytes(b"\x89PNG truncated")
    assert _run(raw, tmp_path / "out", _params(tmp_path, tmp_path / where)) == 1
    assert message in capsys.readouterr().err


def test_load_neither_names_the_splits() -> None:
    with pytest.raises(ValueError, match="unknown split"):
        load_neither(Path("."), "holdout")
