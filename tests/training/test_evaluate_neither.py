"""evaluate on held-out non-pet photos (data/prepared/neither_test.npz): the shares answered neither,
unsure and cat/dog with the model's own thresholds, the pet-probability plot, MLflow; and nothing of
it when the data has no non-pets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from handler.verdict import Thresholds
from training import evaluate, train
from training import model as model_folder
from training.model import Calibration
from training.prepare import write_split

NONPET_KEYS = {"nonpets_n", "nonpets_neither", "nonpets_unsure", "nonpets_cat_or_dog"}


def write_nonpets(data_dir: Path, split: str, n: int, seed: int = 11) -> None:
    """neither_<split>.npz as prepare writes it (no labels): flat grey pictures with noise."""
    rng = np.random.default_rng(seed)
    images = (rng.integers(100, 140, size=(n, 224, 224, 3))).astype(np.uint8)
    write_split(
        data_dir / f"neither_{split}.npz", images, list(range(n)), None, [f"rock/{i}.jpg" for i in range(n)]
    )


@pytest.fixture
def data_with_nonpets(tiny_data: Path, tmp_path: Path) -> Path:
    data = tmp_path / "prepared"
    shutil.copytree(tiny_data, data)
    write_nonpets(data, "test", 6)
    return data


def saved_model(model_dir: Path, arch: str, thresholds: Thresholds) -> Path:
    torch.manual_seed(0)
    model_folder.save(model_dir, model_folder.build(arch), Calibration(1.0, thresholds))
    return model_dir


def run_evaluate(data: Path, models: Path, root: Path) -> tuple[int, dict]:
    (root / "params.yaml").write_text("evaluate:\n  batch_size: 16\n")
    code = evaluate.main(
        [
            "--data-dir",
            str(data),
            "--model-dir",
            str(models),
            "--metrics",
            str(root / "metrics.json"),
            "--plots-dir",
            str(root / "plots"),
            "--params",
            str(root / "params.yaml"),
        ]
    )
    return code, json.loads((root / "metrics.json").read_text()) if code == 0 else {}


@pytest.mark.parametrize(
    ("arch", "thresholds", "expected"),
    [
        # No thresholds: every picture gets cat or dog, non-pets included.
        ("catsdogsnet", Thresholds(0.0, 0.0), {"nonpets_cat_or_dog": 1.0, "nonpets_unsure": 0.0}),
        # Confidence is never 1.0 for a fresh net: all unsure.
        ("catsdogsnet", Thresholds(1.0, 0.0), {"nonpets_unsure": 1.0, "nonpets_cat_or_dog": 0.0}),
        # A pet probability under 1 everywhere (the ImageNet head's cat+dog mass): all neither.
        ("efficientnet_lite0", Thresholds(0.0, 1.0), {"nonpets_neither": 1.0, "nonpets_unsure": 0.0}),
    ],
)
def test_non_pets_are_answered_with_the_models_thresholds(
    data_with_nonpets, tmp_path, arch, thresholds, expected
):
    models = saved_model(tmp_path / "models", arch, thresholds)
    code, scores = run_evaluate(data_with_nonpets, models, tmp_path)
    assert code == 0
    assert NONPET_KEYS <= set(scores) and scores["nonpets_n"] == 6
    assert {k: scores[k] for k in expected} == expected
    shares = scores["nonpets_neither"] + scores["nonpets_unsure"] + scores["nonpets_cat_or_dog"]
    assert shares == pytest.approx(1.0)
    assert (tmp_path / "plots" / "neither_scores.png").stat().st_size > 5000
    assert scores["n"] == 16  # the pet metrics are still about the 16 test pets only


def test_without_non_pets_the_metrics_are_the_pets_only_and_the_plot_says_so(tiny_data, tmp_path, caplog):
    models = saved_model(tmp_path / "models", "catsdogsnet", Thresholds())
    with caplog.at_level("INFO", logger="training.evaluate"):
        code, scores = run_evaluate(tiny_data, models, tmp_path)
    assert code == 0 and not NONPET_KEYS & set(scores)
    assert "no held-out non-pet photos (neither_test.npz)" in caplog.text
    assert (tmp_path / "plots" / "neither_scores.png").exists()  # dvc.yaml declares it: always written


@pytest.mark.slow
def test_training_ignores_non_pet_files_and_evaluate_logs_their_metrics_to_mlflow(
    data_with_nonpets, tmp_path
):
    """A tiny real run of the from-scratch net with neither_{train,val,test}.npz beside the splits."""
    from mlflow.tracking import MlflowClient

    write_nonpets(data_with_nonpets, "train", 8, seed=12)
    write_nonpets(data_with_nonpets, "val", 4, seed=13)
    params = tmp_path / "train.yaml"
    params.write_text(
        "train:\n  arch: catsdogsnet\n  batch_size: 16\n  num_workers: 0\n  eval_batch_size: 16\n"
        "  catsdogsnet: {epochs: 2, lr: 0.003, crop_size: 160}\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        assert (
            train.main(
                [
                    "--data-dir",
                    str(data_with_nonpets),
                    "--out-dir",
                    str(tmp_path / "models"),
                    "--params",
                    str(params),
                ]
            )
            == 0
        )
    code, scores = run_evaluate(data_with_nonpets, tmp_path / "models", tmp_path)
    assert code == 0 and scores["nonpets_n"] == 6 and scores["n"] == 16
    run_id = json.loads((tmp_path / "models" / "mlflow_run.json").read_text())["run_id"]
    logged = MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics
    for key in ("nonpets_neither", "nonpets_unsure", "nonpets_cat_or_dog"):
        assert logged[f"test_{key}"] == pytest.approx(scores[key])
