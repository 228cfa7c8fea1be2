"""PNG figures for MLflow and DVC: a confusion matrix and the loss/accuracy curves.

Uses matplotlib's object API with the Agg canvas, so nothing changes global matplotlib state and no
display is needed.
"""

from __future__ import annotations

from pathlib import Path

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
