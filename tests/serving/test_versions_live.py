"""Model versions on a real TorchServe through the CLI, with a client predicting all along."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from serving import versions
from serving.client import check_prediction, post_native

pytestmark = pytest.mark.slow


class BackgroundClient(threading.Thread):
    """Predicts with the default version until stopped (at most `limit` s); records every failure."""

    def __init__(self, url: str, image: bytes, limit: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.url, self.image, self.limit = url, image, limit
        self.stop_event = threading.Event()
        self.versions_seen: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        with requests.Session() as session:
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                try:
                    answer = post_native(session, self.url, self.image, timeout=30)
                    if answer.status_code == 200:
                        self.versions_seen.append(check_prediction(answer.json())["model_version"])
                    else:
                        self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                except Exception as e:  # noqa: BLE001 - every failure counts
                    self.failures.append(repr(e))

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=60)


def _cli(torchserve, store, *args: str) -> int:
    return versions.main(["--management", torchserve.management_url, "--model-store", str(store), *args])


def test_register_promote_rollback_without_failed_requests(torchserve, catsdogs_store, photos, capsys):
    url = torchserve.inference_url
    client = BackgroundClient(url, photos["cat"])
    client.start()
    try:
        assert _cli(torchserve, catsdogs_store, "register", "2.0") == 0
        with requests.Session() as session:
            answer = post_native(session, url, photos["cat"], version="2.0")
            assert answer.status_code == 200 and answer.json()["model_version"] == "2.0"
            assert _cli(torchserve, catsdogs_store, "promote", "2.0") == 0
            time.sleep(1)
            assert post_native(session, url, photos["cat"]).json()["model_version"] == "2.0"
            assert _cli(torchserve, catsdogs_store, "list") == 0
            assert _cli(torchserve, catsdogs_store, "rollback") == 0
            time.sleep(1)
            assert post_native(session, url, photos["cat"]).json()["model_version"] == "1.0"
        assert _cli(torchserve, catsdogs_store, "unregister", "2.0") == 0
        time.sleep(0.5)
    finally:
        client.finish()
        versions.Versions(torchserve.management_url, catsdogs_store).registered()  # server still answers
    assert client.failures == [], client.failures[:5]
    assert len(client.versions_seen) >= 10 and {"1.0", "2.0"} <= set(client.versions_seen)
    out = capsys.readouterr().out
    assert "Rolled back catsdogs: default 2.0 -> 1.0." in out
    assert versions.Versions(torchserve.management_url, catsdogs_store).registered() == ["1.0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("register", "7.0"), "no catsdogs archive of version 7.0"),
        (("promote", "7.0"), "catsdogs 7.0 is not registered"),
        (("unregister", "1.0"), "is the default version"),
        (("rollback",), "no registered version of catsdogs is older than the default 1.0"),
        (("register", "1.0"), "already registered"),
        (("scale", "--workers", "0"), "at least 1"),
    ],
)
def test_refused_operations_exit_1_with_a_sentence(torchserve, catsdogs_store, capsys, args, message):
    assert _cli(torchserve, catsdogs_store, *args) == 1
    assert message in capsys.readouterr().err


def test_unreachable_server_is_a_sentence(catsdogs_store, capsys):
    from serving.ports import Ports

    dead = f"http://127.0.0.1:{Ports.free().management}"
    assert versions.main(["--management", dead, "--model-store", str(catsdogs_store), "list"]) == 1
    assert "is not reachable" in capsys.readouterr().err


def test_scale_workers(torchserve, catsdogs_store):
    manager = versions.Versions(torchserve.management_url, catsdogs_store)
    try:
        assert _cli(torchserve, catsdogs_store, "scale", "--workers", "1") == 0
        assert len(manager.describe()[0]["workers"]) == 1
    finally:
        assert _cli(torchserve, catsdogs_store, "scale", "--workers", "2") == 0
    assert len(manager.describe()[0]["workers"]) == 2


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/catsdogs.mar", "https://example.com/catsdogs.mar", "file:///etc/passwd"]
)
def test_registering_from_a_url_is_refused(torchserve, url):
    answer = requests.post(f"{torchserve.management_url}/models", params={"url": url}, timeout=30)
    assert answer.status_code == 404 and "does not match any allowed URL" in answer.json()["message"]
