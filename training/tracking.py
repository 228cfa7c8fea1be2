"""MLflow bookkeeping for a training run, and the link from models/ back to that run.

The store is `sqlite:///mlflow.db` in the working directory (artifacts in ./mlruns) unless
MLFLOW_TRACKING_URI says otherwise (another SQLite file keeps its artifacts in an mlruns/ beside
it); the experiment is `catsdogs`. Nothing here talks to MLflow until a function is called.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

EXPERIMENT = "catsdogs"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
RUN_INFO = "mlflow_run.json"  # in the models dir: which run produced these weights
SPLITS = ("train", "val", "test")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def git_commit() -> str:
    """The commit of the working tree (with "-dirty" when it has changes), or "unknown"."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def data_version(data_dir: Path) -> str:
    """A content hash of the prepared splits: equal data, equal version, however it was made."""
    digest = hashlib.sha256()
    for split in SPLITS:
        path = Path(data_dir) / f"{split}.npz"
        if path.exists():
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def artifact_root(uri: str) -> str | None:
    """Where a new experiment of store `uri` keeps its artifacts: beside another SQLite file, so a
    store elsewhere (a test's, a scratch measurement's) never writes into ./mlruns; None (MLflow's
    ./mlruns) for the default store and for servers."""
    prefix = "sqlite:///"
    if uri == DEFAULT_TRACKING_URI or not uri.startswith(prefix):
        return None
    return (Path(uri.removeprefix(prefix)).resolve().parent / "mlruns").as_uri()


def use_experiment(name: str = EXPERIMENT, uri: str | None = None) -> None:
    """Point MLflow at store `uri` (default: tracking_uri()) and experiment `name`, creating the
    experiment with its artifacts where artifact_root says."""
    import mlflow  # deferred: importing mlflow costs seconds, and tests of other parts don't need it

    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=artifact_root(uri))
    mlflow.set_experiment(name)


def start_run(run_name: str | None = None, tags: dict[str, str] | None = None):
    """Open a run in the `catsdogs` experiment of the configured store (use as a context manager)."""
    import mlflow

    use_experiment()
    return mlflow.start_run(run_name=run_name, tags=tags)


def write_run_info(model_dir: Path, run_id: str, experiment_id: str) -> Path:
    path = Path(model_dir) / RUN_INFO
    info = {"run_id": run_id, "experiment": EXPERIMENT, "experiment_id": experiment_id, "tracking_uri": tracking_uri()}
    path.write_text(json.dumps(info, indent=2) + "\n")
    return path


def read_run_info(model_dir: Path) -> dict | None:
    path = Path(model_dir) / RUN_INFO
    if not path.exists():
        return None
    return json.loads(path.read_text())
