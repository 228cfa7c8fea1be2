"""The model store: a folder of .mar archives, and which model version each one holds.

A version is read from the archive's own manifest (`torch-model-archiver --version`), never from
its file name, so `catsdogs.mar` (what `make package` writes) and `catsdogs-2.0.mar` are found alike.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import yaml

MODEL_NAME = "catsdogs"
# The section of an archive's model-config.yaml with its exact batching (serving/package.py Batching).
BATCHING_KEY = "batching"


class ArchiveError(ValueError):
    """A .mar file is missing, unreadable or has no model name/version; the message says which."""


def read_manifest(mar: Path) -> tuple[str, str]:
    """(model name, model version) from a .mar file's MAR-INF/MANIFEST.json."""
    try:
        with zipfile.ZipFile(mar) as archive:
            manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
        model = manifest["model"]
        return model["modelName"], model["modelVersion"]
    except FileNotFoundError as e:
        raise ArchiveError(f"{mar} does not exist") from e
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, TypeError) as e:
        raise ArchiveError(f"{mar} is not a model archive with a name and version: {e}") from e


def read_model_config(mar: Path) -> dict[str, Any]:
    """The archive's model-config.yaml (batching, handler settings); {} when it has none."""
    try:
        with zipfile.ZipFile(mar) as archive:
            manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
            name = manifest["model"].get("configFile")
            return (yaml.safe_load(archive.read(name)) or {}) if name else {}
    except FileNotFoundError as e:
        raise ArchiveError(f"{mar} does not exist") from e
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, yaml.YAMLError, TypeError) as e:
        raise ArchiveError(f"{mar} has no readable model config: {e}") from e


def archive_batching(mar: Path) -> tuple[int, int]:
    """(batch size, max batch delay in ms) the archive asks for: its exact `batching` section, else
    TorchServe's own keys (archives built elsewhere), else TorchServe's defaults (1, 100)."""
    config = read_model_config(mar)
    exact = config.get(BATCHING_KEY) or {}
    try:
        return (int(exact.get("size", config.get("batchSize", 1))),
                int(exact.get("max_delay_ms", config.get("maxBatchDelay", 100))))
    except (AttributeError, TypeError, ValueError) as e:
        raise ArchiveError(f"{mar} has an unreadable batching setting: {e}") from e


def versions_in_store(model_store: Path, name: str = MODEL_NAME) -> dict[str, str]:
    """{version: archive file name} for every readable archive of `name` in the store.

    When two files hold the same version, the conventional `<name>-<version>.mar` wins, then the
    alphabetically first, so the answer does not depend on directory order.
    """
    found: dict[str, str] = {}
    for mar in sorted(Path(model_store).glob("*.mar")):
        try:
            archive_name, version = read_manifest(mar)
        except ArchiveError:
            continue  # a broken file must not hide the good ones; registering it reports the error
        if archive_name != name:
            continue
        if version not in found or mar.name == f"{name}-{version}.mar":
            found[version] = mar.name
    return found


def version_key(version: str) -> tuple:
    """Sort key so that "1.10" > "1.9" > "1.0" and "2.0" > "1.10"; non-numeric parts sort as text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in version.split("."))
