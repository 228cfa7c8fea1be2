"""Accuracy, precision, recall, F1 and the confusion matrix on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import classification_metrics, confusion_matrix


def test_confusion_matrix_rows_are_actual_columns_predicted():
    assert confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])) == [[1, 1], [1, 2]]


def test_metrics_of_a_known_case():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    predicted = np.array([0, 0, 0, 1, 1, 1, 0, 0])  # cat: 3/4 right; dog: 2/4 right
    m = classification_metrics(labels, predicted)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["per_class"]["cat"]["precision"] == pytest.approx(3 / 5)
    assert m["per_class"]["cat"]["recall"] == pytest.approx(3 / 4)
    assert m["per_class"]["dog"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["dog"]["recall"] == pytest.approx(2 / 4)
    cat_f1 = 2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4)
    dog_f1 = 2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2)
    assert m["macro"]["f1"] == pytest.approx((cat_f1 + dog_f1) / 2)
    assert m["confusion_matrix"] == [[3, 1], [2, 2]]


def test_a_class_never_predicted_has_zero_precision_not_a_crash():
    m = classification_metrics(np.array([0, 1]), np.array([0, 0]))
    assert m["per_class"]["dog"]["precision"] == 0.0
    assert m["per_class"]["dog"]["f1"] == 0.0
