"""`dvc repro` and `dvc exp run -S ...` of the real dvc.yaml, on tiny data, in a temp copy of the repo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

SOURCES = ("handler", "training", "dvc.yaml", "params.yaml", ".gitignore")


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def repo(repo_root, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A git + DVC repo holding the pipeline's sources and tiny params (1 epoch, 24 pictures)."""
    copy = tmp_path_factory.mktemp("pipeline") / "repo"
    copy.mkdir()
    for name in SOURCES:
        source = repo_root / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["synthetic"]["per_class"] = 12
    params["prepare"]["raw_dir"] = "data/synthetic"  # the offline default, whatever this checkout uses
    params["train"].update(batch_size=8, num_workers=0)
    params["train"]["efficientnet_lite0"].update(epochs=1, head_epochs=1)  # the default arch, head only
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTHONPATH", "DVC_"))}
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    run(["git", "init", "-q"], copy, env)
    run([str(Path(sys.executable).parent / "dvc"), "init", "-q"], copy, env)
    run(["dvc", "repro", "evaluate"], copy, env)
    run([*git, "add", "-A"], copy, env)
    run([*git, "commit", "-qm", "tiny pipeline"], copy, env)
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
