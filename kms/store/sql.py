"""SQLAlchemy backend (SQLite here; PostgreSQL and MySQL reuse the same tables).

Tables: `objects` (serialised object + indexed columns + version for optimistic concurrency), `tags`,
`names`, `read_access` (per-user grants) and `parameters` (schema version). SQLite runs in WAL mode with
secure_delete, and write transactions start with BEGIN IMMEDIATE so concurrent writers queue on the lock
instead of failing on an upgrade deadlock.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from kms.store.base import (
    ConflictError,
    DuplicateError,
    ObjectStore,
    Query,
    ReadOnlySession,
    Session,
    StoredObject,
    StoreError,
    TransientStoreError,
)

SCHEMA_VERSION = "2"

metadata = MetaData()
objects = Table(
    "objects",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("object", LargeBinary, nullable=False),
    Column("attributes", LargeBinary, nullable=False),
    Column("object_type", Integer, nullable=False),
    Column("state", Integer, nullable=False),
    Column("owner", String(255), nullable=False),
    Column("algorithm", Integer),
    Column("length", Integer),
    Column("version", BigInteger, nullable=False),
    # Copies of the object's tags and names, so reading an object is one query; the `tags` and `names` tables
    # are the search indexes.
    Column("tags_json", Text, nullable=False, default="[]"),
    Column("names_json", Text, nullable=False, default="[]"),
    Index("ix_objects_owner_type", "owner", "object_type"),
    Index("ix_objects_seq", "seq"),
)
tags = Table(
    "tags",
    metadata,
    Column("id", String(128), nullable=False),
    Column("tag", String(255), nullable=False),
    UniqueConstraint("id", "tag"),
    Index("ix_tags_tag", "tag"),
)
names = Table(
    "names",
    metadata,
    Column("id", String(128), nullable=False),
    Column("name", String(255), nullable=False),
    Index("ix_names_name", "name"),
    Index("ix_names_id", "id"),
)
read_access = Table(
    "read_access",
    metadata,
    Column("id", String(128), nullable=False),
    Column("userid", String(255), nullable=False),
    Column("permissions", String(2048), nullable=False),
    UniqueConstraint("id", "userid"),
)
parameters = Table(
    "parameters",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", String(256)),
)

_COLS = (
    objects.c.id,
    objects.c.object_type,
    objects.c.state,
    objects.c.owner,
    objects.c.object,
    objects.c.attributes,
    objects.c.algorithm,
    objects.c.length,
    objects.c.version,
    objects.c.tags_json,
    objects.c.names_json,
)
# Statements built once: per request only the parameters change (and SQLAlchemy's compiled cache hits).
_GET = select(*_COLS).where(objects.c.id == bindparam("uid"))
_INSERT = insert(objects)
_UPDATE = (
    update(objects)
    .where(and_(objects.c.id == bindparam("b_id"), objects.c.version == bindparam("b_expected")))
    .values(
        object=bindparam("object"),
        attributes=bindparam("attributes"),
        object_type=bindparam("object_type"),
        state=bindparam("state"),
        owner=bindparam("owner"),
        algorithm=bindparam("algorithm"),
        length=bindparam("length"),
        version=bindparam("version"),
        tags_json=bindparam("tags_json"),
        names_json=bindparam("names_json"),
    )
)
_NEXT_SEQ = select(func.coalesce(func.max(objects.c.seq), 0))


class SqlStore(ObjectStore):
    def __init__(self, url: str, *, clear: bool = False, pool_size: int = 8) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size * 2
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size * 2
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
        self._write_lock: threading.Lock | _WriteLock = threading.Lock()
        if self.is_sqlite and self.engine.url.database not in (None, "", ":memory:"):
            self._write_lock = _WriteLock(Path(self.engine.url.database + ".writelock"))
        try:
            if clear:
                metadata.drop_all(self.engine)
            metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                row = conn.execute(select(parameters.c.value).where(parameters.c.name == "db_version")).first()
                if row is None:
                    conn.execute(insert(parameters).values(name="db_version", value=SCHEMA_VERSION))
                elif row[0] != SCHEMA_VERSION:
                    raise StoreError(
                        f"database schema version {row[0]} is not the version {SCHEMA_VERSION} this server uses"
                    )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {type(exc).__name__}") from exc

    @classmethod
    def sqlite(cls, directory: str | Path, *, clear: bool = False) -> SqlStore:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path / 'kms.sqlite'}", clear=clear)

    @contextmanager
    def session(self, write: bool) -> Iterator[Session]:
        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    if write:
                        # Writers of this process queue here in order; SQLite's own busy handler (sleep and
                        # retry) then only arbitrates between processes, so latency stays fair under load.
                        with self._write_lock:
                            yield from self._sqlite_transaction(conn, write)
                    else:
                        yield from self._sqlite_transaction(conn, write)
                else:
                    with conn.begin():
                        yield _SqlSession(conn, self, write)
        except OperationalError as exc:
            raise _classify(exc.orig) from exc
        except sqlite3.OperationalError as exc:
            raise _classify(exc) from exc

    def _sqlite_transaction(self, conn: Connection, write: bool) -> Iterator[Session]:
        # Transaction control straight on the driver connection: the hot path of every request.
        raw = conn.connection.driver_connection
        raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")  # type: ignore[union-attr]
        ok = False
        try:
            yield _SqlSession(conn, self, write)
            ok = True
        finally:
            raw.execute("COMMIT" if ok else "ROLLBACK")  # type: ignore[union-attr]

    def scrub(self) -> None:
        if self.is_sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def get_parameter(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(parameters.c.value).where(parameters.c.name == name)).first()
            return None if row is None else row[0]

    def close(self) -> None:
        self.engine.dispose()
        if isinstance(self._write_lock, _WriteLock):
            self._write_lock.close()


class _WriteLock:
    """One writer at a time across the threads and processes sharing a SQLite file.

    Threads queue on a mutex, processes on an exclusive flock of a lock file: the kernel wakes the next waiter
    at once, where SQLite's own busy handler sleeps and retries (tens to hundreds of milliseconds of tail latency
    with several gunicorn workers).
    """

    def __init__(self, path: Path) -> None:
        self._mutex = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        self._mutex.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def close(self) -> None:
        os.close(self._fd)


def _classify(exc: BaseException | None) -> StoreError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text or "serializ" in text or "deadlock" in text:
        return TransientStoreError(f"database busy: {type(exc).__name__}")
    return StoreError(f"database error: {type(exc).__name__}")


def _sqlite_on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Autocommit at the driver level: we issue BEGIN IMMEDIATE / COMMIT ourselves.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _row_to_obj(row: Sequence) -> StoredObject:
    return StoredObject(
        uid=row[0],
        object_type=row[1],
        state=row[2],
        owner=row[3],
        object_bytes=row[4],
        attributes_bytes=row[5],
        algorithm=row[6],
        length=row[7],
        version=row[8],
        tags=frozenset(json.loads(row[9])),
        names=tuple(json.loads(row[10])),
    )


def _values(obj: StoredObject) -> dict:
    return {
        "object": obj.object_bytes,
        "attributes": obj.attributes_bytes,
        "object_type": obj.object_type,
        "state": obj.state,
        "owner": obj.owner,
        "algorithm": obj.algorithm,
        "length": obj.length,
        "version": obj.version,
        "tags_json": json.dumps(sorted(obj.tags)),
        "names_json": json.dumps(list(obj.names)),
    }


class _SqlSession(Session):
    def __init__(self, conn: Connection, store: SqlStore, writable: bool) -> None:
        self.conn = conn
        self.store = store
        self.writable = writable

    def _writing(self) -> None:
        if not self.writable:
            raise ReadOnlySession()

    def get(self, uid: str) -> StoredObject | None:
        row = self.conn.execute(_GET, {"uid": uid}).first()
        return None if row is None else _row_to_obj(row)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self.conn.exec_driver_sql("SAVEPOINT batch_item")
        try:
            yield
        except BaseException:
            self.conn.exec_driver_sql("ROLLBACK TO SAVEPOINT batch_item")
            self.conn.exec_driver_sql("RELEASE SAVEPOINT batch_item")
            raise
        self.conn.exec_driver_sql("RELEASE SAVEPOINT batch_item")

    def load_many(self, uids: Sequence[str]) -> list[StoredObject]:
        return [o for o in (self.get(u) for u in uids) if o is not None]

    def _next_seq(self) -> int:
        return int(self.conn.execute(_NEXT_SEQ).scalar_one()) + 1

    def insert(self, obj: StoredObject) -> None:
        self._writing()
        try:
            self.conn.execute(_INSERT, {"id": obj.uid, "seq": self._next_seq(), **_values(obj)})
        except IntegrityError:
            raise DuplicateError(f"an object with id {obj.uid!r} already exists") from None
        self._write_index(obj)

    def _write_index(self, obj: StoredObject) -> None:
        if obj.tags:
            self.conn.execute(insert(tags), [{"id": obj.uid, "tag": t} for t in sorted(obj.tags)])
        if obj.names:
            self.conn.execute(insert(names), [{"id": obj.uid, "name": n} for n in obj.names])

    def update(self, obj: StoredObject, expected_version: int) -> None:
        self._writing()
        result = self.conn.execute(_UPDATE, {"b_id": obj.uid, "b_expected": expected_version, **_values(obj)})
        if result.rowcount != 1:
            raise ConflictError(f"object {obj.uid!r} was changed concurrently")
        self.conn.execute(delete(tags).where(tags.c.id == obj.uid))
        self.conn.execute(delete(names).where(names.c.id == obj.uid))
        self._write_index(obj)

    def delete(self, uid: str) -> None:
        self._writing()
        self.conn.execute(delete(objects).where(objects.c.id == uid))
        self.conn.execute(delete(tags).where(tags.c.id == uid))
        self.conn.execute(delete(names).where(names.c.id == uid))
        self.conn.execute(delete(read_access).where(read_access.c.id == uid))

    def find(self, query: Query) -> list[str]:
        stmt = select(objects.c.id).order_by(objects.c.seq)
        conds = []
        if query.owner is not None:
            conds.append(objects.c.owner == query.owner)
        if query.object_type is not None:
            conds.append(objects.c.object_type == query.object_type)
        if query.algorithm is not None:
            conds.append(objects.c.algorithm == query.algorithm)
        if query.length is not None:
            conds.append(objects.c.length == query.length)
        if query.exclude_states:
            conds.append(objects.c.state.not_in(list(query.exclude_states)))
        if query.uids is not None:
            conds.append(objects.c.id.in_(list(query.uids)))
        wanted = sorted(set(query.tags))
        if wanted:
            sub = (
                select(tags.c.id)
                .where(tags.c.tag.in_(wanted))
                .group_by(tags.c.id)
                .having(func.count(func.distinct(tags.c.tag)) == len(wanted))
            )
            conds.append(objects.c.id.in_(sub))
        for n in set(query.names):
            conds.append(objects.c.id.in_(select(names.c.id).where(names.c.name == n)))
        if conds:
            stmt = stmt.where(and_(*conds))
        return list(self.conn.execute(stmt).scalars().all())
