"""The embedded synthetic dataset: deterministic, in an accepted layout, labelled synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.prepare import main as prepare_main
from training.synthetic import SyntheticParams, generate, main


def _contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_pictures(tmp_path: Path) -> None:
    generate(tmp_path / "a", SyntheticParams(per_class=4, seed=1))
    generate(tmp_path / "b", SyntheticParams(per_class=4, seed=1))
    generate(tmp_path / "c", SyntheticParams(per_class=4, seed=2))
    a, b, c = (_contents(tmp_path / x) for x in "abc")
    assert a == b
    images = [name for name in a if name.endswith(".jpg")]
    assert len(images) == 8 and all(a[name] != c[name] for name in images)
    assert len({a[name] for name in images}) == 8  # no two pictures alike


def test_layout_readme_and_marker(tmp_path: Path) -> None:
    assert generate(tmp_path / "syn", SyntheticParams(per_class=3, seed=0)) == 6
    names = sorted(_contents(tmp_path / "syn"))
    assert names == [
        "README.txt",
        "SYNTHETIC",
        *[f"train/cats/synthetic_cat_{i:04d}.jpg" for i in range(3)],
        *[f"train/dogs/synthetic_dog_{i:04d}.jpg" for i in range(3)],
    ]
    assert (tmp_path / "syn" / "README.txt").read_text().startswith("SYNTHETIC DATA - NOT PHOTOGRAPHS.")


def test_prepare_reports_it_as_synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # both CLIs read ./params.yaml by default, as under DVC
    (tmp_path / "params.yaml").write_text("synthetic: {per_class: 10, seed: 3}\nprepare: {raw_dir: syn}\n")
    assert main(["--out-dir", "syn"]) == 0
    assert prepare_main(["--out-dir", "prepared"]) == 0
    report = json.loads((tmp_path / "prepared" / "report.json").read_text())
    assert report["synthetic"] is True and report["source"] == "syn"
    assert report["counts"]["kept"] == 20 and report["counts"]["skipped"] == 0


def test_regenerating_replaces_only_synthetic_folders(tmp_path: Path) -> None:
    generate(tmp_path / "syn", SyntheticParams(per_class=5, seed=0))
    generate(tmp_path / "syn", SyntheticParams(per_class=2, seed=0))
    assert len(list((tmp_path / "syn").rglob("*.jpg"))) == 4
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "mine.jpg").write_bytes(b"precious")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        generate(tmp_path / "photos", SyntheticParams(per_class=2, seed=0))
    assert (tmp_path / "photos" / "mine.jpg").read_bytes() == b"precious"


def test_per_class_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SyntheticParams(per_class=0)
