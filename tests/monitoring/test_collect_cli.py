"""The collector's failure handling and exit policy, without a server: nothing listens on the port."""

from __future__ import annotations

import json
import socket

import numpy as np

from monitoring.collect import collect
from monitoring.sources import Item
from scripts.collect_predictions import exit_status, main
from serving.client import Endpoint
from tests.conftest import free_port


def test_refused_connections_are_recorded_per_item_in_order():
    items = [Item(f"{i}.png", "cat", b"x") for i in range(5)]
    results = collect(
        items, Endpoint(f"http://127.0.0.1:{free_port()}"), concurrency=3, timeout=2, progress=False
    )
    assert [r.file for r in results] == [i.file for i in items]
    assert all(r.status is None and r.error.startswith("connection_error") for r in results)


def test_timeouts_are_recorded_per_item():
    # A socket that listens but never answers: the kernel accepts the connection, no reply ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = Endpoint(f"http://127.0.0.1:{silent.getsockname()[1]}", "v1")
        results = collect(
            [Item("a.png", "dog", b"x"), Item("b.png", "cat", b"y")],
            endpoint,
            concurrency=2,
            timeout=0.3,
            progress=False,
        )
    assert [r.error.split(":")[0] for r in results] == ["timeout", "timeout"]
    assert all(r.status is None and r.latency_ms >= 300 for r in results)


def test_cli_records_everything_and_exits_1_when_all_failed(tmp_path, capsys):
    np.savez(
        tmp_path / "test.npz",
        images=np.zeros((3, 224, 224, 3), np.uint8),
        labels=np.array([0, 1, 1]),
        files=np.array(["a", "b", "c"]),
    )
    code = main(
        [
            f"http://127.0.0.1:{free_port()}",
            "--source",
            str(tmp_path / "test.npz"),
            "--out-dir",
            str(tmp_path / "out"),
            "--no-progress",
            "--timeout",
            "2",
        ]
    )
    assert code == 1
    assert "every request failed" in capsys.readouterr().err
    batch = json.loads((tmp_path / "out" / "predictions_batch.json").read_text())
    assert [item["file"] for item in batch["items"]] == ["a", "b", "c"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["errors_by_kind"] == {
        "connection_error": 3
    }


def test_cli_bad_source_or_reference_exits_2_before_sending(tmp_path, capsys):
    assert main(["http://127.0.0.1:1", "--source", str(tmp_path / "nope.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    np.savez(
        tmp_path / "t.npz",
        images=np.zeros((1, 224, 224, 3), np.uint8),
        labels=np.array([0]),
        files=np.array(["a"]),
    )
    args = ["http://127.0.0.1:1", "--source", str(tmp_path / "t.npz"), "--out-dir", str(tmp_path / "out")]
    assert main(args + ["--reference", str(tmp_path / "missing.json")]) == 2
    assert "reference" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main(args + ["--protocol", "v1", "--model-version", "2.0"]) == 2
    assert "native route only" in capsys.readouterr().err


def test_exit_policy():
    summary = {"succeeded": 10, "accuracy": 0.8}
    assert exit_status(summary, None, None, False) == 0
    assert exit_status(summary, None, 0.9, False) == 1
    assert exit_status(summary, {"drift": True}, 0.5, False) == 0
    assert exit_status(summary, {"drift": True}, 0.5, True) == 1
    assert exit_status({"succeeded": 0, "accuracy": None}, None, None, False) == 1
