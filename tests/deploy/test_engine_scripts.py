"""scripts/image.sh and scripts/container_engine.sh say what is missing when there is no engine.

The real thing (a throwaway dockerd, a build, a run) is `make image-test`, which .ci/run runs."""

from __future__ import annotations

import json
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


def test_ci_builds_refuse_anything_but_a_verified_release(tmp_path):
    """REQUIRE_RELEASE=1 (CI): a bare archive, a tampered bundle or a synthetic-data release never
    reaches an engine; each refusal is a sentence, before any engine is needed."""
    env = {"REQUIRE_RELEASE": "1", "PY": sys.executable, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    bare = run(["scripts/image.sh", "build"], **env)
    assert bare.returncode == 2 and "refusing to build from a bare archive" in bare.stderr
    bundle = tmp_path / "catsdogs-1.0"
    bundle.mkdir()
    (bundle / "catsdogs-1.0.mar").write_bytes(b"archive")
    record = {"name": "catsdogs", "version": "1.0", "data_version": "d", "test_accuracy": 0.97,
              "git_commit": "c", "synthetic": True}
    (bundle / "release.json").write_text(json.dumps(record))
    from serving.release import write_checksums

    write_checksums(bundle)
    synthetic = run(["scripts/image.sh", "build"], RELEASE=str(bundle), **env)
    assert synthetic.returncode == 2 and "not say the model was trained on real photos" in synthetic.stderr
    (bundle / "release.json").write_text(json.dumps({**record, "synthetic": False}))
    tampered = run(["scripts/image.sh", "build"], RELEASE=str(bundle), **env)
    assert tampered.returncode == 2 and "release.json does not match its SHA-256" in tampered.stderr
    write_checksums(bundle)
    verified = run(["scripts/image.sh", "build"], RELEASE=str(bundle), **env)
    # Past the release checks, the build stops only for want of an engine here.
    assert "release " + str(bundle) + " verified: --build-arg MODEL_VERSION=1.0" in verified.stderr
    assert verified.returncode == 2 and ("no container engine" in verified.stderr or "no docker CLI" in verified.stderr)


def test_the_base_image_comes_from_the_default_engine_when_no_throwaway_one_runs(tmp_path):
    """On GitHub's runners (default socket, no DOCKER_HOST) `base` must ask that engine, not the
    throwaway engine's socket. A recording stand-in for the docker CLI shows which one was asked."""
    calls = tmp_path / "calls"
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\necho "DOCKER_HOST=$DOCKER_HOST $*" >>{calls}\nexit 0\n')
    docker.chmod(0o755)
    result = run(["scripts/container_engine.sh", "base", "python:3.11-slim-bookworm"], DOCKER=str(docker),
                 DOCKER_HOST="", CATSDOGS_ENGINE_DIR=str(tmp_path / "engine"))
    assert result.returncode == 0 and result.stdout.strip() == "python:3.11-slim-bookworm", result.stderr
    assert calls.read_text().splitlines() == ["DOCKER_HOST= image inspect python:3.11-slim-bookworm"]
