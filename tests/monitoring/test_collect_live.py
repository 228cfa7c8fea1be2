"""The collector against a real TorchServe: every protocol, the drift report and the MLflow run.

The reference is computed in-process from the served 1.0 weights, the way the evaluate stage does, so
the live batch must agree with it item for item (PNG is lossless) and no drift may be flagged.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from handler.inference import Classifier, ModelSpec
from scripts.collect_predictions import main
from serving.package import stage_model
from serving.samples import store_weights

pytestmark = pytest.mark.slow

N = 12


@pytest.fixture(scope="module")
def split(tmp_path_factory, monitoring_store):
    """A small labelled split of noise images, and the evaluate-style reference of the 1.0 model on it."""
    folder = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (N, 224, 224, 3), dtype=np.uint8)
    labels = np.arange(N) % 2
    files = np.array([f"img/{i}.jpg" for i in range(N)])
    np.savez(folder / "test.npz", images=images, labels=labels, files=files)
    unpacked = tmp_path_factory.mktemp("unpacked")
    stage_model(store_weights(monitoring_store, "1.0"), "onnxruntime", unpacked)
    model = Classifier.load(unpacked, ModelSpec(), "1.0")
    items = [
        {"file": f, "label": ("cat", "dog")[y], "prob_dog": p.probabilities["dog"]}
        for f, y, p in zip(files, labels, model.predict(images))
    ]
    (folder / "reference.json").write_text(json.dumps({"items": items}))
    return folder


@pytest.mark.parametrize("protocol", ["native", "v1", "v2"])
def test_batch_matches_in_process_evaluation(server, split, tmp_path, protocol):
    out = tmp_path / "out"
    code = main(
        [
            server.inference_url,
            "--protocol",
            protocol,
            "--source",
            str(split / "test.npz"),
            "--reference",
            str(split / "reference.json"),
            "--out-dir",
            str(out),
            "--no-progress",
            "--concurrency",
            "3",
        ]
    )
    assert code == 0
    batch = json.loads((out / "predictions_batch.json").read_text())
    reference = json.loads((split / "reference.json").read_text())["items"]
    assert len(batch["items"]) == N
    for live, ref in zip(batch["items"], reference):
        assert (live["file"], live["true_label"], live["status"], live["model_version"]) == (
            ref["file"],
            ref["label"],
            200,
            "1.0",
        )
        assert live["probabilities"]["dog"] == pytest.approx(ref["prob_dog"], abs=1e-5)
        assert live["latency_ms"] > 0 and live["error"] is None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["errors"] == 0 and summary["items"] == N and summary["latency_ms"]["p99"] > 0
    assert json.loads((out / "drift_report.json").read_text())["drift"] is False
    for png in ("confusion_matrix.png", "drift.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_server_errors_are_recorded_not_fatal(server, split, tmp_path, capsys):
    code = main(
        [
            server.inference_url,
            "--model-version",
            "9.9",
            "--source",
            str(split / "test.npz"),
            "--sample",
            "4",
            "--out-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 1  # every request failed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["errors_by_kind"] == {"http_404": 4}
    items = json.loads((tmp_path / "predictions_batch.json").read_text())["items"]
    assert all(i["status"] == 404 and "http 404" in i["error"] for i in items)


def test_min_accuracy_and_mlflow_run_linked_to_training(server, split, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from training import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with tracking.start_run() as training:  # stands for the train stage's run (artifacts beside the store)
        pass
    run_file = tmp_path / "mlflow_run.json"
    run_file.write_text(json.dumps({"run_id": training.info.run_id, "tracking_uri": uri}))

    args = [
        server.inference_url,
        "--source",
        str(split / "test.npz"),
        "--out-dir",
        str(tmp_path / "out"),
        "--no-progress",
        "--mlflow",
        "--mlflow-run-file",
        str(run_file),
    ]
    assert main(args + ["--min-accuracy", "1.01"]) == 1  # impossible threshold: exit 1, run still logged
    runs = mlflow.search_runs(experiment_names=["catsdogs-monitoring"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["training_run_id"] == training.info.run_id
    assert run.data.tags["model_version"] == "1.0"
    assert run.data.metrics["items"] == N and run.data.metrics["errors"] == 0
    assert "accuracy" in run.data.metrics and "latency_p99_ms" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"summary.json", "predictions_batch.json", "confusion_matrix.png"} <= artifacts
