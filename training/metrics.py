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
from training.model import logits_and_pet


@torch.inference_mode()
def predict(model: nn.Module, images: np.ndarray, batch_size: int, bf16: bool) -> tuple[torch.Tensor, np.ndarray]:
    """float32 N x 2 logits and N pet probabilities of stored uint8 N x H x W x 3 pictures (eval mode)."""
    model.eval()
    logits, pets = [torch.empty(0, len(CLASS_NAMES))], [torch.empty(0)]
    for batch in eval_batches(images, batch_size):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            batch_logits, pet = logits_and_pet(model, batch)
        logits.append(batch_logits.float())
        pets.append(pet.float())
    return torch.cat(logits), torch.cat(pets).numpy()


def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int, bf16: bool) -> torch.Tensor:
    """float32 N x 2 logits of stored uint8 N x H x W x 3 pictures (model switched to eval mode)."""
    return predict(model, images, batch_size, bf16)[0]


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


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE: the mean |accuracy - confidence| over equal-width confidence bins, weighted by their size."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)
