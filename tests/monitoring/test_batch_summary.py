"""Batch summary arithmetic on hand-made results."""

from __future__ import annotations

import pytest

from monitoring.summary import Result, percentiles, summarize


def ok(true: str, predicted: str, latency: float = 10.0, version: str = "1.0") -> Result:
    p_dog = 0.9 if predicted == "dog" else 0.1
    return Result("f", true, predicted, {"cat": 1 - p_dog, "dog": p_dog}, latency, version, 200, None)


def test_metrics_per_class_and_confusion():
    results = [ok("cat", "cat"), ok("cat", "cat"), ok("cat", "dog"), ok("dog", "dog"), ok("dog", "cat", 30.0)]
    results.append(Result("g", "dog", None, None, 5.0, None, 503, "http 503: busy"))
    results.append(Result("h", "cat", None, None, 10000.0, None, None, "timeout: no answer within 10 s"))
    summary = summarize(results)
    assert summary["items"] == 7 and summary["succeeded"] == 5 and summary["errors"] == 2
    assert summary["errors_by_kind"] == {"http_503": 1, "timeout": 1}
    assert summary["confusion_matrix"]["rows_true_columns_predicted"] == [[2, 1, 0, 0], [1, 1, 0, 0]]
    assert summary["confusion_matrix"]["columns"] == ["cat", "dog", "unsure", "neither"]
    assert summary["accuracy"] == pytest.approx(3 / 5)
    assert summary["per_class"]["cat"] == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "support": 3,
    }
    assert summary["per_class"]["dog"]["precision"] == pytest.approx(1 / 2)
    assert summary["model_versions"] == {"1.0": 5}
    # Latency covers every answered request (the 503 too), not the timeout that never got one.
    assert summary["latency_ms"]["p50"] == pytest.approx(10.0)
    assert summary["latency_ms"]["p99"] < 10000


def test_bad_200_answer_is_its_own_kind():
    bad = Result("f", "cat", None, None, 1.0, None, 200, "bad_response: label 'cow'")
    assert summarize([bad])["errors_by_kind"] == {"bad_response": 1}


def test_all_failed_has_no_accuracy():
    summary = summarize([Result("f", "cat", None, None, 1.0, None, None, "connection_error: refused")])
    assert summary["accuracy"] is None and summary["per_class"]["cat"]["recall"] is None


def test_percentiles():
    values = list(range(1, 101))
    assert percentiles(values) == {"p50": 50.5, "p95": pytest.approx(95.05), "p99": pytest.approx(99.01)}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}


def test_unsure_and_neither_are_counted_and_are_not_right():
    results = [ok("cat", "cat"), ok("dog", "dog"), ok("cat", "unsure"), ok("dog", "neither")]
    summary = summarize(results)
    assert summary["verdicts"] == {"cat": 1, "dog": 1, "unsure": 1, "neither": 1}
    assert summary["accuracy"] == 0.5  # of the photos: the abstentions are not right answers
    assert summary["answered_accuracy"] == 1.0  # of the cat/dog answers
    assert summary["confusion_matrix"]["rows_true_columns_predicted"] == [[1, 0, 1, 0], [0, 1, 0, 1]]
    assert summary["per_class"]["dog"]["recall"] == 0.5
