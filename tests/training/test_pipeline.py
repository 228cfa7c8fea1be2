"""`dvc repro` and `dvc exp run -S ...` of the real dvc.yaml, on tiny data, in a temp copy of the repo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.training.conftest import commit_all, pipeline_repo, run

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def repo(repo_root, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A git + DVC repo holding the pipeline's sources and tiny params (1 epoch, 24 pictures)."""

    def tiny(params: dict) -> None:
        params["synthetic"]["per_class"] = 12
        params["prepare"]["raw_dir"] = "data/synthetic"  # the offline default, whatever this checkout uses
        params["train"].update(batch_size=8, num_workers=0)
        params["train"]["efficientnet_lite0"].update(epochs=1, head_epochs=1)  # the default arch, head only

    copy = tmp_path_factory.mktemp("pipeline") / "repo"
    env = pipeline_repo(repo_root, copy, tiny)
    run(["dvc", "repro", "evaluate"], copy, env)
    commit_all(copy, env)
    return copy, env


def test_repro_runs_every_stage_and_writes_the_outputs(repo):
    copy, env = repo
    for path in ("data/prepared/train.npz", "models/model.pt", "models/model.json", "models/index_to_name.json",
                 "models/mlflow_run.json", "metrics.json", "plots/reference_predictions.json",
                 "plots/confusion.csv", "mlflow.db"):
        assert (copy / path).exists(), path
    lock = yaml.safe_load((copy / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"synthetic", "prepare", "train", "evaluate"}
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], copy, env))
    assert "accuracy" in json.dumps(metrics)
    assert "up to date" in run(["dvc", "status", "evaluate"], copy, env)


def test_exp_run_with_set_params_and_an_out_of_repo_raw_dir(repo):
    copy, env = repo
    external = copy.parent / "photos"  # outside the repo, as a user's photo folder would be
    shutil.copytree(copy / "data" / "synthetic", external, dirs_exist_ok=True)
    run(["dvc", "exp", "run", "-S", "train.efficientnet_lite0.epochs=2", "-S", "prepare.raw_dir=../photos",
         "evaluate"], copy, env)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    assert params["train"]["efficientnet_lite0"]["epochs"] == 2 and params["prepare"]["raw_dir"] == "../photos"
    lock = yaml.safe_load((copy / "dvc.lock").read_text())
    assert lock["stages"]["prepare"]["deps"][0]["path"] == "../photos"
    assert lock["stages"]["train"]["params"]["params.yaml"]["train"]["efficientnet_lite0"]["epochs"] == 2
    report = json.loads((copy / "data" / "prepared" / "report.json").read_text())
    assert "photos" in json.dumps(report)
