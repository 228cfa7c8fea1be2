"""`make data` logic against a real HTTP server on 127.0.0.1 that honours Range requests."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.data.conftest import RangeServer, photo_bytes
from training.data import discover
from training.download import DownloadError, download, main
from training.prepare import PrepareParams, prepare

PER_CLASS = 40


def build_archive() -> tuple[bytes, dict[str, bytes]]:
    """A miniature kagglecatsanddogs zip, with the real one's oddities: empty, corrupt, Thumbs.db."""
    members = {f"PetImages/Cat/{i}.jpg": photo_bytes(i, size=(256, 256)) for i in range(PER_CLASS)}
    members |= {f"PetImages/Dog/{i}.jpg": photo_bytes(1000 + i, size=(256, 256)) for i in range(PER_CLASS)}
    members |= {
        "PetImages/Cat/666.jpg": b"",
        "PetImages/Dog/11702.jpg": b"GIF89a but not really",
        "PetImages/Cat/Thumbs.db": b"\xd0\xcf\x11\xe0" + b"\0" * 500,
        "readme[1].txt": b"licence text",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("PetImages/", b"")
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue(), {k: v for k, v in members.items() if k.startswith("PetImages/")}


@pytest.fixture
def server(range_server: RangeServer) -> RangeServer:
    range_server.payload, range_server.members = build_archive()
    return range_server


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_subset_reads_a_small_part_of_the_archive(server: RangeServer, tmp_path: Path) -> None:
    folder = download(tmp_path / "raw", server.url, limit=6)
    files = _tree(tmp_path / "raw")
    images = {name: data for name, data in files.items() if name.endswith(".jpg")}
    assert sorted(files) == sorted([*images, "PetImages/DOWNLOAD.json"])
    assert [name.split("/")[1] for name in sorted(images)] == ["Cat"] * 3 + ["Dog"] * 3
    assert all(data == server.members[name] and data for name, data in images.items())
    assert None not in server.ranges, "every GET must be a ranged read"
    assert server.bytes_sent < len(server.payload) / 3, (server.bytes_sent, len(server.payload))
    assert len(discover(folder.parent)[0]) == 6  # prepare accepts the result as it is


def test_subset_is_deterministic_and_reruns_do_nothing(server: RangeServer, tmp_path: Path) -> None:
    download(tmp_path / "a", server.url, limit=10)
    download(tmp_path / "b", server.url, limit=10)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    before = server.requests
    download(tmp_path / "a", server.url, limit=10)
    assert server.requests == before


def test_full_download_extracts_everything_and_cleans_up(server: RangeServer, tmp_path: Path) -> None:
    download(tmp_path / "raw", server.url, limit=4)
    assert main(["--out-dir", str(tmp_path / "raw"), "--url", server.url]) == 0  # replaces the subset
    files = _tree(tmp_path / "raw")
    record = json.loads(files.pop("PetImages/DOWNLOAD.json"))
    assert files == server.members
    assert record == {"url": server.url, "limit": None, "files": len(server.members)}
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["PetImages"]  # no zip, .part or staging
    report = prepare(tmp_path / "raw", tmp_path / "prepared", PrepareParams(), workers=1)
    assert report["counts"]["kept"] == 2 * PER_CLASS
    assert sorted(s["file"] for s in report["skipped"]) == [
        "PetImages/Cat/666.jpg",
        "PetImages/Cat/Thumbs.db",
        "PetImages/Dog/11702.jpg",
    ]


def test_unreachable_host_fails_fast_with_a_way_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/archive.zip"  # nothing listens there
    started = time.monotonic()
    assert main(["--out-dir", str(tmp_path / "raw"), "--url", url, "--limit", "10"]) == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert f"Cannot reach {url}" in err
    assert "prepare.raw_dir in params.yaml" in err and "make train DATA=" in err
    assert not (tmp_path / "raw" / "PetImages").exists()


def test_interrupted_download_never_looks_complete(server: RangeServer, tmp_path: Path) -> None:
    server.truncate = True
    with pytest.raises(DownloadError, match="failed"):
        download(tmp_path / "raw", server.url)
    assert not (tmp_path / "raw" / "PetImages").exists()
    assert not (tmp_path / "raw" / "archive.zip").exists()


def test_too_large_a_subset_is_refused(server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=f"only {PER_CLASS} Cat images"):
        download(tmp_path / "raw", server.url, limit=100)


def test_a_folder_it_did_not_write_is_left_alone(server: RangeServer, tmp_path: Path) -> None:
    (tmp_path / "raw" / "PetImages").mkdir(parents=True)
    with pytest.raises(DownloadError, match="not written by this tool"):
        download(tmp_path / "raw", server.url, limit=4)


def test_an_archive_without_pet_images_is_refused(range_server: RangeServer, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("something/else.jpg", photo_bytes(1))
    range_server.payload = buffer.getvalue()
    with pytest.raises(DownloadError, match="no PetImages/Cat or PetImages/Dog files"):
        download(tmp_path / "raw", range_server.url)
    # Nothing half-done: no PetImages, no staging; the (complete) archive stays for a re-run to reuse.
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["archive.zip"]
    assert (tmp_path / "raw" / "archive.zip").read_bytes() == range_server.payload
