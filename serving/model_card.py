"""The model card of a release (MODEL_CARD.md): what was trained, on what, how well, by which code.

It renders whatever the inputs hold rather than a fixed list of keys, so new numbers in metrics.json
(calibration, abstention, ...) appear without a change here. The training record comes from the
MLflow run named in models/mlflow_run.json when that store is reachable, else from params.yaml
`train:` and a hash of the prepared splits, and the card says which.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# metrics.json keys that describe calibration, shown in their own section when present.
CALIBRATION_KEYS = ("ece", "mce", "brier", "nll", "temperature", "threshold", "unsure_share", "coverage")


def flat_train_params(train: dict) -> dict[str, Any]:
    """params.yaml `train:` as MLflow records it (training/train.py run_params): the shared keys, and
    the chosen arch's recipe as `recipe.<key>` (the other archs' recipes left out)."""
    flat = {k: v for k, v in train.items() if not isinstance(v, dict)}
    recipe = train.get(train.get("arch", "efficientnet_lite0"))
    flat.update({f"recipe.{k}": v for k, v in (recipe if isinstance(recipe, dict) else {}).items()})
    return flat


def training_record(model_dir: Path, params: dict, prepared_dir: Path) -> dict[str, Any]:
    """{source, params, data_version, run_id, git_commit, arch, metrics} of the run that made the weights."""
    from training import tracking  # stdlib-only module; imported here to keep this module's import light

    record: dict[str, Any] = {"source": "params.yaml `train:`", "params": flat_train_params(params.get("train") or {})}
    info = tracking.read_run_info(model_dir)
    if info:
        try:
            from mlflow.tracking import MlflowClient

            run = MlflowClient(tracking_uri=info["tracking_uri"]).get_run(info["run_id"])
            record.update(
                source=f"MLflow run {info['run_id']} ({info['tracking_uri']})",
                run_id=info["run_id"],
                params=dict(run.data.params),
                metrics=dict(run.data.metrics),
                data_version=run.data.tags.get("data_version"),
                git_commit=run.data.tags.get("git_commit"),
                arch=run.data.params.get("arch") or run.data.tags.get("arch"),
            )
        except Exception as e:  # an unreachable or foreign store must not block a release of good weights
            logger.warning("MLflow run %s not readable (%s): using params.yaml", info.get("run_id"), e)
            record["run_id"] = info.get("run_id")
    if not record.get("data_version") and any(Path(prepared_dir).glob("*.npz")):
        record["data_version"] = tracking.data_version(prepared_dir)
    return record


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """Numeric leaves of nested metrics as (dotted.name, value)."""
    if isinstance(value, dict):
        return [
            pair for key, sub in value.items() for pair in _flat(f"{prefix}.{key}" if prefix else key, sub)
        ]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(prefix, value)]
    return []


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_number(cell) for cell in row) + " |" for row in rows]


def render_model_card(release: dict, metrics: dict, report: dict, training: dict) -> str:
    per_class = metrics.get("per_class") if isinstance(metrics.get("per_class"), dict) else {}
    counts = report.get("counts", {})
    arch = metrics.get("arch") or training.get("arch") or "see training/model.py in source.tar.gz"
    lines = [
        f"# Model card: {release['name']} {release['version']}",
        "",
        "Cat-or-dog classifier for photos, served by TorchServe (archive "
        f"`{release['archive']}`, SHA-256 `{release['archive_sha256']}`).",
        "",
        "## Release",
        "",
        *_table(
            ("", ""),
            [
                ("version", release["version"]),
                ("date (UTC)", release["created"]),
                ("git commit", release["git_commit"]),
                ("architecture", arch),
                ("data version", release["data_version"]),
                ("training run", training.get("run_id") or "not recorded"),
                ("training commit", training.get("git_commit") or "not recorded"),
            ],
        ),
        "",
        "## Data",
        "",
        f"Real photos from `{report.get('source', '?')}` (synthetic: {report.get('synthetic')}); "
        f"{counts.get('found', '?')} files found, {counts.get('kept', '?')} kept, "
        f"{counts.get('skipped', '?')} skipped, {counts.get('duplicates', '?')} duplicates removed.",
        "",
    ]
    splits = counts.get("splits") or {}
    if splits:
        classes = sorted({k for s in splits.values() for k in s if k != "total"})
        lines += _table(
            ("split", *classes, "total"),
            [(name, *(s.get(c, 0) for c in classes), s.get("total", "?")) for name, s in splits.items()],
        )
        lines.append("")
    gate = release["gate"]
    lines += [
        "## Test metrics (held-out test split)",
        "",
        f"Quality gate passed: accuracy >= {gate['min_accuracy']}, every class's recall >= "
        f"{gate['min_class_recall']} (params.yaml `release:`).",
        "",
        *_table(
            ("metric", "value"),
            [
                (k, v)
                for k, v in _flat("", metrics)
                if not k.startswith("per_class.") and k.split(".")[0] not in CALIBRATION_KEYS
            ],
        ),
        "",
    ]
    if per_class:
        found = {k for scores in per_class.values() if isinstance(scores, dict) for k in scores}
        fields = [k for k in ("precision", "recall", "f1", "support") if k in found] + sorted(
            found - {"precision", "recall", "f1", "support"}
        )
        lines += [
            "### Per class",
            "",
            *_table(
                ("class", *fields),
                [
                    (name, *(s.get(f, "") for f in fields))
                    for name, s in per_class.items()
                    if isinstance(s, dict)
                ],
            ),
            "",
            "![confusion matrix](plots/confusion_matrix.png)",
            "",
        ]
    calibration = [(k, v) for k, v in _flat("", metrics) if k.split(".")[0] in CALIBRATION_KEYS]
    lines += ["## Calibration", ""]
    lines += (
        _table(("metric", "value"), calibration)
        if calibration
        else ["Not measured: metrics.json has no calibration numbers (e.g. `ece`)."]
    )
    lines += ["", "## Training parameters", "", f"From {training['source']}.", ""]
    lines += (
        _table(("parameter", "value"), sorted(training.get("params", {}).items()))
        if training.get("params")
        else ["Not recorded."]
    )
    lines += [
        "",
        "## Intended use and limits",
        "",
        "Tells cats from dogs in photos of one pet. Other animals, drawings and photos with both pets are "
        "outside the training data; check the served verdicts and their probabilities before acting on them.",
        "",
        "## Files",
        "",
        "`SHA256SUMS` lists every file of this release (`sha256sum -c SHA256SUMS`); `source.tar.gz` is "
        "`git archive` of the commit above (code, DVC pipeline, params, Dockerfile, manifests, workflows), "
        "`source.patch` the uncommitted changes it was built with, if any.",
        "",
    ]
    return "\n".join(lines)
