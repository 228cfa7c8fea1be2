"""Package the trained model as a versioned TorchServe archive (.mar); also the DVC `package` stage.

    python -m serving.package --model-dir models --params params.yaml --out models/catsdogs.mar
    python -m serving.package --model-dir models --version 2.0 --runtime torch --out models/catsdogs-2.0.mar

The archive holds the model exported for its runtime (serving/export.py: model.onnx for openvino and
onnxruntime, model.ts for torch; no training code, no ImageNet checkpoint), index_to_name.json,
ts_handler.py (the entry point), the whole `handler/` package and model-config.yaml: the model spec
(runtime, precision and the calibrated thresholds from the model folder's model.json), the handler
settings (params `package.handler`) and TorchServe's dynamic batching (params `package.batching`,
defaults and the one TorchServe quirk in Batching). Batching travels with the archive because it is
a property of the model's speed, measured with it (`make bench-serve`): every server that loads the
archive, local, container or KServe, batches the same way. TorchServe unpacks the
archive into one directory on sys.path, so `from handler.inference import ...` works there as in
the repo.
torch-model-archiver always writes `<model-name>.mar`, so it writes into a private temp dir and the
result is renamed to --out: several versions can sit side by side in one model store.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from handler.inference import LABELS_FILE, Classifier, ModelSpec
from handler.runtime import DEFAULT_RUNTIME, PRECISIONS, RUNTIMES
from handler.runtime import check as check_runtime
from handler.settings import Settings
from serving.export import export
from serving.store import BATCHING_KEY, MODEL_NAME, read_manifest
from training import model as model_folder

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
HANDLER_DIR = REPO_ROOT / "handler"
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")  # becomes part of TorchServe's paths
PARAM_KEYS = {"version", "runtime", "precision", "handler", "batching"}
# The runtime and precision every archive gets unless params or the command line say otherwise:
# the fastest that answers what float32 PyTorch does (README "Inference runtime", make bench-serve).
DEFAULT_PRECISION = "f32"


class PackageError(Exception):
    """A packaging input is missing or wrong; the message says which and what to do."""


@dataclasses.dataclass(frozen=True)
class Batching:
    """TorchServe's dynamic batching of this archive: a worker takes up to `size` requests at once,
    waiting at most `max_delay_ms` for more. The default delay, 0, takes only the requests already
    queued: a lone request never waits, and under load the queue already holds the batch, so one
    forward pass serves several requests (the measured best on two cores: README, benchmark).

    TorchServe 0.12 reads a maxBatchDelay of 0 in an archive as unset, i.e. 100 ms; only a model
    snapshot and the registration API pass 0 through. So the archive carries TorchServe's own keys with
    the nearest value it honours (at least 1 ms), for a server that loads it by name, and the exact
    setting under `batching` (serving/store.py archive_batching), which this project's loaders pass
    explicitly: serving/server.py and the container configs (model_snapshot), serving/versions.py."""

    size: int = 4
    max_delay_ms: int = 0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            smallest = 1 if name == "size" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
                raise PackageError(f"package.batching.{name} must be a whole number >= {smallest}, got {value!r}")

    @classmethod
    def from_params(cls, raw: Any) -> Batching:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise PackageError(
                f"package.batching must be a mapping like {{size: 4, max_delay_ms: 0}}, got {raw!r}"
            )
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise PackageError(f"unknown package.batching keys {unknown}; known: size, max_delay_ms")
        return cls(**raw)

    def describe(self) -> str:
        return "queued requests only" if self.max_delay_ms == 0 else f"waiting up to {self.max_delay_ms} ms"

    def model_config(self) -> dict[str, Any]:
        exact = {"size": self.size, "max_delay_ms": self.max_delay_ms}
        return {"batchSize": self.size, "maxBatchDelay": max(self.max_delay_ms, 1), BATCHING_KEY: exact}


def stage_model(model_dir: Path, runtime: str, out_dir: Path) -> Path:
    """What TorchServe unpacks an archive's model into: the runtime's export and index_to_name.json
    in out_dir (also what tests and benchmarks load without a server). Returns the exported file."""
    exported = export(model_dir, runtime, out_dir)
    shutil.copy(model_dir / model_folder.LABELS, out_dir / LABELS_FILE)
    return exported


def build_archive(
    model_dir: Path,
    version: str,
    out: Path,
    handler_settings: Mapping[str, Any] | None = None,
    batching: Batching = Batching(),
    runtime: str = DEFAULT_RUNTIME,
    precision: str = DEFAULT_PRECISION,
) -> Path:
    """Write the .mar for `model_dir`'s model at `out` (replacing it) and return `out`."""
    if not VERSION_PATTERN.match(version):
        raise PackageError(f"version {version!r} must be letters, digits, '.', '_' or '-' (e.g. 1.0)")
    settings = dict(handler_settings or {})
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".package-") as tmp:
        staging = Path(tmp)
        extra = staging / "extra"  # archiver copies a directory's *contents*: extra/handler -> handler/
        try:
            Settings.resolve(settings, environ={})
            _, calibration = model_folder.load(model_dir)
            spec = ModelSpec(runtime, precision, calibration.thresholds)
            exported = stage_model(model_dir, runtime, staging / "model")
            # Fail here, not in a serving worker, if the export does not load or answer.
            Classifier.load(staging / "model", spec, version)
        except Exception as e:  # loading, exporting and running fail in many ways; all mean "not packageable"
            raise PackageError(f"cannot package {model_dir}: {e}") from e
        shutil.copytree(HANDLER_DIR, extra / "handler", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy(staging / "model" / LABELS_FILE, extra / LABELS_FILE)
        config = staging / "model-config.yaml"
        # `source` says which weights the export came from, so a release can prove the archive
        # holds the current models/model.pt (serving/release_gate.py); the handler ignores it.
        source = {"weights_sha256": hashlib.sha256((model_dir / model_folder.STATE_DICT).read_bytes()).hexdigest()}
        config.write_text(
            yaml.safe_dump({**batching.model_config(), "handler": settings, "model": spec.to_config(),
                            "source": source}),
            encoding="utf-8",
        )
        _run_archiver(staging, version, exported, extra, config)
        built = staging / "export" / f"{MODEL_NAME}.mar"
        name, built_version = read_manifest(built)
        if (name, built_version) != (MODEL_NAME, version):
            raise PackageError(f"archiver wrote {name} {built_version}, expected {MODEL_NAME} {version}")
        os.replace(built, out)  # same directory: atomic, so a running server never sees half a file
    return out


def _run_archiver(staging: Path, version: str, model_file: Path, extra: Path, config: Path) -> None:
    (staging / "export").mkdir()
    (staging / "tmp").mkdir()
    command = [
        sys.executable, "-m", "model_archiver.model_packaging",
        "--model-name", MODEL_NAME,
        "--version", version,
        "--serialized-file", str(model_file),
        "--handler", str(HANDLER_DIR / "ts_handler.py"),
        "--extra-files", str(extra),
        "--config-file", str(config),
        "--export-path", str(staging / "export"),
        "--force",
    ]  # fmt: skip
    # The archiver assembles files in $TMPDIR/<model-name>: a private TMPDIR keeps parallel builds apart.
    env = {**os.environ, "TMPDIR": str(staging / "tmp")}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackageError(f"torch-model-archiver failed: {(result.stderr or result.stdout).strip()}")


def read_params(path: Path) -> dict[str, Any]:
    """The `package` section of params.yaml: version (a quoted string) and optional handler settings."""
    try:
        section = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("package")
    except (OSError, yaml.YAMLError) as e:
        raise PackageError(f"cannot read {path}: {e}") from e
    if not isinstance(section, dict):
        raise PackageError(f"{path} has no `package:` section")
    unknown = sorted(set(section) - PARAM_KEYS)
    if unknown:
        raise PackageError(f"unknown keys in {path} `package:` {unknown}; known: {sorted(PARAM_KEYS)}")
    if "version" in section and not isinstance(section["version"], str):
        raise PackageError(f'package.version in {path} must be a quoted string, e.g. version: "1.0"')
    try:
        check_runtime(section.get("runtime", DEFAULT_RUNTIME), section.get("precision", DEFAULT_PRECISION))
    except ValueError as e:
        raise PackageError(f"package.runtime/precision in {path}: {e}") from e
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir", type=Path, default=Path("models"), help="holds model.pt and index_to_name.json"
    )
    parser.add_argument(
        "--params", type=Path, help="params.yaml: version, handler and batching settings under `package:`"
    )
    parser.add_argument("--version", help="archive version (overrides params)")
    parser.add_argument("--runtime", choices=RUNTIMES, help=f"inference runtime (overrides params; default {DEFAULT_RUNTIME})")
    parser.add_argument("--precision", choices=PRECISIONS, help=f"runtime precision (overrides params; default {DEFAULT_PRECISION})")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .mar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = read_params(args.params) if args.params else {}
        version = args.version or params.get("version")
        if not version:
            raise PackageError("no version: pass --version or --params with package.version")
        batching = Batching.from_params(params.get("batching"))
        runtime = args.runtime or params.get("runtime", DEFAULT_RUNTIME)
        precision = args.precision or params.get("precision", DEFAULT_PRECISION)
        out = build_archive(args.model_dir, version, args.out, params.get("handler"), batching, runtime, precision)
    except PackageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"wrote {out} ({MODEL_NAME} version {version} on {runtime} ({precision}), {out.stat().st_size / 1e6:.1f} MB, "
        f"batches of up to {batching.size}, {batching.describe()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
