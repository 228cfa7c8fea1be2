"""`make release` (serving/release.py): the gates that refuse a model, and the bundle it writes.

A small but real setup in a temp dir: a git repository, a seeded CatsDogsNet packaged by
serving/package.py (as `make package` does), metrics, a confusion-matrix PNG drawn by training's own
figure code and a prepare report, so the release reads exactly what the pipeline writes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from serving.release import Inputs, ReleaseError, build_args, build_release, main, verify

REPO_ROOT = Path(__file__).resolve().parents[2]

METRICS = {
    "accuracy": 0.97,
    "precision": 0.9702,
    "recall": 0.97,
    "f1": 0.97,
    "n": 200,
    "ece": 0.021,
    "per_class": {
        "cat": {"precision": 0.96, "recall": 0.98, "f1": 0.97, "support": 100},
        "dog": {"precision": 0.98, "recall": 0.96, "f1": 0.97, "support": 100},
    },
}
REPORT = {
    "source": "data/source",
    "synthetic": False,
    "counts": {
        "found": 2000,
        "kept": 1990,
        "skipped": 4,
        "duplicates": 6,
        "splits": {
            "train": {"cat": 796, "dog": 796, "total": 1592},
            "val": {"cat": 99, "dog": 100, "total": 199},
            "test": {"cat": 100, "dog": 99, "total": 199},
        },
    },
}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    """models/ with a model folder and catsdogs.mar (version 1.0), as `make package` leaves it."""
    from serving.package import build_archive
    from serving.samples import write_fresh_model

    models = write_fresh_model(tmp_path_factory.mktemp("models"))
    build_archive(models, "1.0", models / "catsdogs.mar")
    return models


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def workspace(tmp_path, packaged) -> Inputs:
    """A committed project with a packaged, evaluated model trained on real photos, passing the gate."""
    from training.figures import save_confusion_matrix

    repo = tmp_path / "repo"
    repo.mkdir()
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["release"] = {"min_accuracy": 0.95, "min_class_recall": 0.93}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / "dvc.yaml").write_text("stages: {}\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "initial")
    shutil.copytree(packaged, repo / "models")
    (repo / "metrics.json").write_text(json.dumps(METRICS))
    (repo / "plots").mkdir()
    save_confusion_matrix([[98, 2], [4, 95]], repo / "plots" / "confusion_matrix.png", "test split")
    (repo / "data" / "prepared").mkdir(parents=True)
    (repo / "data" / "prepared" / "report.json").write_text(json.dumps(REPORT))
    return Inputs(
        params=repo / "params.yaml",
        model_dir=repo / "models",
        mar=repo / "models" / "catsdogs.mar",
        metrics=repo / "metrics.json",
        plots_dir=repo / "plots",
        data_report=repo / "data" / "prepared" / "report.json",
        dvc_lock=repo / "dvc.lock",
        repo=repo,
    )


def test_a_release_bundle_holds_the_model_card_metrics_plots_source_and_checksums(workspace, tmp_path):
    folder = build_release(workspace, tmp_path / "dist")
    assert folder == tmp_path / "dist" / "catsdogs-1.0"
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert names == {
        "catsdogs-1.0.mar",
        "MODEL_CARD.md",
        "metrics.json",
        "release.json",
        "data_report.json",
        "plots/confusion_matrix.png",
        "source.tar.gz",
        "SHA256SUMS",
    }
    # The shipped archive is the packaged one, byte for byte.
    assert (folder / "catsdogs-1.0.mar").read_bytes() == workspace.mar.read_bytes()
    # sha256sum itself accepts the checksums file (what a downloader runs).
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0 and check.stdout.count(": OK") == len(names) - 1, check.stdout + check.stderr
    record = verify(folder)
    commit = git(workspace.repo, "rev-parse", "HEAD").strip()
    assert record["version"] == "1.0" and record["git_commit"] == commit and record["synthetic"] is False
    assert record["archive_sha256"] == hashlib.sha256(workspace.mar.read_bytes()).hexdigest()
    assert build_args(record)[:3] == [
        "MODEL_VERSION=1.0",
        f"DATA_VERSION={record['data_version']}",
        "TEST_ACCURACY=0.9700",
    ]
    with tarfile.open(folder / "source.tar.gz") as source:
        assert {"catsdogs-src/params.yaml", "catsdogs-src/dvc.yaml"} <= set(source.getnames())
    card = (folder / "MODEL_CARD.md").read_text()
    for fact in (
        "catsdogs 1.0",
        commit,
        "| accuracy | 0.9700 |",
        "| cat | 0.9600 | 0.9800 |",
        "| ece | 0.0210 |",
        "| recipe.epochs |",
        "data/source",
        "confusion_matrix.png",
        "every class's recall >= 0.93",
    ):
        assert fact in card, fact
    with zipfile.ZipFile(tmp_path / "dist" / "catsdogs-1.0.zip") as bundle:
        assert {n for n in bundle.namelist() if not n.endswith("/")} == {f"catsdogs-1.0/{n}" for n in names}


def test_uncommitted_changes_ship_as_a_patch_and_mark_the_commit_dirty(workspace, tmp_path):
    """`make train DATA=...` edits params.yaml; the bundle must carry exactly what was used."""
    workspace.params.write_text(
        workspace.params.read_text().replace("raw_dir: data/synthetic", "raw_dir: data/source")
    )
    folder = build_release(workspace, tmp_path / "dist")
    assert verify(folder)["git_commit"].endswith("-dirty")
    assert "+  raw_dir: data/source" in (folder / "source.patch").read_text()


def test_a_tampered_bundle_fails_verification(workspace, tmp_path):
    folder = build_release(workspace, tmp_path / "dist")
    (folder / "metrics.json").write_text(json.dumps({**METRICS, "accuracy": 0.99}))
    with pytest.raises(ReleaseError, match="metrics.json does not match its SHA-256"):
        verify(folder)
    (folder / "extra.txt").write_text("smuggled")
    with pytest.raises(ReleaseError, match="files differ from SHA256SUMS"):
        verify(folder)


def refused(workspace: Inputs, out: Path, match: str) -> None:
    with pytest.raises(ReleaseError, match=match):
        build_release(workspace, out)
    assert not out.exists() or not any(out.iterdir()), "a refused release must write nothing"


def test_a_model_trained_on_synthetic_data_is_refused(workspace, tmp_path):
    workspace.data_report.write_text(json.dumps({**REPORT, "synthetic": True, "source": "data/synthetic"}))
    refused(
        workspace,
        tmp_path / "dist",
        r"refusing to release: .*report.json says the data was SYNTHETIC "
        r"\(source data/synthetic\).*real photos",
    )
    workspace.data_report.write_text(json.dumps({"source": "somewhere"}))  # an old report that cannot tell
    refused(workspace, tmp_path / "dist", "does not say the data was real")
    workspace.data_report.unlink()
    refused(
        workspace,
        tmp_path / "dist",
        "report.json not found: cannot tell the model was trained on real photos",
    )


@pytest.mark.parametrize(
    "metrics, match",
    [
        (
            {**METRICS, "accuracy": 0.94},
            r"test accuracy 0.9400 is below the gate release.min_accuracy 0.9500",
        ),
        (
            {**METRICS, "per_class": {**METRICS["per_class"], "dog": {"recall": 0.90}}},
            r"dog recall 0.9 is below the gate release.min_class_recall 0.9300",
        ),
        ({k: v for k, v in METRICS.items() if k != "per_class"}, "no per_class recall"),
        ({"precision": 0.99}, "no test `accuracy`"),
    ],
)
def test_a_model_below_the_quality_gate_is_refused(workspace, tmp_path, metrics, match):
    workspace.metrics.write_text(json.dumps(metrics))
    refused(workspace, tmp_path / "dist", match)


def test_missing_or_mismatched_inputs_are_refused(workspace, tmp_path, packaged):
    out = tmp_path / "dist"
    params = yaml.safe_load(workspace.params.read_text())
    workspace.params.write_text(yaml.safe_dump({**params, "release": {"min_acuracy": 0.9}}))
    refused(workspace, out, r"unknown keys in params.yaml `release:` \['min_acuracy'\]")
    workspace.params.write_text(yaml.safe_dump({**params, "package": {"version": "2.0"}}))
    refused(workspace, out, "holds catsdogs 1.0, but params.yaml package.version is 2.0")
    workspace.params.write_text(yaml.safe_dump(params))
    # Weights retrained after packaging: the archive no longer holds models/model.pt.
    from serving.samples import write_fresh_model

    write_fresh_model(workspace.model_dir, seed=1)
    refused(workspace, out, "does not hold .*model.pt: run make package")
    shutil.copy(packaged / "model.pt", workspace.model_dir / "model.pt")
    # dvc.lock says the metrics were computed for other weights.
    lock = {
        "schema": "2.0",
        "stages": {"evaluate": {"deps": [{"path": "models/model.pt", "md5": "0" * 32}], "outs": []}},
    }
    workspace.dvc_lock.write_text(yaml.safe_dump(lock))
    refused(workspace, out, "not what dvc.lock's evaluate stage recorded")
    workspace.dvc_lock.unlink()
    (workspace.plots_dir / "confusion_matrix.png").unlink()
    refused(workspace, out, "confusion_matrix.png not found")
    workspace.mar.unlink()
    refused(workspace, out, "catsdogs.mar does not exist: package the model first")
    workspace.metrics.unlink()
    refused(workspace, out, "metrics.json not found: evaluate the model first")


def test_the_command_line_refuses_with_a_sentence_and_status_1(workspace, tmp_path, capsys):
    workspace.data_report.write_text(json.dumps({**REPORT, "synthetic": True}))
    flags = [
        f"--{f.name.replace('_', '-')}={getattr(workspace, f.name)}" for f in dataclasses.fields(workspace)
    ]
    assert main(["build", *flags, f"--out-dir={tmp_path / 'dist'}"]) == 1
    assert capsys.readouterr().err.startswith("release: refusing to release: ")
    workspace.data_report.write_text(json.dumps(REPORT))
    assert main(["build", *flags, f"--out-dir={tmp_path / 'dist'}"]) == 0
    assert "released catsdogs 1.0 (test accuracy 0.9700" in capsys.readouterr().out
    result = subprocess.run(
        [sys.executable, "-m", "serving.release", "build-args", str(tmp_path / "dist" / "catsdogs-1.0")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("MODEL_VERSION=1.0\nDATA_VERSION=")


@pytest.mark.slow
def test_the_model_card_reads_the_training_run_from_mlflow(workspace, tmp_path, monkeypatch):
    """A real MLflow store: arch, params, data version and training commit come from the run."""
    import mlflow

    from training import tracking

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("catsdogs")
    with mlflow.start_run(tags={"data_version": "abcd1234abcd1234", "git_commit": "feedbeef"}) as run:
        mlflow.log_params({"arch": "efficientnet_lite0", "epochs": 4, "lr": 0.0003})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracking.write_run_info(workspace.model_dir, run.info.run_id, run.info.experiment_id)
    folder = build_release(workspace, tmp_path / "dist")
    card = (folder / "MODEL_CARD.md").read_text()
    assert verify(folder)["data_version"] == "abcd1234abcd1234"
    for fact in (
        "| architecture | efficientnet_lite0 |",
        "| training commit | feedbeef |",
        f"MLflow run {run.info.run_id}",
        "| lr | 0.0003 |",
    ):
        assert fact in card, fact
