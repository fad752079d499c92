"""Shared fixtures: the shared test vectors and a real kms-server process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess
from tests.support.vectors import vectors_dir

VECTORS = vectors_dir()


@pytest.fixture(scope="session")
def vectors() -> Path:
    """../shared/vectors next to the checkout; a missing folder fails in CI and skips elsewhere."""
    if not VECTORS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test vectors not found at {VECTORS}")
        pytest.skip(f"test vectors not found at {VECTORS}")
    return VECTORS


@pytest.fixture(scope="session")
def kms_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server (SQLite, gunicorn, HTTP on a free port) shared by the session's tests."""
    server = ServerProcess(tmp_path_factory.mktemp("kms-data"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own, for tests that restart, kill or inspect the database."""
    server = ServerProcess(tmp_path / "data")
    server.start()
    yield server
    server.stop()
