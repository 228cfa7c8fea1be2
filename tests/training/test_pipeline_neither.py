"""The real dvc.yaml up to `prepare` with non-pet photos: the synthetic ones by default, none (an empty
folder, as `make train DATA=...` links it), and a folder outside the repo (`make train NEITHER=...`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.data.conftest import write_photo
from tests.training.conftest import commit_all, pipeline_repo, run

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def repo(repo_root, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A git + DVC repo with the pipeline's sources, 12 pictures per class and 8 drawn non-pets."""

    def tiny(params: dict) -> None:
        params["synthetic"].update(per_class=12, neither=8)
        params["prepare"].update(raw_dir="data/synthetic", neither_dir="data/synthetic/neither")

    copy = tmp_path_factory.mktemp("pipeline_neither") / "repo"
    env = pipeline_repo(repo_root, copy, tiny)
    run(["dvc", "repro", "prepare"], copy, env)
    commit_all(copy, env)
    return copy, env


def _report(copy: Path) -> dict:
    return json.loads((copy / "data" / "prepared" / "report.json").read_text())


def test_repro_prepares_the_synthetic_non_pets_and_tracks_their_folder(repo):
    copy, env = repo
    neither = _report(copy)["neither"]
    assert neither["synthetic"] is True and neither["counts"]["kept"] == 8
    assert sorted(p.name for p in (copy / "data" / "prepared").glob("neither_*.npz")) == [
        "neither_test.npz",
        "neither_train.npz",
        "neither_val.npz",
    ]
    lock = yaml.safe_load((copy / "dvc.lock").read_text())
    assert "data/synthetic/neither" in [d["path"] for d in lock["stages"]["prepare"]["deps"]]
    assert "up to date" in run(["dvc", "status", "prepare"], copy, env)


def test_an_empty_folder_then_an_outside_folder_as_make_train_links_them(repo):
    copy, env = repo
    link = copy / "data" / "neither_source"
    link.mkdir()  # `make train DATA=...` without NEITHER
    run(["dvc", "exp", "run", "-S", "prepare.neither_dir=data/neither_source", "prepare"], copy, env)
    neither = _report(copy)["neither"]
    assert neither["source"] == "data/neither_source" and neither["counts"]["found"] == 0
    assert not list((copy / "data" / "prepared").glob("neither_*.npz"))
    outside = copy.parent / "not-pets"  # `make train NEITHER=../not-pets`
    for i in range(10):
        write_photo(outside / "bird" / f"{i}.jpg", seed=300 + i)
    link.rmdir()
    link.symlink_to(outside)
    run(["dvc", "exp", "run", "-S", "prepare.neither_dir=data/neither_source", "prepare"], copy, env)
    neither = _report(copy)["neither"]
    assert (
        neither["counts"]["kept"] == 10 and neither["kinds"] == {"bird": 10} and neither["synthetic"] is False
    )
