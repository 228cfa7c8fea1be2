"""Package the trained model as a versioned TorchServe archive (.mar); also the DVC `package` stage.

    python -m serving.package --model-dir models --params params.yaml --out models/catsdogs.mar
    python -m serving.package --model-dir models --version 2.0 --out models/catsdogs-2.0.mar

The archive holds model.py (training/model.py: the one-class model file), model.pt (the state_dict),
index_to_name.json, ts_handler.py (the entry point), the whole `handler/` package and
model-config.yaml: the handler settings (params `package.handler`) and TorchServe's dynamic batching
(`batchSize`, `maxBatchDelay`; params `package.batching`, defaults in Batching). Batching travels
with the archive because it is a property of the model's speed, measured with it (`make
bench-serve`): every server that loads the archive, local, container or KServe, batches the same
way, and TorchServe lets an archive's setting win over its own defaults. TorchServe unpacks the
archive into one directory on sys.path, so `from handler.inference import ...` works there as in
the repo.
torch-model-archiver always writes `<model-name>.mar`, so it writes into a private temp dir and the
result is renamed to --out: several versions can sit side by side in one model store.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from handler.inference import Classifier
from handler.settings import Settings
from serving.store import MODEL_NAME, read_manifest

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_FILE = REPO_ROOT / "training" / "model.py"
HANDLER_DIR = REPO_ROOT / "handler"
STATE_DICT = "model.pt"
LABELS = "index_to_name.json"
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")  # becomes part of TorchServe's paths
PARAM_KEYS = {"version", "handler", "batching"}


class PackageError(Exception):
    """A packaging input is missing or wrong; the message says which and what to do."""


@dataclasses.dataclass(frozen=True)
class Batching:
    """TorchServe's dynamic batching of this archive: a worker takes up to `size` queued requests at
    once, waiting at most `max_delay_ms` for the next one. The defaults are the measured best on two
    cores (README, benchmark): with 1 ms a lone request barely waits, while under load the queue
    already holds the batch and one forward pass serves several requests."""

    size: int = 4
    max_delay_ms: int = 1

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            # TorchServe ignores an archive's value <= 0 and falls back to its own (100 ms delay).
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PackageError(f"package.batching.{name} must be a whole number >= 1, got {value!r}")

    @classmethod
    def from_params(cls, raw: Any) -> Batching:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise PackageError(
                f"package.batching must be a mapping like {{size: 4, max_delay_ms: 1}}, got {raw!r}"
            )
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise PackageError(f"unknown package.batching keys {unknown}; known: size, max_delay_ms")
        return cls(**raw)

    def model_config(self) -> dict[str, int]:
        return {"batchSize": self.size, "maxBatchDelay": self.max_delay_ms}


def build_archive(
    model_dir: Path,
    version: str,
    out: Path,
    handler_settings: Mapping[str, Any] | None = None,
    batching: Batching = Batching(),
) -> Path:
    """Write the .mar for `model_dir`'s model.pt at `out` (replacing it) and return `out`."""
    if not VERSION_PATTERN.match(version):
        raise PackageError(f"version {version!r} must be letters, digits, '.', '_' or '-' (e.g. 1.0)")
    state_dict, labels = model_dir / STATE_DICT, model_dir / LABELS
    for path in (state_dict, labels):
        if not path.is_file():
            raise PackageError(f"{path} not found: train a model first (`make train` or `dvc repro train`)")
    settings = dict(handler_settings or {})
    try:
        Settings.resolve(settings, environ={})
        # Fail here, not in a serving worker, if the weights do not fit the model file.
        Classifier.load(MODEL_FILE, state_dict, labels, version)
    except Exception as e:  # torch.load and load_state_dict fail in many ways; all mean "not packageable"
        raise PackageError(f"cannot package {state_dict}: {e}") from e

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".package-") as tmp:
        staging = Path(tmp)
        extra = staging / "extra"  # archiver copies a directory's *contents*: extra/handler -> handler/
        shutil.copytree(HANDLER_DIR, extra / "handler", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy(labels, extra / LABELS)
        config = staging / "model-config.yaml"
        config.write_text(yaml.safe_dump({**batching.model_config(), "handler": settings}), encoding="utf-8")
        _run_archiver(staging, version, state_dict, extra, config)
        built = staging / "export" / f"{MODEL_NAME}.mar"
        name, built_version = read_manifest(built)
        if (name, built_version) != (MODEL_NAME, version):
            raise PackageError(f"archiver wrote {name} {built_version}, expected {MODEL_NAME} {version}")
        os.replace(built, out)  # same directory: atomic, so a running server never sees half a file
    return out


def _run_archiver(staging: Path, version: str, state_dict: Path, extra: Path, config: Path) -> None:
    (staging / "export").mkdir()
    (staging / "tmp").mkdir()
    command = [
        sys.executable, "-m", "model_archiver.model_packaging",
        "--model-name", MODEL_NAME,
        "--version", version,
        "--model-file", str(MODEL_FILE),
        "--serialized-file", str(state_dict),
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
    parser.add_argument("--out", type=Path, required=True, help="where to write the .mar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = read_params(args.params) if args.params else {}
        version = args.version or params.get("version")
        if not version:
            raise PackageError("no version: pass --version or --params with package.version")
        batching = Batching.from_params(params.get("batching"))
        out = build_archive(args.model_dir, version, args.out, params.get("handler"), batching)
    except PackageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"wrote {out} ({MODEL_NAME} version {version}, {out.stat().st_size / 1e6:.1f} MB, "
        f"batches of up to {batching.size} within {batching.max_delay_ms} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
