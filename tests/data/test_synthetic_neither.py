"""The synthetic demo data's non-pet class: drawn things, deterministic, and prepared as non-pets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.prepare import main as prepare_main
from training.synthetic import THINGS, SyntheticParams, generate, main


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def test_non_pets_are_drawn_in_a_folder_per_kind_and_leave_the_pets_alone(tmp_path: Path) -> None:
    assert generate(tmp_path / "a", SyntheticParams(per_class=3, seed=1, neither=8)) == 14
    generate(tmp_path / "b", SyntheticParams(per_class=3, seed=1, neither=8))
    generate(tmp_path / "c", SyntheticParams(per_class=3, seed=1, neither=0))
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert a == b  # same seed, same bytes
    others = {name: data for name, data in a.items() if name.startswith("neither/")}
    assert sorted(others) == sorted(
        f"neither/{kind}/synthetic_{kind}_{i:04d}.jpg" for i in range(8) for kind in [list(THINGS)[i % 4]]
    )
    assert len(set(others.values())) == 8
    assert {name: data for name, data in a.items() if name.startswith("train/")} == c  # pets unchanged
    assert (tmp_path / "c" / "neither").is_dir() and not any((tmp_path / "c" / "neither").iterdir())
    assert "8 drawn non-pet pictures" in (tmp_path / "a" / "README.txt").read_text()


def test_prepare_takes_them_as_synthetic_non_pets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # both CLIs read ./params.yaml, as under DVC
    (tmp_path / "params.yaml").write_text(
        "synthetic: {per_class: 10, seed: 3, neither: 20}\n"
        "prepare: {raw_dir: syn, neither_dir: syn/neither}\n"
    )
    assert main(["--out-dir", "syn"]) == 0
    assert prepare_main(["--out-dir", "prepared"]) == 0
    report = json.loads((tmp_path / "prepared" / "report.json").read_text())
    assert report["synthetic"] is True and report["counts"]["kept"] == 20  # neither/ is no pet folder
    neither = report["neither"]
    assert (
        neither["synthetic"] is True and neither["counts"]["kept"] == 20 and neither["counts"]["skipped"] == 0
    )
    assert neither["kinds"] == dict.fromkeys(sorted(THINGS), 5)
    # 10 % of 20, taken across the kinds: 5 of a kind would round to none held out on its own.
    assert neither["counts"]["splits"] == {"train": 16, "val": 2, "test": 2}


def test_neither_count_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="synthetic.neither"):
        SyntheticParams(neither=-1)
