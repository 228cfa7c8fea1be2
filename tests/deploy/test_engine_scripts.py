"""scripts/image.sh and scripts/container_engine.sh say what is missing when there is no engine.

The real thing (a throwaway dockerd, a build, a run) is `make image-test`, which .ci/run runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.deploy.conftest import REPO_ROOT


def run(args, **env):
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_image_build_without_an_engine_says_how_to_get_one(tmp_path):
    docker = shutil.which("docker") or "docker-is-not-installed"
    result = run(["scripts/image.sh", "build"], DOCKER=docker, DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    assert result.returncode == 2
    assert "no container engine answers" in result.stderr or "no docker CLI" in result.stderr
    assert "scripts/container_engine.sh start" in result.stderr


def test_engine_commands_without_an_engine(tmp_path):
    state = str(tmp_path / "engine")
    status = run(["scripts/container_engine.sh", "status"], CATSDOGS_ENGINE_DIR=state, DOCKER_HOST="")
    assert status.returncode == 1 and "not running" in status.stdout
    env = run(["scripts/container_engine.sh", "env"], CATSDOGS_ENGINE_DIR=state, DOCKER_HOST="")
    assert env.returncode == 1 and "start" in env.stderr and not env.stdout
    stop = run(["scripts/container_engine.sh", "stop"], CATSDOGS_ENGINE_DIR=state, DOCKER_HOST="")
    assert stop.returncode == 0 and "not running" in stop.stderr
    usage = run(["scripts/container_engine.sh", "bogus"])
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_a_user_engine_is_left_alone(tmp_path):
    """With DOCKER_HOST naming another engine, `stop` must not touch it (nor start a second one)."""
    stop = run(["scripts/container_engine.sh", "stop"], CATSDOGS_ENGINE_DIR=str(tmp_path), DOCKER_HOST="tcp://127.0.0.1:1")
    assert stop.returncode == 0 and "not stopping it" in stop.stderr


def test_kind_script_refuses_unpinned_images():
    bin_dir = os.path.dirname(sys.executable)  # kubectl from requirements.txt
    for image in ("catsdogs:latest", "catsdogs", "localhost:5000/catsdogs"):
        result = run(["scripts/kind.sh", "apply", image], PATH=f"{bin_dir}:{os.environ['PATH']}")
        assert result.returncode == 2 and "pinned tag" in result.stderr, image
