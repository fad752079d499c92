"""The database backends a test `kms-server` can run on, by id: the registry the `kms_server`, `fresh_server` and
`server_database` fixtures are parametrized over (tests/conftest.py).

An entry maps a backend id to a function `(purpose) -> ServerDatabase` that prepares an empty database for one
server and returns the flags to start it with. Another backend is one more entry (redis-findex: its URL, a key
prefix of its own, --redis-master-password and --redis-findex-label in `extra_args`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path

from tests.support import services


@dataclasses.dataclass(frozen=True)
class ServerDatabase:
    """Where a kms-server keeps its objects: the --database-* flags of one backend and how to clean up after it.

    `sqlite_path` is passed to every server (the directory is the server's own in any case); `url` and
    `extra_args` follow it. A restart reuses the same ServerDatabase, so it finds its objects again.
    """

    backend: str = "sqlite"
    url: str | None = None
    extra_args: tuple[str, ...] = ()
    cleanup: Callable[[], None] | None = dataclasses.field(default=None, compare=False, repr=False)

    def args(self, data_dir: Path) -> list[str]:
        out = ["--database-type", self.backend, "--sqlite-path", str(data_dir)]
        if self.url is not None:
            out += ["--database-url", self.url]
        return [*out, *self.extra_args]

    def drop(self) -> None:
        if self.cleanup is not None:
            self.cleanup()


_counter = itertools.count(1)


def _sqlite(purpose: str) -> ServerDatabase:
    return ServerDatabase("sqlite")


def _server(backend: str) -> Callable[[str], ServerDatabase]:
    def make(purpose: str) -> ServerDatabase:
        name = f"{purpose}_{next(_counter)}"  # two servers of one purpose in a process never share a database
        url = services.database(backend, name)
        db_name = services.database_name(name)
        return ServerDatabase(backend, url, cleanup=lambda: services.drop_database(backend, db_name))

    return make


def _redis_findex(purpose: str) -> ServerDatabase:
    """A key prefix of its own on the test Redis (tests.support.redis_server); drop() removes its keys."""
    from tests.support import redis_server

    url = redis_server.service_url()
    prefix = redis_server.unique_prefix(purpose)
    return ServerDatabase(
        "redis-findex",
        redis_server.with_prefix(url, prefix),
        extra_args=("--redis-master-password", "test master password", "--redis-findex-label", "test-label"),
        cleanup=lambda: redis_server.delete_prefix(url, prefix),
    )


def _sqlite_secret(purpose: str) -> ServerDatabase:
    """SQLite with encryption at rest (kms.store.encrypted): every server test also runs through the wrapper.
    A 256-bit hex key, so that starting a server costs no Argon2id (tests/server/test_database_secret.py starts
    servers with passphrases)."""
    return ServerDatabase("sqlite", extra_args=("--database-secret", "c3" * 32))


SERVER_BACKENDS: dict[str, Callable[[str], ServerDatabase]] = {
    "sqlite": _sqlite,
    "postgresql": _server("postgresql"),
    "mysql": _server("mysql"),
    "sqlite+secret": _sqlite_secret,
    "redis-findex": _redis_findex,
}
