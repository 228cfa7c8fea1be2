"""Log a monitoring batch to MLflow as its own run, linked to the training run of the served model.

The link is two tags on the monitoring run: `training_run_id` (from `models/mlflow_run.json`, written by
the train stage) and `model_version` (what the server said it served). Search them in the MLflow UI with
`tags.training_run_id = '<id>'` to see every check a trained model has had since deployment.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from serving.paths import MLFLOW_RUN_FILE
from training.tracking import use_experiment

logger = logging.getLogger(__name__)

EXPERIMENT = "catsdogs-monitoring"


def training_run(path: Path) -> dict:
    """The train stage's run record ({"run_id", "tracking_uri", ...}), or {} when there is none."""
    if not path.is_file():
        logger.warning("%s not found: the monitoring run will not be linked to a training run", path)
        return {}
    return json.loads(path.read_text())


def flat_metrics(summary: dict, drift: dict | None = None) -> dict[str, float]:
    """The summary's numbers as MLflow metric names (None values left out)."""
    metrics = {
        "items": summary["items"],
        "errors": summary["errors"],
        "accuracy": summary["accuracy"],
        **{f"latency_{q}_ms": v for q, v in summary["latency_ms"].items()},
    }
    for name, scores in summary["per_class"].items():
        metrics[f"precision_{name}"] = scores["precision"]
        metrics[f"recall_{name}"] = scores["recall"]
    if drift is not None:
        metrics["drift"] = float(drift["drift"])
        for name, test in drift["tests"].items():
            metrics[f"drift_{name}_p_value"] = test["p_value"]
    return {k: float(v) for k, v in metrics.items() if v is not None}


def served_version(summary: dict) -> str:
    """The model version that answered most items ('unknown' when none did)."""
    versions = {v: n for v, n in summary["model_versions"].items() if v is not None}
    return max(versions, key=versions.get) if versions else "unknown"


def log_run(
    summary: dict,
    params: dict[str, str],
    artifacts: Iterable[Path],
    run_file: Path = MLFLOW_RUN_FILE,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    drift: dict | None = None,
) -> str:
    """Create the monitoring run; returns its id. Tracking URI: argument, else MLFLOW_TRACKING_URI,
    else the training run's own store (so the two runs sit side by side), else MLflow's default."""
    import mlflow  # heavy import, needed only with --mlflow

    training = training_run(run_file)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or training.get("tracking_uri")
    if uri:
        use_experiment(experiment, uri)  # a new experiment keeps its artifacts beside a SQLite store
    else:
        mlflow.set_experiment(experiment)
    version = served_version(summary)
    tags = {
        "training_run_id": training.get("run_id", "unknown"),
        "model_version": version,
        "mlflow.note.content": f"Post-deployment check of model version {version}: "
        f"{summary['succeeded']}/{summary['items']} answered, accuracy {summary['accuracy']}.",
    }
    with mlflow.start_run(run_name=f"monitor-v{version}", tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(flat_metrics(summary, drift))
        for path in artifacts:
            if path.is_file():
                mlflow.log_artifact(str(path))
        logger.info("logged monitoring run %s to %s", run.info.run_id, mlflow.get_tracking_uri())
        return run.info.run_id
