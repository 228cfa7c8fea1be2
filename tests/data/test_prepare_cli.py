"""`python -m training.prepare` end to end on tiny data, and its errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.data.conftest import make_dataset
from training.prepare import main


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "raw", "PetImages/Cat", "PetImages/Dog", cats=20, dogs=10)


@pytest.fixture
def defaults(tmp_path: Path) -> list[str]:
    """--params pointing at a file whose prepare: section is empty: every default applies."""
    (tmp_path / "defaults.yaml").write_text("prepare: {}\n")
    return ["--params", str(tmp_path / "defaults.yaml")]


def test_cli_writes_splits_and_report(
    raw: Path, tmp_path: Path, repo_root: Path, defaults: list[str]
) -> None:
    out = tmp_path / "prepared"
    done = subprocess.run(
        [sys.executable, "-m", "training.prepare", "--raw-dir", str(raw), "--out-dir", str(out), *defaults],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "30 files found" in done.stderr and "train 24 / val 3 / test 3" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "test.npz", "train.npz", "val.npz"]
    with np.load(out / "train.npz") as data:
        assert set(data.files) == {"images", "labels", "files"}
        images, labels, files = data["images"], data["labels"], data["files"]
    assert images.dtype == np.uint8 and images.shape == (24, 224, 224, 3)
    assert labels.dtype == np.int64 and labels.tolist() == [0] * 16 + [1] * 8
    assert files.dtype.kind == "U" and files[0] == "PetImages/Cat/cat_000.jpg"
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["splits"]["test"] == {"cat": 2, "dog": 1, "total": 3}
    assert report["synthetic"] is False and report["source"] == str(raw) and report["seed"] == 42


def test_params_section_is_read(raw: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("prepare:\n  seed: 5\n  val_fraction: 0.2\n  test_fraction: 0.2\ntrain:\n  epochs: 1\n")
    assert main(["--raw-dir", str(raw), "--out-dir", str(tmp_path / "out"), "--params", str(params)]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["seed"] == 5 and report["counts"]["splits"]["val"]["total"] == 6


def test_raw_dir_comes_from_params_when_not_given(raw: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"prepare:\n  raw_dir: {raw}\n")
    assert main(["--out-dir", str(tmp_path / "out"), "--params", str(params)]) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["counts"]["kept"] == 30


@pytest.mark.parametrize(
    ("params_text", "message"),
    [
        ("prepare:\n  sed: 1\n", "unknown key"),
        ("prepare:\n  seed: one\n", "must be int"),
        ("prepare:\n  val_fraction: 0.6\n  test_fraction: 0.5\n", "sum to < 1"),
        ("other: {}\n", "no 'prepare' section"),
        ("prepare: [1, 2]\n", "must be a mapping"),
    ],
)
def test_bad_params_are_errors(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture, params_text: str, message: str
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(params_text)
    assert main(["--raw-dir", str(raw), "--out-dir", str(tmp_path / "out"), "--params", str(params)]) == 1
    assert message in capsys.readouterr().err


def test_bad_raw_dirs_exit_non_zero_with_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture, defaults: list[str]
) -> None:
    out = ["--out-dir", str(tmp_path / "out"), *defaults]
    assert main(["--raw-dir", str(tmp_path / "missing"), *out]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "flat").mkdir()
    assert main(["--raw-dir", str(tmp_path / "flat"), *out]) == 1
    assert "accepted layouts" in capsys.readouterr().err
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "dogs").mkdir()
    (tmp_path / "empty" / "dogs" / "Thumbs.db").write_bytes(b"x")
    assert main(["--raw-dir", str(tmp_path / "empty"), *out]) == 1
    assert "No image files" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_class_with_no_usable_image_is_an_error(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture, defaults: list[str]
) -> None:
    for path in (raw / "PetImages" / "Dog").iterdir():
        path.write_bytes(b"")
    assert main(["--raw-dir", str(raw), "--out-dir", str(tmp_path / "out"), *defaults]) == 1
    assert "No usable dog images" in capsys.readouterr().err


def test_missing_params_file_is_an_error(raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = [
        "--raw-dir",
        str(raw),
        "--out-dir",
        str(tmp_path / "out"),
        "--params",
        str(tmp_path / "nope.yaml"),
    ]
    assert main(args) == 1
    assert "params file not found" in capsys.readouterr().err
