"""PNG figures for MLflow and DVC: a confusion matrix and the loss/accuracy curves.

Uses matplotlib's object API with the Agg canvas, so nothing changes global matplotlib state and no
display is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from handler.preprocess import CLASS_NAMES


def save_confusion_matrix(matrix: list[list[int]], path: Path, title: str) -> None:
    fig = Figure(figsize=(4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    top = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > top / 2 else "black")
    fig.savefig(path, dpi=100)


def save_curves(history: dict[str, list[float]], path: Path) -> None:
    """history: epoch, train_loss, val_loss, val_acc lists -> losses left, validation accuracy right."""
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for key in ("train_loss", "val_loss"):
        loss_ax.plot(history["epoch"], history[key], marker=".", label=key)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy")
    loss_ax.legend()
    acc_ax.plot(history["epoch"], history["val_acc"], marker=".", color="tab:green")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("validation accuracy")
    fig.savefig(path, dpi=100)


def save_reliability(confidence: np.ndarray, correct: np.ndarray, path: Path, bins: int = 10) -> None:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration."""
    edges = np.linspace(0.5, 1.0, bins + 1)  # the winning class of two is always >= 0.5
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    centres, accuracy, counts = [], [], []
    for b in range(bins):
        members = which == b
        if members.any():
            centres.append(float(np.mean(confidence[members])))
            accuracy.append(float(np.mean(correct[members])))
            counts.append(int(members.sum()))
    fig = Figure(figsize=(4.2, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0.5, 1.0], [0.5, 1.0], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(centres, accuracy, marker="o", label="model")
    for x, y, n in zip(centres, accuracy, counts):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability, test split (labels: pictures per bin)")
    ax.legend(loc="upper left")
    fig.savefig(path, dpi=100)
