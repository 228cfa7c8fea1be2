"""Per-item results -> the batch summary: accuracy, per-class precision/recall, the answers' mix
(cat, dog, unsure, neither), confusion, latency, errors.

Accuracy counts an "unsure" or "neither" answer for a cat or dog photo as not right: it is the share
of photos the service answered correctly. `answered_accuracy` is the share right among the cat/dog
answers, and `verdicts` how often each answer came back: together they say whether the model is
wrong or only more cautious than before."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from handler.verdict import CLASS_NAMES, VERDICTS


@dataclass
class Result:
    """What happened to one item; `error` is None exactly when a prediction came back."""

    file: str
    true_label: str
    predicted_label: str | None
    probabilities: dict[str, float] | None
    latency_ms: float
    model_version: str | None
    status: int | None  # HTTP status; None when no response arrived (timeout, refused connection)
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return asdict(self)


def percentiles(values: Sequence[float], qs: Iterable[int] = (50, 95, 99)) -> dict[str, float | None]:
    """{"p50": ..., ...} in the values' unit; None for an empty sequence."""
    if not values:
        return {f"p{q}": None for q in qs}
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in qs}


def summarize(results: Sequence[Result]) -> dict:
    """Classification metrics over the items that got a prediction; latency over all answered requests."""
    ok = [r for r in results if r.ok]
    rows, columns = {name: i for i, name in enumerate(CLASS_NAMES)}, {name: i for i, name in enumerate(VERDICTS)}
    confusion = np.zeros((len(CLASS_NAMES), len(VERDICTS)), dtype=int)  # rows: true, columns: the answer
    for r in ok:
        confusion[rows[r.true_label], columns[r.predicted_label]] += 1
    answered = confusion[:, : len(CLASS_NAMES)]
    per_class = {}
    for i, name in enumerate(CLASS_NAMES):
        predicted, actual, hit = confusion[:, i].sum(), confusion[i, :].sum(), confusion[i, i]
        per_class[name] = {
            "precision": _ratio(hit, predicted),
            "recall": _ratio(hit, actual),
            "support": int(actual),
        }
    latencies = [r.latency_ms for r in results if r.status is not None]
    return {
        "items": len(results),
        "succeeded": len(ok),
        "errors": len(results) - len(ok),
        "errors_by_kind": dict(Counter(_error_kind(r) for r in results if not r.ok)),
        "accuracy": _ratio(np.trace(answered), len(ok)),
        "answered_accuracy": _ratio(np.trace(answered), answered.sum()),
        "verdicts": {name: int(confusion[:, j].sum()) for j, name in enumerate(VERDICTS)},
        "per_class": per_class,
        "confusion_matrix": {"labels": list(CLASS_NAMES), "columns": list(VERDICTS),
                             "rows_true_columns_predicted": confusion.tolist()},
        "latency_ms": percentiles(latencies),
        "model_versions": dict(Counter(r.model_version for r in ok)),
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(float(numerator) / float(denominator), 6) if denominator else None


def _error_kind(result: Result) -> str:
    if result.status is None:  # the error text starts with its kind, e.g. "timeout: ..."
        return result.error.split(":", 1)[0]
    return "bad_response" if result.status == 200 else f"http_{result.status}"
