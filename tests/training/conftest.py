"""Fixtures of the training tests: a tiny prepared dataset and tiny training params, in temp dirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from handler.preprocess import IMAGE_SIZE

TINY_TRAIN = """\
train:
  arch: catsdogsnet
  batch_size: 16
  num_workers: 0
  max_minutes: 5.0
  eval_batch_size: 16
  catsdogsnet: {epochs: 4, lr: 0.003}
evaluate:
  batch_size: 16
"""


def tiny_split(n: int, seed: int) -> dict[str, np.ndarray]:
    """Noisy pictures a small net can tell apart at once: cats reddish, dogs bluish, with a stripe."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % 2
    images = rng.integers(0, 90, size=(n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, ..., 0 if label == 0 else 2] += 150
        row = rng.integers(20, IMAGE_SIZE - 40)
        images[i, row : row + 20] = 255 if label == 0 else 0
    files = np.array([f"train/{'cats' if y == 0 else 'dogs'}/{i}.jpg" for i, y in enumerate(labels)])
    return {"images": images, "labels": labels, "files": files}


@pytest.fixture(scope="session")
def pictures():
    """pictures(n, seed=3) -> (images uint8 N x 224 x 224 x 3, labels)."""

    def make(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
        split = tiny_split(n, seed)
        return split["images"], split["labels"]

    return make


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """data/prepared-like dir: train 64, val 16, test 16 pictures, and a report.json."""
    root = tmp_path_factory.mktemp("prepared")
    for seed, (split, n) in enumerate({"train": 64, "val": 16, "test": 16}.items()):
        np.savez(root / f"{split}.npz", **tiny_split(n, seed))
    (root / "report.json").write_text(json.dumps({"synthetic": True, "source": "tests"}))
    return root


@pytest.fixture
def tiny_params(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(TINY_TRAIN)
    return path


PIPELINE_SOURCES = ("handler", "training", "dvc.yaml", "params.yaml", ".gitignore")


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command of the pipeline tests; a failure shows the end of its output."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def pipeline_repo(repo_root: Path, copy: Path, edit_params: Callable[[dict], None]) -> dict[str, str]:
    """A git + DVC repo at `copy` with the pipeline's sources and params.yaml as `edit_params` leaves
    it; returns the environment its commands run in (the venv first, no MLflow/DVC settings)."""
    copy.mkdir()
    for name in PIPELINE_SOURCES:
        source = repo_root / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    edit_params(params)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTHONPATH", "DVC_"))}
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    run(["git", "init", "-q"], copy, env)
    run(["dvc", "init", "-q"], copy, env)
    return env


def commit_all(copy: Path, env: dict[str, str]) -> None:
    """`dvc exp run` needs a commit to start from."""
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    run([*git, "add", "-A"], copy, env)
    run([*git, "commit", "-qm", "tiny pipeline"], copy, env)
