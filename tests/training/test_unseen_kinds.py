"""training/unseen_kinds.py: retrain without some non-pet kinds, then score those kinds."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from training import unseen_kinds
from training.prepare import write_split

KINDS = {"rock": 110, "sky": 200, "grass": 30}  # kind -> grey level of its pictures


def write_kinds(data_dir: Path, split: str, per_kind: int) -> None:
    """neither_<split>.npz as prepare writes it: `per_kind` noisy flat pictures of each kind."""
    rng = np.random.default_rng(len(split))
    images, files = [], []
    for name, level in KINDS.items():
        for i in range(per_kind):
            images.append(np.clip(rng.normal(level, 8, size=(224, 224, 3)), 0, 255).astype(np.uint8))
            files.append(f"{name}/{split}_{i}.jpg")
    write_split(data_dir / f"neither_{split}.npz", np.stack(images), list(range(len(files))), None, files)


@pytest.fixture
def data(tiny_data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "prepared"
    shutil.copytree(tiny_data, out)
    for split, per_kind in {"train": 6, "val": 2, "test": 2}.items():
        write_kinds(out, split, per_kind)
    return out


def test_split_off_removes_the_kinds_from_every_non_pet_split_and_returns_all_their_photos(data, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    held = unseen_kinds.split_off(data, {"sky"}, work)
    assert len(held) == 6 + 2 + 2
    assert np.all(np.abs(held.astype(float).mean(axis=(1, 2, 3)) - KINDS["sky"]) < 5)
    for split in ("train", "val", "test"):
        with np.load(work / f"neither_{split}.npz") as kept:
            assert {f.split("/")[0] for f in kept["files"]} == {"rock", "grass"}
        with np.load(work / f"{split}.npz") as pets, np.load(data / f"{split}.npz") as original:
            assert np.array_equal(pets["images"], original["images"])  # the pets are untouched


@pytest.mark.parametrize(
    ("hold", "message"),
    [
        ({"cloud"}, r"no non-pet photos of kind\(s\) \['cloud'\]; the data has: grass, rock, sky"),
        (set(KINDS), "holding out every kind leaves no non-pet photos"),
    ],
)
def test_split_off_refuses_a_kind_the_data_lacks_and_holding_out_everything(data, tmp_path, hold, message):
    with pytest.raises(ValueError, match=message):
        unseen_kinds.split_off(data, hold, tmp_path)


def test_a_bad_kind_is_a_sentence_and_exit_2(data, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("train: {}\n")
    assert unseen_kinds.main(["--hold", "cloud", "--data-dir", str(data), "--params", str(params)]) == 2
    assert "no non-pet photos of kind(s) ['cloud']" in capsys.readouterr().err


def test_retrains_without_the_kinds_and_scores_them_leaving_no_run_behind(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the project's mlflow.db and mlruns/ would be here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = tmp_path / "params.yaml"
    params.write_text(
        "train:\n  batch_size: 16\n  eval_batch_size: 16\n  max_minutes: 5.0\n"
        "  efficientnet_lite0: {epochs: 2, head_epochs: 1, unfreeze_from: 14}\n"
    )
    out = tmp_path / "unseen.json"
    code = unseen_kinds.main(
        ["--hold", "sky", "--data-dir", str(data), "--params", str(params), "--out", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["held_out_kinds"] == ["sky"] and result["held_out_photos"] == 10 and result["pets"] == 32
    for share in ("held_out_flagged", "pets_flagged", "original_head_held_out_flagged"):
        assert 0.0 <= result[share] <= 1.0
    assert result["neither_below"] > 0  # fitted on the remaining kinds' validation photos
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    assert "MLFLOW_TRACKING_URI" not in os.environ  # put back as it was
