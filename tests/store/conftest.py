"""The storage backends the conformance suite (test_store_conformance.py) runs on, by id.

`STORE_BACKENDS[id]` is a context manager factory `(tmp_path) -> StoreTarget`: it gives the test an empty database
of that backend and a way to open stores on it (several stores on one database are several nodes), and cleans up
afterwards. Another backend, or a variant (encryption at rest), is one more entry; the suite needs nothing else.

SQL server databases: one per backend and test process (`kmst_<host>_<pid>_store`, tests.support.services),
created once and emptied before each test, so `pytest -n auto` workers never share one.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from kms.store.base import ObjectStore
from kms.store.sql import SqlStore
from tests.support import services


@dataclasses.dataclass
class StoreTarget:
    """One backend bound to one test's empty database."""

    backend: str
    # open(clear=False) -> a new store on this test's database (another node); closed after the test.
    open: Callable[..., ObjectStore]
    # Write sessions queue on one lock (SQLite): a thread cannot hold two at once, so interleavings are not built.
    serial_writers: bool = False
    # Writes are checked at commit, not locked when made (Redis WATCH/MULTI/EXEC): of two interleaved writers of one
    # object the first to commit wins and the other gets ConflictError, whichever of them wrote first.
    optimistic_commit: bool = False
    # The SQLAlchemy URL, for the SQL-only tests (tests/store/test_sql_schema.py).
    url: str | None = None


StoreFactory = Callable[[Path], contextlib.AbstractContextManager[StoreTarget]]


class _Opened:
    """Stores opened during a test, closed at its end."""

    def __init__(self, make: Callable[..., ObjectStore]) -> None:
        self.make = make
        self.stores: list[ObjectStore] = []

    def __call__(self, **kw: Any) -> ObjectStore:
        store = self.make(**kw)
        self.stores.append(store)
        return store

    def close(self) -> None:
        for s in self.stores:
            with contextlib.suppress(Exception):
                s.close()


@contextlib.contextmanager
def _sqlite(tmp_path: Path) -> Iterator[StoreTarget]:
    directory = tmp_path / "sqlite"
    opened = _Opened(lambda clear=False: SqlStore.sqlite(directory, clear=clear))
    try:
        yield StoreTarget("sqlite", opened, serial_writers=True, url=f"sqlite:///{directory / 'kms.sqlite'}")
    finally:
        opened.close()


_worker_databases: dict[str, str] = {}


def _emptied(backend: str) -> str:
    """This process's database for `backend`, created at first use, emptied (rows, not schema) each time."""
    url = _worker_databases.get(backend)
    if url is None:
        url = _worker_databases[backend] = services.database(backend, "store")
    store = SqlStore(url)  # creates the schema the first time, else one SELECT
    try:
        with store.engine.begin() as conn:
            if backend == "postgresql":
                conn.execute(text("TRUNCATE objects, tags, names, read_access RESTART IDENTITY"))
            else:  # DELETE: much cheaper than MySQL's TRUNCATE (a DDL) on tables of a few rows
                for table in ("objects", "tags", "names", "read_access"):
                    conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(text("DELETE FROM parameters WHERE name <> 'db_version'"))
    finally:
        store.close()
    return url


def _server_sql(backend: str) -> StoreFactory:
    @contextlib.contextmanager
    def factory(tmp_path: Path) -> Iterator[StoreTarget]:
        url = _emptied(backend)
        opened = _Opened(lambda clear=False: SqlStore(url, clear=clear))
        try:
            yield StoreTarget(backend, opened, url=url)
        finally:
            opened.close()

    return factory


@contextlib.contextmanager
def _redis_findex(tmp_path: Path) -> Iterator[StoreTarget]:
    """A key prefix of its own on the test Redis (tests.support.redis_server), removed afterwards; a cheap
    Argon2id cost (the cost is a store parameter, tested in test_redis_findex.py)."""
    from kms.store.redis_findex import KdfParams, RedisFindexStore
    from tests.support import redis_server

    url = redis_server.service_url()
    prefix = redis_server.unique_prefix("conformance")
    cheap = KdfParams(iterations=1, lanes=1, memory_cost=1024)

    def make(clear: bool = False) -> ObjectStore:
        return RedisFindexStore(url, "conformance password", "label", prefix=prefix, clear=clear, kdf=cheap)

    opened = _Opened(make)
    try:
        yield StoreTarget("redis-findex", opened, optimistic_commit=True)
    finally:
        opened.close()
        redis_server.delete_prefix(url, prefix)


STORE_BACKENDS: dict[str, StoreFactory] = {
    "sqlite": _sqlite,
    "postgresql": _server_sql("postgresql"),
    "mysql": _server_sql("mysql"),
    "redis-findex": _redis_findex,
}
SQL_BACKENDS = ("sqlite", "postgresql", "mysql")


def _encrypted(base: StoreFactory) -> StoreFactory:
    """`base` seen through encryption at rest (kms.store.encrypted), as the server opens it with a database secret;
    a 256-bit hex key, so that opening a store costs no Argon2id (tests/store/test_encrypted.py covers that)."""

    @contextlib.contextmanager
    def factory(tmp_path: Path) -> Iterator[StoreTarget]:
        from kms.store.encrypted import EncryptedStore

        with base(tmp_path) as target:
            inner_open = target.open

            def make(clear: bool = False) -> ObjectStore:
                return EncryptedStore.open(inner_open(clear=clear), "5e" * 32)

            yield dataclasses.replace(target, backend=target.backend + "+secret", open=make)

    return factory


STORE_BACKENDS.update({f"{b}+secret": _encrypted(STORE_BACKENDS[b]) for b in SQL_BACKENDS})


@pytest.fixture(params=list(STORE_BACKENDS))
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    with STORE_BACKENDS[request.param](tmp_path) as target:
        yield target


@pytest.fixture()
def store(store_target: StoreTarget) -> ObjectStore:
    return store_target.open()


@pytest.fixture(params=SQL_BACKENDS)
def sql_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    """The SQL backends only (schema and driver tests)."""
    with STORE_BACKENDS[request.param](tmp_path) as target:
        yield target
