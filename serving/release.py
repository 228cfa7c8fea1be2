"""A model release: the gate a trained model must pass, and the versioned bundle that ships it.

    python -m serving.release build [--params params.yaml] [--out-dir dist]   # what `make release` runs
    python -m serving.release verify dist/catsdogs-1.0                        # checksums + release.json
    python -m serving.release build-args dist/catsdogs-1.0                     # KEY=value for the image labels

`build` refuses, with a sentence and exit status 1, a model trained on synthetic data
(data/prepared/report.json says `"synthetic": true`, or there is no report to prove otherwise), a
model below the quality gate in params.yaml `release:` (test accuracy, every class's recall), an
archive whose version is not params.yaml `package.version`, an archive that does not hold
models/model.pt, and metrics that dvc.lock says belong to other weights. Otherwise it writes

    dist/catsdogs-<version>/   catsdogs-<version>.mar, MODEL_CARD.md, metrics.json, release.json,
                               plots/*.png (the confusion matrix at least), data_report.json,
                               dvc.lock (when there is one), source.tar.gz (`git archive` of HEAD),
                               source.patch (uncommitted changes to tracked files, when any),
                               SHA256SUMS (`sha256sum -c SHA256SUMS` checks every file)
    dist/catsdogs-<version>.zip   the same folder, zipped

A release is the only way a model reaches an image or a cluster (CI builds the image from the
bundle; scripts/image.sh checks its checksums), so these checks are the guard in front of both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from serving.model_card import render_model_card, training_record
from serving.release_gate import (
    Gate,
    Inputs,
    ReleaseError,
    check_archive,
    check_lineage,
    check_real_data,
    file_digest,
    read_json,
)
from serving.store import MODEL_NAME

CHECKSUMS = "SHA256SUMS"
RELEASE_JSON = "release.json"
REQUIRED_PLOT = "confusion_matrix.png"


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout


def write_source(repo: Path, out: Path) -> tuple[str, bool]:
    """source.tar.gz (`git archive HEAD`) and source.patch (tracked changes): (commit, dirty)."""
    commit = _git(repo, "rev-parse", "HEAD").strip()
    _git(
        repo,
        "archive",
        "--format=tar.gz",
        f"--prefix={MODEL_NAME}-src/",
        "-o",
        str(out / "source.tar.gz"),
        "HEAD",
    )
    # `make train DATA=...` edits params.yaml (dvc exp run -S): ship the changes with the commit.
    patch = _git(repo, "diff", "HEAD", "--binary")
    if patch:
        (out / "source.patch").write_text(patch)
    return commit, bool(patch)


def write_checksums(folder: Path) -> Path:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    lines = [f"{file_digest(p)}  {p.relative_to(folder).as_posix()}\n" for p in files]
    path = folder / CHECKSUMS
    path.write_text("".join(lines))
    return path


def verify(folder: Path) -> dict:
    """release.json of a bundle whose every file matches SHA256SUMS (and nothing unlisted); else ReleaseError."""
    sums = folder / CHECKSUMS
    if not sums.is_file():
        raise ReleaseError(f"{folder} is not a release bundle: no {CHECKSUMS}")
    listed = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {CHECKSUMS}
    if present != set(listed):
        raise ReleaseError(f"{folder}: files differ from {CHECKSUMS}: {sorted(present ^ set(listed))}")
    for name, digest in listed.items():
        if file_digest(folder / name) != digest:
            raise ReleaseError(f"{folder}/{name} does not match its SHA-256 in {CHECKSUMS}")
    return read_json(folder / RELEASE_JSON, "not a release bundle")


def build_release(inputs: Inputs, out_dir: Path, now: datetime | None = None) -> Path:
    """Check every gate, then write out_dir/catsdogs-<version>/ and its .zip; returns the folder."""
    params = yaml.safe_load(inputs.params.read_text()) or {}
    version = (params.get("package") or {}).get("version")
    if not isinstance(version, str) or not version:
        raise ReleaseError(f'{inputs.params} has no quoted package.version (e.g. version: "1.0")')
    gate = Gate.from_params(params.get("release"))
    report = read_json(inputs.data_report, "cannot tell the model was trained on real photos (make train)")
    check_real_data(report, inputs.data_report)
    metrics = read_json(inputs.metrics, "evaluate the model first (make train)")
    gate.check(metrics)
    check_archive(inputs, version)
    check_lineage(inputs)
    confusion = inputs.plots_dir / REQUIRED_PLOT
    if not confusion.is_file():
        raise ReleaseError(f"{confusion} not found: evaluate the model first (make train)")

    name = f"{MODEL_NAME}-{version}"
    folder, bundle = out_dir / name, out_dir / f"{name}.zip"
    staging = out_dir / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "plots").mkdir(parents=True)
    try:
        mar = staging / f"{name}.mar"
        shutil.copy2(inputs.mar, mar)
        shutil.copy2(inputs.metrics, staging / "metrics.json")
        shutil.copy2(inputs.data_report, staging / "data_report.json")
        for plot in sorted(inputs.plots_dir.glob("*.png")):
            shutil.copy2(plot, staging / "plots" / plot.name)
        if inputs.dvc_lock.is_file():
            shutil.copy2(inputs.dvc_lock, staging / "dvc.lock")
        commit, dirty = write_source(inputs.repo, staging)
        training = training_record(inputs.model_dir, params, inputs.data_report.parent)
        record = {
            "name": MODEL_NAME,
            "version": version,
            "created": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
            "git_commit": commit + ("-dirty" if dirty else ""),
            "data_version": training.get("data_version") or "unknown",
            "data_source": report.get("source"),
            "synthetic": False,
            "test_accuracy": metrics["accuracy"],
            "gate": dataclasses.asdict(gate),
            "archive": mar.name,
            "archive_sha256": file_digest(mar),
        }
        (staging / RELEASE_JSON).write_text(json.dumps(record, indent=2) + "\n")
        (staging / "MODEL_CARD.md").write_text(render_model_card(record, metrics, report, training))
        write_checksums(staging)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    bundle.unlink(missing_ok=True)
    shutil.make_archive(str(bundle.with_suffix("")), "zip", root_dir=out_dir, base_dir=name)
    return folder


def build_args(record: dict) -> list[str]:
    """The Dockerfile's label build arguments, from a verified bundle's release.json."""
    if record.get("synthetic") is not False:
        raise ReleaseError(
            "release.json does not say the model was trained on real photos: not an image input"
        )
    return [
        f"MODEL_VERSION={record['version']}",
        f"DATA_VERSION={record['data_version']}",
        f"TEST_ACCURACY={record['test_accuracy']:.4f}",
        f"MODEL_COMMIT={record['git_commit']}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="gate the model and write the bundle")
    for field in dataclasses.fields(Inputs):
        build.add_argument(f"--{field.name.replace('_', '-')}", type=Path, default=field.default)
    build.add_argument("--out-dir", type=Path, default=Path("dist"))
    for name in ("verify", "build-args"):
        commands.add_parser(name).add_argument("bundle", type=Path, help="dist/catsdogs-<version>")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            inputs = Inputs(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Inputs)})
            folder = build_release(inputs, args.out_dir)
            record = json.loads((folder / RELEASE_JSON).read_text())
            print(
                f"released {MODEL_NAME} {record['version']} (test accuracy {record['test_accuracy']:.4f}, "
                f"data {record['data_version']}, commit {record['git_commit'][:12]}) -> {folder}/ "
                f"and {folder}.zip"
            )
        elif args.command == "verify":
            record = verify(args.bundle)
            print(f"{args.bundle}: every file matches {CHECKSUMS}; {MODEL_NAME} {record['version']}")
        else:
            print("\n".join(build_args(verify(args.bundle))))
    except (ReleaseError, OSError, yaml.YAMLError) as e:
        print(f"release: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
