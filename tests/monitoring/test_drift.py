"""Drift report on synthetic outputs: the same distribution is not flagged, a shifted one is."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitoring import drift


def outputs(n: int, dog_share: float, concentration: float, seed: int) -> list[dict]:
    """Items shaped like the evaluate stage's reference; confidence ~ 0.5 + 0.5 * Beta(concentration, 1)."""
    rng = np.random.default_rng(seed)
    is_dog = rng.random(n) < dog_share
    confidence = 0.5 + 0.5 * rng.beta(concentration, 1.0, n)
    return [
        {"file": f"{i}.jpg", "label": "dog" if d else "cat", "prob_dog": float(c if d else 1 - c)}
        for i, (d, c) in enumerate(zip(is_dog, confidence))
    ]


def report_for(live: list[dict], reference: list[dict], tmp_path, alpha: float = 0.01) -> dict:
    (tmp_path / "live.json").write_text(json.dumps({"items": live}))
    (tmp_path / "ref.json").write_text(json.dumps(reference))
    return drift.run(tmp_path / "live.json", tmp_path / "ref.json", tmp_path / "report.json", alpha, None)


REFERENCE = outputs(600, 0.5, 4.0, seed=1)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_same_distribution_is_not_flagged(tmp_path, seed):
    report = report_for(outputs(300, 0.5, 4.0, seed), REFERENCE, tmp_path)
    assert report["drift"] is False
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_label_mix_shift_is_flagged_by_the_chi_square_test(tmp_path):
    report = report_for(outputs(300, 0.75, 4.0, seed=5), REFERENCE, tmp_path)
    assert report["drift"] is True
    assert report["tests"]["label_mix"]["drift"] is True
    assert report["tests"]["confidence"]["drift"] is False  # confidences were drawn alike
    assert report["tests"]["label_mix"]["live"]["shares"]["dog"] > 0.7


def test_confidence_shift_is_flagged_by_the_ks_test(tmp_path):
    report = report_for(outputs(300, 0.5, 1.5, seed=6), REFERENCE, tmp_path)
    assert report["tests"]["confidence"]["drift"] is True
    assert report["tests"]["label_mix"]["drift"] is False
    assert report["tests"]["confidence"]["live_mean"] < report["tests"]["confidence"]["reference_mean"]


def test_threshold_is_configurable(tmp_path):
    mild = outputs(300, 0.58, 4.0, seed=8)
    strict = report_for(mild, REFERENCE, tmp_path, alpha=0.001)
    p = strict["tests"]["label_mix"]["p_value"]
    assert 0.001 < p < 0.5, "fixture no longer mild; pick another seed"
    assert strict["drift"] is False
    assert (
        report_for(mild, REFERENCE, tmp_path, alpha=min(0.99, p * 2))["tests"]["label_mix"]["drift"] is True
    )


def test_live_batch_format_and_failed_items(tmp_path):
    live = [
        {"file": "a.png", "predicted_label": "dog", "probabilities": {"cat": 0.1, "dog": 0.9}, "error": None},
        {"file": "b.png", "predicted_label": None, "probabilities": None, "error": "timeout: no answer"},
        {"file": "c.png", "predicted_label": "cat", "probabilities": {"cat": 0.8, "dog": 0.2}, "error": None},
    ]
    path = tmp_path / "live.json"
    path.write_text(json.dumps({"items": live}))
    labels, confidences = drift.load_outputs(path)
    assert labels == ["dog", "cat"]
    assert confidences == pytest.approx([0.9, 0.8])


def test_few_items_are_noted(tmp_path):
    report = report_for(outputs(10, 0.5, 4.0, seed=9), REFERENCE, tmp_path)
    assert report["notes"] and "10 live items" in report["notes"][0]


def test_cli_writes_report_and_plot_and_exit_codes(tmp_path, capsys):
    (tmp_path / "live.json").write_text(json.dumps(outputs(300, 0.8, 4.0, seed=10)))
    (tmp_path / "ref.json").write_text(json.dumps(REFERENCE))
    args = [
        "--live",
        str(tmp_path / "live.json"),
        "--reference",
        str(tmp_path / "ref.json"),
        "--out",
        str(tmp_path / "out" / "drift_report.json"),
        "--plot",
        str(tmp_path / "out" / "drift.png"),
    ]
    assert drift.main(args) == 0
    assert "DRIFT" in capsys.readouterr().out
    assert (tmp_path / "out" / "drift.png").read_bytes()[:4] == b"\x89PNG"
    assert drift.main(args + ["--fail-on-drift"]) == 1
    (tmp_path / "ref.json").write_text(json.dumps([{"file": "x"}]))
    assert drift.main(args) == 2
    assert "prob_dog" in capsys.readouterr().err


def test_reads_the_evaluate_stages_reference(tmp_path):
    # The contract with training: whatever training.evaluate writes as the reference, drift reads.
    from training.evaluate import reference

    prob_dog = np.array([0.9, 0.2, 0.6, 0.45])
    ref = reference(np.array(["a", "b", "c", "d"]), np.array([1, 0, 0, 1]), prob_dog)
    path = tmp_path / "reference_predictions.json"
    path.write_text(json.dumps(ref))
    labels, confidences = drift.load_outputs(path)
    assert labels == ["dog", "cat", "dog", "cat"]
    assert confidences == pytest.approx([0.9, 0.8, 0.6, 0.55])


def test_a_jump_in_neither_answers_is_drift_of_the_label_mix(tmp_path):
    """Same cat/dog split and confidences, but a tenth of the traffic now answered "neither"."""
    live = outputs(300, 0.5, 4.0, seed=6)
    for item in live[::10]:
        item["predicted"] = "neither"
    report = report_for(live, REFERENCE, tmp_path)
    assert report["tests"]["label_mix"]["drift"] is True
    assert report["tests"]["label_mix"]["live"]["shares"]["neither"] == pytest.approx(0.1)
