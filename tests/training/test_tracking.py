"""training/tracking.py: where a store's artifacts go."""

from __future__ import annotations

from pathlib import Path

from training.tracking import DEFAULT_TRACKING_URI, artifact_root, start_run


def test_another_sqlite_store_keeps_its_artifacts_beside_it_and_the_default_keeps_mlflows(tmp_path):
    assert artifact_root(f"sqlite:///{tmp_path / 'runs.db'}") == (tmp_path / "mlruns").as_uri()
    assert artifact_root(DEFAULT_TRACKING_URI) is None  # MLflow's ./mlruns, as the README says
    assert artifact_root("http://127.0.0.1:5000") is None  # a server decides for itself


def test_a_run_in_a_store_elsewhere_writes_nothing_into_the_working_directory(tmp_path, monkeypatch):
    cwd, store = tmp_path / "project", tmp_path / "store"
    cwd.mkdir()
    store.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    with start_run() as run:
        import mlflow

        mlflow.log_text("hello", "note.txt")
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(store / "mlruns")
    assert (Path(run.info.artifact_uri.removeprefix("file://")) / "note.txt").read_text() == "hello"
    assert list(cwd.iterdir()) == []
