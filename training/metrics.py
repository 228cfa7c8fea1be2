"""Scoring a model on stored pictures: logits, loss, confusion matrix, accuracy, precision, recall, F1.

Shared by training (validation each epoch) and the evaluate stage (test split), so both report the
same numbers the same way. Rows of a confusion matrix are actual classes, columns predicted ones.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from handler.preprocess import CLASS_NAMES
from training.augment import eval_batches


@torch.inference_mode()
def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int, bf16: bool) -> torch.Tensor:
    """float32 N x 2 logits of stored uint8 N x H x W x 3 pictures (model switched to eval mode)."""
    model.eval()
    outputs = []
    for batch in eval_batches(images, batch_size):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outputs.append(model(batch).float())
    if not outputs:
        return torch.empty(0, len(CLASS_NAMES))
    return torch.cat(outputs)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n: int = len(CLASS_NAMES)) -> list[list[int]]:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix.tolist()


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def classification_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict:
    """accuracy, per-class and macro precision/recall/F1, support and the confusion matrix."""
    matrix = np.array(confusion_matrix(labels, predicted))
    per_class = {}
    for i, name in enumerate(CLASS_NAMES):
        tp = matrix[i, i]
        precision = _ratio(tp, matrix[:, i].sum())
        recall = _ratio(tp, matrix[i, :].sum())
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(matrix[i].sum())}
    macro = {k: float(np.mean([c[k] for c in per_class.values()])) for k in ("precision", "recall", "f1")}
    return {
        "accuracy": _ratio(np.trace(matrix), matrix.sum()),
        "macro": macro,
        "per_class": per_class,
        "n": int(matrix.sum()),
        "confusion_matrix": matrix.tolist(),
    }


def loss_and_accuracy(logits: torch.Tensor, labels: np.ndarray) -> tuple[float, float]:
    """Plain cross-entropy (no label smoothing, so epochs and runs compare) and accuracy."""
    target = torch.as_tensor(labels, dtype=torch.int64)
    loss = nn.functional.cross_entropy(logits, target).item()
    accuracy = (logits.argmax(1) == target).float().mean().item()
    return loss, accuracy
