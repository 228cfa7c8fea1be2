"""Score the trained model on the test split, once: metrics.json, plots for `dvc plots`, a drift reference.

Run: python -m training.evaluate --data-dir data/prepared --model-dir models --metrics metrics.json \
         --plots-dir plots [--params params.yaml]
(the `evaluate` stage of dvc.yaml). Writes
- metrics.json (`dvc metrics show`): the arch; test accuracy (a pet answered "neither" counts as
  wrong), macro precision/recall/F1 and per-class numbers; calibration (expected calibration error,
  the share of answers under evaluate.unsure_below confidence); the four answers with the model's
  calibrated thresholds (shares of pets answered unsure and neither, accuracy among the answered);
- with data/prepared/neither_test.npz (held-out non-pet photos, prepare.neither_dir), the same model
  and thresholds answer them too: nonpets_n and the shares answered neither / unsure / cat or dog;
- plots/confusion.csv (actual,predicted per picture: DVC's confusion template), confusion_matrix.png,
  confidence.png, reliability.png, neither_scores.png (pet probability of test pets vs held-out
  non-pets, and the "neither" threshold);
- plots/reference_predictions.json: each test picture's file, label, prediction and prob_dog, plus the
  predicted-label mix and confidence histogram: the baseline monitoring compares live traffic to.
The metrics are also logged to the training run named in models/mlflow_run.json, when its store is there.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from handler.preprocess import CLASS_NAMES
from handler.verdict import NEITHER, UNSURE, VERDICTS, Thresholds, verdict
from training import model as model_folder
from training import tracking
from training.data import load_neither
from training.figures import save_confusion_matrix, save_reliability
from training.metrics import classification_metrics, expected_calibration_error, predict
from training.params import EvaluateParams, load_section

logger = logging.getLogger(__name__)

CONFIDENCE_BINS = np.linspace(0.5, 1.0, 11)  # the winning class's probability is always >= 0.5


def load_test(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = Path(data_dir) / "test.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the prepare stage first")
    with np.load(path) as data:
        return data["images"], data["labels"].astype(np.int64), data["files"].astype(str)


def reference(files: np.ndarray, labels: np.ndarray, prob_dog: np.ndarray, answers: list[str] | None = None) -> dict:
    """The monitoring baseline: each picture's answer (cat, dog, unsure or neither: what the server
    says for it) and probability of dog, their mix, and the confidence histogram."""
    if answers is None:
        answers = [CLASS_NAMES[int(d >= 0.5)] for d in prob_dog]
    confidence = np.maximum(prob_dog, 1 - prob_dog)
    counts, _ = np.histogram(confidence, bins=CONFIDENCE_BINS)
    return {
        "split": "test",
        "class_names": list(CLASS_NAMES),
        "predicted_mix": {name: float(np.mean([a == name for a in answers])) for name in VERDICTS},
        "confidence_histogram": {"bin_edges": CONFIDENCE_BINS.round(2).tolist(), "counts": counts.tolist()},
        "mean_confidence": float(confidence.mean()),
        "items": [
            {"file": f, "label": CLASS_NAMES[y], "predicted": a, "prob_dog": round(float(d), 6)}
            for f, y, a, d in zip(files, labels, answers, prob_dog)
        ],
    }


def write_plots(plots_dir: Path, labels: np.ndarray, prob_dog: np.ndarray, matrix: list[list[int]]) -> None:
    plots_dir.mkdir(parents=True, exist_ok=True)
    predicted = (prob_dog >= 0.5).astype(int)
    with (plots_dir / "confusion.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["actual", "predicted"])
        writer.writerows((CLASS_NAMES[y], CLASS_NAMES[p]) for y, p in zip(labels, predicted))
    save_confusion_matrix(matrix, plots_dir / "confusion_matrix.png", "test split")
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for i, name in enumerate(CLASS_NAMES):
        ax.hist(prob_dog[labels == i], bins=20, range=(0, 1), alpha=0.6, label=f"actual {name}")
    ax.set_xlabel("predicted probability of dog")
    ax.set_ylabel("pictures")
    ax.legend()
    fig.savefig(plots_dir / "confidence.png", dpi=100)


def nonpet_metrics(probabilities: np.ndarray, pet: np.ndarray, thresholds: Thresholds) -> dict:
    """The answers to held-out non-pet photos (probabilities N x 2 after the temperature): the share
    flagged "neither" is the one that should be high; "cat"/"dog" are the misfiled ones."""
    answers = verdicts(probabilities, pet, thresholds)
    return {
        "nonpets_n": len(answers),
        "nonpets_neither": float(np.mean([a == NEITHER for a in answers])),
        "nonpets_unsure": float(np.mean([a == UNSURE for a in answers])),
        "nonpets_cat_or_dog": float(np.mean([a in CLASS_NAMES for a in answers])),
    }


def save_neither_scores(
    pets: np.ndarray, nonpets: np.ndarray | None, neither_below: float, path: Path
) -> None:
    """Histograms of the pet probability, test pets against held-out non-pets, with the threshold
    under which the answer is "neither". Written without non-pets too, so the DVC plot always exists."""
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(pets, bins=25, range=(0, 1), alpha=0.6, label=f"test pets ({len(pets)})")
    if nonpets is not None:
        ax.hist(nonpets, bins=25, range=(0, 1), alpha=0.6, label=f"held-out non-pets ({len(nonpets)})")
    ax.axvline(neither_below, color="black", linestyle="--", label=f'"neither" below {neither_below:.3g}')
    ax.set_xlabel("pet probability")
    ax.set_ylabel("pictures")
    title = "test pets vs held-out non-pets" if nonpets is not None else "test pets (no held-out non-pets)"
    ax.set_title(title)
    ax.legend()
    fig.savefig(path, dpi=100)


def log_to_training_run(model_dir: Path, summary: dict, plots_dir: Path) -> None:
    """Add the test metrics to the MLflow run that trained the model, if that store is reachable."""
    info = tracking.read_run_info(model_dir)
    if info is None:
        logger.info("no %s in %s: metrics not logged to MLflow", tracking.RUN_INFO, model_dir)
        return
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.set_tracking_uri(info["tracking_uri"])
        with mlflow.start_run(run_id=info["run_id"]):
            mlflow.log_metrics({f"test_{k}": v for k, v in summary.items() if isinstance(v, float)})
            mlflow.log_artifacts(str(plots_dir), artifact_path="evaluation")
    except MlflowException as e:
        logger.warning("could not log to MLflow run %s at %s: %s", info["run_id"], info["tracking_uri"], e)


def verdicts(probabilities: np.ndarray, pet: np.ndarray, thresholds: Thresholds) -> list[str]:
    """The answer the server gives each picture (handler/verdict.py with the model's thresholds)."""
    return [verdict(dict(zip(CLASS_NAMES, row)), p, thresholds) for row, p in zip(probabilities, pet)]


def answer_metrics(probabilities: np.ndarray, answers: list[str], labels: np.ndarray,
                   calibration: model_folder.Calibration, unsure_below: float) -> dict:
    """Calibration and the four answers on pets (probabilities N x 2 after the temperature)."""
    confidence = probabilities.max(1)
    right = probabilities.argmax(1) == labels
    neither = np.array([a == NEITHER for a in answers])
    unsure = np.array([a == UNSURE for a in answers])
    answered = ~neither & ~unsure
    return {
        "ece": expected_calibration_error(confidence, right),
        f"share_below_{unsure_below:g}": float(np.mean(confidence < unsure_below)),
        "temperature": calibration.temperature,
        "unsure_below": calibration.thresholds.unsure_below,
        "neither_below": calibration.thresholds.neither_below,
        "pets_unsure": float(np.mean(unsure)),
        "pets_neither": float(np.mean(neither)),
        "accuracy_answered": float(np.mean(right[answered])) if answered.any() else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--plots-dir", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        params = load_section(args.params, "evaluate", EvaluateParams)
        images, labels, files = load_test(args.data_dir)
        nonpets = load_neither(args.data_dir, "test")  # None without non-pet photos
        model, calibration = model_folder.load(args.model_dir)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(params.threads)
    model = model.to(memory_format=torch.channels_last)
    logits, pet = predict(model, images, params.batch_size, params.bf16)
    probabilities = torch.softmax(logits.double() / calibration.temperature, 1).numpy()
    prob_dog = probabilities[:, 1]
    # A pet answered "neither" is wrong whatever its cat/dog split: it gets the other class's index.
    predicted = np.where(pet < calibration.thresholds.neither_below, 1 - labels, probabilities.argmax(1))
    scores = classification_metrics(labels, predicted)
    answers = verdicts(probabilities, pet, calibration.thresholds)
    summary = {"arch": model_folder.arch_of(model), "accuracy": scores["accuracy"], **scores["macro"],
               "n": scores["n"], "per_class": scores["per_class"],
               **answer_metrics(probabilities, answers, labels, calibration, params.unsure_below)}
    nonpet_pet = None
    if nonpets is None or not len(nonpets):
        logger.info("no held-out non-pet photos (neither_test.npz) in %s: not scored", args.data_dir)
    else:
        nonpet_logits, nonpet_pet = predict(model, nonpets, params.batch_size, params.bf16)
        nonpet_probabilities = torch.softmax(nonpet_logits.double() / calibration.temperature, 1).numpy()
        summary.update(nonpet_metrics(nonpet_probabilities, nonpet_pet, calibration.thresholds))
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(summary, indent=2) + "\n")
    write_plots(args.plots_dir, labels, prob_dog, scores["confusion_matrix"])
    save_reliability(probabilities.max(1), probabilities.argmax(1) == labels, args.plots_dir / "reliability.png")
    save_neither_scores(pet, nonpet_pet, calibration.thresholds.neither_below,
                        args.plots_dir / "neither_scores.png")
    (args.plots_dir / "reference_predictions.json").write_text(
        json.dumps(reference(files, labels, prob_dog, answers), indent=2) + "\n")
    log_to_training_run(args.model_dir, summary, args.plots_dir)
    recalls = "  ".join(f"{name} recall {summary['per_class'][name]['recall']:.4f}" for name in CLASS_NAMES)
    print(f"test accuracy {summary['accuracy']:.4f}  {recalls}  ECE {summary['ece']:.4f}  "
          f"unsure {summary['pets_unsure']:.3f}  neither {summary['pets_neither']:.3f}  "
          f"answered right {summary['accuracy_answered']:.4f}  on {summary['n']} pictures "
          f"-> {args.metrics}, {args.plots_dir}/")
    if "nonpets_n" in summary:
        print(f"held-out non-pets: {summary['nonpets_neither']:.3f} answered neither, "
              f"{summary['nonpets_unsure']:.3f} unsure, {summary['nonpets_cat_or_dog']:.3f} cat or dog "
              f"of {summary['nonpets_n']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
