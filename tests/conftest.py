"""Shared fixtures: the shared test vectors and a real kms-server process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backends import SERVER_BACKENDS, ServerDatabase
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


@pytest.fixture(scope="session", params=list(SERVER_BACKENDS))
def kms_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server (gunicorn, HTTP on a free port) per database backend (tests.support.backends), shared by
    the session's tests: every test using it runs on sqlite, postgresql, mysql and redis-findex."""
    database = SERVER_BACKENDS[request.param]("srv")
    server = ServerProcess(tmp_path_factory.mktemp("kms-data"), database=database)
    server.start()
    yield server
    server.stop()
    database.drop()


@pytest.fixture(params=list(SERVER_BACKENDS))
def server_database(request: pytest.FixtureRequest) -> Iterator[ServerDatabase]:
    """An empty database of each backend, for a test starting servers of its own. A test that needs one backend
    (it reads the SQLite file) says so: `@pytest.mark.parametrize("server_database", ["sqlite"], indirect=True)`."""
    database = SERVER_BACKENDS[request.param]("fresh")
    yield database
    database.drop()


@pytest.fixture()
def fresh_server(tmp_path: Path, server_database: ServerDatabase) -> Iterator[ServerProcess]:
    """A server of its own, for tests that restart, kill or inspect the database (on each backend, see
    server_database)."""
    server = ServerProcess(tmp_path / "data", database=server_database)
    server.start()
    yield server
    server.stop()
