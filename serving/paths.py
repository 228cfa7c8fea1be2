"""Where this checkout keeps the pipeline's outputs and the local runs, for the tools that read them.

dvc.yaml decides where each stage writes (its commands take the paths as arguments); the tools
outside the pipeline (`make serve`, `make collect`, `make drift`, versions) default to the same
places through the names here, and tests/serving/test_configs.py checks each against dvc.yaml.
Relative to the repository root, where the Makefile runs everything.
"""

from __future__ import annotations

from pathlib import Path

MODEL_STORE = Path("models")  # the train stage's --out-dir and the package stage's archive folder
MLFLOW_RUN_FILE = MODEL_STORE / "mlflow_run.json"  # train: which MLflow run made the weights
TEST_SPLIT = Path("data/prepared/test.npz")  # prepare: the split evaluate scores
REFERENCE_PREDICTIONS = Path("plots/reference_predictions.json")  # evaluate: the monitoring baseline
SERVER_RUN_DIR = Path("run/torchserve")  # `make serve`: config, logs and pid of the local server
MONITORING_DIR = Path("run/monitoring")  # `make collect` / `make drift` write here (run/ is git-ignored)
