"""serving/server.py and the CLIs around it, with real TorchServe processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from serving import predict, serve
from serving.package import Batching
from serving.ports import Ports
from serving.server import ModelSpec, ServerError, TorchServe
from serving.smoke import main as smoke_main
from serving.versions import Versions

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def _worker_pids(server: TorchServe) -> list[int]:
    answer = requests.get(f"{server.management_url}/models/catsdogs/all", timeout=10).json()
    return [int(w["pid"]) for version in answer for w in version["workers"]]


def test_start_stop_restart_in_one_run_folder(catsdogs_store, tmp_path, photos):
    server = TorchServe(
        catsdogs_store,
        tmp_path / "run",
        ports=Ports.free(),
        models=[ModelSpec("catsdogs-1.0.mar", workers=1)],
    )
    with server:
        pid, workers = server.pid, _worker_pids(server)
        assert (tmp_path / "run" / "torchserve.pid").read_text() == str(pid)
        environ = psutil.Process(workers[0]).environ()
        assert environ["OMP_NUM_THREADS"] == "1"
        # Workers import the handler from the unpacked .mar (TorchServe sets PYTHONPATH to it), never
        # from this checkout, so a file missing from the archive fails here as it would in production.
        assert environ["PYTHONPATH"].rstrip(":").startswith(str(tmp_path / "run" / "tmp" / "models"))
        assert str(REPO_ROOT) not in environ["PYTHONPATH"] and psutil.Process(workers[0]).cwd() != str(
            REPO_ROOT
        )
        assert environ["TMPDIR"].startswith(str(tmp_path))  # sockets and unpacked archives stay in the run
        with pytest.raises(ServerError, match="already runs"):
            server.start()
        Versions(server.management_url, catsdogs_store).register("2.0")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not any(
        psutil.pid_exists(w) and psutil.Process(w).status() != psutil.STATUS_ZOMBIE for w in workers
    )
    assert not (tmp_path / "run" / "torchserve.pid").exists()
    assert server.stop() is False  # stopping twice is harmless

    server.start().wait_ready(timeout=180)  # the same run folder again (monitoring's restart tests)
    try:
        # --ncs: the restart loads exactly `models`; 2.0, registered at runtime, is not restored.
        assert Versions(server.management_url, catsdogs_store).registered() == ["1.0"]
        answer = requests.post(f"{server.inference_url}/predictions/catsdogs", data=photos["cat"], timeout=30)
        assert answer.status_code == 200
    finally:
        server.stop()
    assert (tmp_path / "run" / "logs" / "access_log.log").stat().st_size > 0


def test_ports_in_use_are_refused_before_starting(torchserve, catsdogs_store, tmp_path):
    clash = TorchServe(
        catsdogs_store, tmp_path / "run", ports=torchserve.ports, models=[ModelSpec("catsdogs-1.0.mar")]
    )
    with pytest.raises(ServerError, match="in use"):
        clash.start()
    assert clash.pid is None


def test_serve_cli_needs_a_package(tmp_path, capsys):
    assert serve.main(["start", "--model-store", str(tmp_path), "--run-dir", str(tmp_path / "run")]) == 1
    assert "run `make package` first" in capsys.readouterr().err
    assert serve.main(["stop", "--run-dir", str(tmp_path / "run")]) == 0
    assert "not running" in capsys.readouterr().out


def test_predict_cli(torchserve, tmp_path, photos, capsys):
    image = tmp_path / "cat.jpg"
    image.write_bytes(photos["cat"])
    assert predict.main([str(image), "--url", torchserve.inference_url]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("cat", "dog")
    assert predict.main([str(image), "--url", torchserve.inference_url, "--protocol", "v2"]) == 0
    assert json.loads(capsys.readouterr().out)["model_name"] == "catsdogs"
    assert predict.main([str(tmp_path / "missing.jpg"), "--url", torchserve.inference_url]) == 1
    assert "is not a file" in capsys.readouterr().err
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    assert predict.main([str(tmp_path / "junk.jpg"), "--url", torchserve.inference_url]) == 1
    assert "answered 400" in capsys.readouterr().err
    dead = f"http://127.0.0.1:{Ports.free().inference}"
    assert predict.main([str(image), "--url", dead]) == 1
    assert "make serve" in capsys.readouterr().err


def test_smoke_test_script_passes_on_a_good_server(torchserve, tmp_path, photos):
    for name, data in photos.items():
        (tmp_path / f"{name}.jpg").write_bytes(data)
    result = subprocess.run(
        [
            sys.executable,
            "scripts/smoke_test.py",
            torchserve.inference_url,
            "--timeout",
            "60",
            "--cat",
            str(tmp_path / "cat.jpg"),
            "--dog",
            str(tmp_path / "dog.jpg"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed" in result.stdout and "OIP v2" in result.stdout


def test_smoke_test_fails_with_a_sentence(tmp_path, capsys):
    dead = f"http://127.0.0.1:{Ports.free().inference}"
    assert smoke_main([dead, "--timeout", "2", "--images", str(tmp_path)]) == 1
    assert "no cats/ and dogs/ images" in capsys.readouterr().err
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    (tmp_path / "cats" / "a.jpg").write_bytes(b"x")
    (tmp_path / "dogs" / "b.jpg").write_bytes(b"x")
    assert smoke_main([dead, "--timeout", "2", "--images", str(tmp_path)]) == 1
    assert "not ready after 2 s" in capsys.readouterr().err


def test_local_server_listens_on_loopback_only(torchserve):
    import socket

    addresses = [
        a.address
        for nic in psutil.net_if_addrs().values()
        for a in nic
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    if not addresses:
        pytest.skip("no non-loopback IPv4 address on this machine")
    for port in (torchserve.ports.inference, torchserve.ports.management, torchserve.ports.metrics):
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((addresses[0], port)) != 0, f"port {port} answers on {addresses[0]}"


def test_the_frontend_jvm_runs_with_the_configs_vmargs(torchserve):
    """config.properties' vmargs (C1 only) reach the Java command line: TorchServe reads the key."""
    java = psutil.Process(_worker_pids(torchserve)[0]).parent()
    assert java.name() == "java"
    vmargs = torchserve.config()["vmargs"].split()
    assert vmargs == ["-XX:TieredStopAtLevel=1"]
    assert all(arg in java.cmdline() for arg in vmargs)


def test_every_server_batches_as_the_archive_says(torchserve, catsdogs_store):
    """Loaded at start-up and registered at runtime, a version takes batchSize/maxBatchDelay from its .mar,
    including the shipped delay of 0, which TorchServe would read as 100 ms from the archive itself."""
    versions = Versions(torchserve.management_url, catsdogs_store)
    versions.register("2.0")
    try:
        answer = requests.get(f"{torchserve.management_url}/models/catsdogs/all", timeout=10).json()
    finally:
        versions.unregister("2.0")
    shipped = Batching()  # what catsdogs_store's archives were packaged with
    assert shipped.max_delay_ms == 0
    assert {(v["modelVersion"], v["batchSize"], v["maxBatchDelay"]) for v in answer} == {
        ("1.0", shipped.size, shipped.max_delay_ms),
        ("2.0", shipped.size, shipped.max_delay_ms),
    }
    # The start-up snapshot also carries the config's response timeout (TorchServe's default: 120 s).
    started = next(v for v in answer if v["modelVersion"] == "1.0")
    assert started["responseTimeout"] == int(torchserve.config()["default_response_timeout"])
