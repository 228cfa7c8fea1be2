"""The checks a model must pass before `make release` ships it (serving/release.py runs them in order).

Each refusal is a ReleaseError whose message is the sentence the command prints: the data was
synthetic (or nothing says it was real), the test metrics are below params.yaml `release:`, the
archive is not the packaged version of the current weights, or dvc.lock says the metrics belong to
other weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from serving.store import MODEL_NAME, ArchiveError, read_manifest, read_model_config


class ReleaseError(Exception):
    """The model may not be released; the message is the sentence that says why."""


@dataclasses.dataclass(frozen=True)
class Gate:
    """params.yaml `release:`: the least a model must score on the held-out test split."""

    min_accuracy: float = 0.95
    min_class_recall: float = 0.0  # every class's recall; 0 turns the check off

    @classmethod
    def from_params(cls, raw: Any) -> Gate:
        if not isinstance(raw, dict):
            raise ReleaseError("params.yaml has no `release:` section with the quality gate (min_accuracy)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ReleaseError(f"unknown keys in params.yaml `release:` {unknown}; known: {sorted(known)}")
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ReleaseError(f"release.{name} must be a number between 0 and 1, got {value!r}")
        return cls(**{k: float(v) for k, v in raw.items()})

    def check(self, metrics: dict) -> None:
        accuracy = metrics.get("accuracy")
        if not isinstance(accuracy, (int, float)):
            raise ReleaseError("metrics.json has no test `accuracy`: evaluate the model first (make train)")
        if accuracy < self.min_accuracy:
            raise ReleaseError(
                f"refusing to release: test accuracy {accuracy:.4f} is below the gate "
                f"release.min_accuracy {self.min_accuracy:.4f} (params.yaml)"
            )
        if self.min_class_recall > 0:
            per_class = metrics.get("per_class")
            if not isinstance(per_class, dict) or not per_class:
                raise ReleaseError("metrics.json has no per_class recall to check release.min_class_recall")
            for name, scores in sorted(per_class.items()):
                recall = scores.get("recall") if isinstance(scores, dict) else None
                if not isinstance(recall, (int, float)) or recall < self.min_class_recall:
                    raise ReleaseError(
                        f"refusing to release: {name} recall {recall} is below the gate "
                        f"release.min_class_recall {self.min_class_recall:.4f} (params.yaml)"
                    )


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Where `make release` finds what it ships (the repo's defaults; tests point them elsewhere)."""

    params: Path = Path("params.yaml")
    model_dir: Path = Path("models")
    mar: Path = Path("models/catsdogs.mar")
    metrics: Path = Path("metrics.json")
    plots_dir: Path = Path("plots")
    data_report: Path = Path("data/prepared/report.json")
    dvc_lock: Path = Path("dvc.lock")
    repo: Path = Path(".")


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ReleaseError(f"{path} not found: {what}")
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ReleaseError(f"{path} is not readable JSON: {e}") from e
    if not isinstance(value, dict):
        raise ReleaseError(f"{path} must hold a JSON object")
    return value


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_real_data(report: dict, path: Path) -> None:
    """The guard that keeps synthetic-data models out of releases (and so out of images)."""
    if report.get("synthetic") is not False:
        said = "says the data was SYNTHETIC" if report.get("synthetic") else "does not say the data was real"
        raise ReleaseError(
            f"refusing to release: {path} {said} (source {report.get('source', '?')}); a release must be "
            "trained on real photos: make data N=2000 && make train DATA=data/raw && make package"
        )


def check_archive(inputs: Inputs, version: str) -> None:
    try:
        name, mar_version = read_manifest(inputs.mar)
    except ArchiveError as e:
        raise ReleaseError(f"{e}: package the model first (make package)") from e
    if (name, mar_version) != (MODEL_NAME, version):
        raise ReleaseError(
            f"{inputs.mar} holds {name} {mar_version}, but params.yaml package.version is {version}: "
            "run make package"
        )
    # The archive holds an export of the weights (model.onnx), so it records their sha256 instead.
    weights = inputs.model_dir / "model.pt"
    packed = (read_model_config(inputs.mar).get("source") or {}).get("weights_sha256")
    if weights.is_file() and packed != file_digest(weights):
        raise ReleaseError(f"{inputs.mar} does not hold {weights}: run make package")


def check_lineage(inputs: Inputs) -> None:
    """When DVC ran the pipeline: metrics.json must be the evaluation of the current weights."""
    if not inputs.dvc_lock.is_file():
        return
    stage = (yaml.safe_load(inputs.dvc_lock.read_text()) or {}).get("stages", {}).get("evaluate")
    if not stage:
        return
    recorded = {e["path"]: e.get("md5") for e in stage.get("deps", []) + stage.get("outs", []) if "path" in e}
    for path, local in (("models/model.pt", inputs.model_dir / "model.pt"), ("metrics.json", inputs.metrics)):
        if recorded.get(path) and local.is_file() and file_digest(local, "md5") != recorded[path]:
            raise ReleaseError(
                f"{local} is not what dvc.lock's evaluate stage recorded: the metrics may belong to other "
                "weights; run make train (dvc repro evaluate) and make package"
            )
