"""The model store helpers and the .properties reader/writer (no server)."""

from __future__ import annotations

import pytest

from serving.properties import read_properties, write_properties
from serving.store import ArchiveError, read_manifest, version_key, versions_in_store


def test_versions_come_from_manifests_not_file_names(tmp_path, fake_archive):
    fake_archive(tmp_path / "catsdogs.mar", version="1.0")
    fake_archive(tmp_path / "renamed.mar", version="2.0")
    fake_archive(tmp_path / "other.mar", name="other", version="9.0")
    (tmp_path / "broken.mar").write_bytes(b"not a zip")
    assert versions_in_store(tmp_path) == {"1.0": "catsdogs.mar", "2.0": "renamed.mar"}


def test_conventional_name_wins_for_a_duplicate_version(tmp_path, fake_archive):
    fake_archive(tmp_path / "a.mar", version="2.0")
    fake_archive(tmp_path / "catsdogs-2.0.mar", version="2.0")
    assert versions_in_store(tmp_path) == {"2.0": "catsdogs-2.0.mar"}


def test_read_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(ArchiveError, match="does not exist"):
        read_manifest(tmp_path / "missing.mar")
    (tmp_path / "bad.mar").write_bytes(b"junk")
    with pytest.raises(ArchiveError, match="bad.mar"):
        read_manifest(tmp_path / "bad.mar")


def test_versions_sort_numerically():
    assert sorted(["1.10", "2.0", "1.9", "1.0", "10.0"], key=version_key) == [
        "1.0",
        "1.9",
        "1.10",
        "2.0",
        "10.0",
    ]


def test_properties_round_trip(tmp_path):
    source = tmp_path / "a.properties"
    source.write_text('# comment\n\nkey = value\nurl=http://127.0.0.1:8080\nmodels={"a": 1}\n')
    props = read_properties(source)
    assert props == {"key": "value", "url": "http://127.0.0.1:8080", "models": '{"a": 1}'}
    write_properties(props, tmp_path / "b.properties")
    assert read_properties(tmp_path / "b.properties") == props


def test_properties_reject_malformed_lines(tmp_path):
    (tmp_path / "bad.properties").write_text("no equals sign\n")
    with pytest.raises(ValueError, match="bad.properties:1"):
        read_properties(tmp_path / "bad.properties")
