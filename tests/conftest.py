"""Fixtures every test tier shares: the real photos when present, free loopback ports."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared real photos sit beside the project on development and CI machines; a user's clone lacks
# them, and tests that need them skip. CATSDOGS_REAL_DATA points elsewhere.
REAL_DATA = Path(os.environ.get("CATSDOGS_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "cats-dogs-2000"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Root of the real cat and dog photos (train/cats, train/dogs), or skip."""
    if not (REAL_DATA / "train" / "cats").is_dir():
        pytest.skip(f"real photos not found at {REAL_DATA} (set CATSDOGS_REAL_DATA)")
    return REAL_DATA


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
