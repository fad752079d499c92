"""SQLAlchemy backend: SQLite, PostgreSQL (psycopg 3) and MySQL/MariaDB (PyMySQL) on the same tables.

Tables and schema versioning: kms.store.schema. Every request is one transaction:
- SQLite runs in WAL mode with secure_delete; write transactions start with BEGIN IMMEDIATE behind a
  process-wide then file lock, so writers queue instead of failing on an upgrade deadlock.
- PostgreSQL and MySQL run at READ COMMITTED from a connection pool (idle connections are pinged before use;
  PostgreSQL read sessions are plain autocommit statements, one round trip for a Get). Concurrent writers are
  arbitrated by the `version` column (UPDATE ... WHERE version = expected, rowcount checked: MySQL connections
  count matched rows, CLIENT.FOUND_ROWS, which SQLAlchemy's MySQL dialects set) and by the database's row
  locks. A statement sees every transaction committed before it started, so an object created through one
  node is found by a Locate on any other node once its Create has returned (all nodes must use the primary:
  with several PostgreSQL hosts, add `target_session_attrs=read-write`).
- Deadlocks, serialization failures, lock wait timeouts and lost connections raise TransientStoreError: the
  engine re-runs the whole request. A duplicate uid raises DuplicateError without poisoning a PostgreSQL
  transaction (INSERT ... ON CONFLICT DO NOTHING).

URLs: `sqlite:///path`; `postgresql://` or `postgres://` URLs and libpq key=value strings are handed to libpq
as they are (several `host:port` pairs, `target_session_attrs`, `sslmode`... all work); `mysql://` and
`mariadb://` use PyMySQL with utf8mb4 and strict SQL mode.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import and_, bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from kms.store import schema
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
from kms.store.schema import names, objects, parameters, read_access, tags

# Kept for callers of the pre-Alembic module; the schema revision is kms.store.schema.HEAD.
SCHEMA_VERSION = schema.LEGACY_DB_VERSION

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
_GET_MANY = select(*_COLS).where(objects.c.id.in_(bindparam("uids", expanding=True)))
_INSERT = insert(objects)
_PG_INSERT = pg_insert(objects).on_conflict_do_nothing(index_elements=[objects.c.id]).returning(objects.c.id)
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
_LOAD_CHUNK = 500  # uids per SELECT ... IN (...) in load_many

# Session settings of every MySQL connection: strict mode (too long a value is an error, not a silent
# truncation), no engine substitution.
_MYSQL_SQL_MODE = "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO"


class SqlStore(ObjectStore):
    """One SQL database. `url` as described in the module docstring; `pool_size` connections are kept open per
    process on server databases (one per gunicorn thread is enough) and as many again may be opened at peaks."""

    # A pooled connection idle for longer than this is pinged before use (see _ping_if_idle).
    ping_after_idle_s = 2.0

    def __init__(self, url: str, *, clear: bool = False, pool_size: int = 8) -> None:
        self.url = url
        kind = _kind(url)
        self.is_sqlite = kind == "sqlite"
        self.dialect = kind
        kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size}
        target: str = url
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["max_overflow"] = pool_size * 2
        else:
            # Recycle before MySQL's default 8 h wait_timeout. No pool_pre_ping: it costs a round trip on every
            # checkout (0.05 ms with psycopg, 0.25 ms with PyMySQL, i.e. 15-40 % of a Get); only connections that
            # sat idle are pinged (_ping_if_idle). One that dies while in use fails its transaction as transient
            # and the engine re-runs the request on a fresh connection (SQLAlchemy then discards the whole pool).
            kwargs["pool_recycle"] = 3600
            if kind == "postgresql":
                # Autocommit connections: a read session is its statements alone (one round trip for a Get
                # instead of BEGIN, SELECT, COMMIT), which under READ COMMITTED sees exactly what a transaction
                # would; write sessions send BEGIN ISOLATION LEVEL READ COMMITTED ... COMMIT themselves
                # (_server_transaction), as the SQLite path does.
                conninfo = _libpq_conninfo(url)
                target = "postgresql+psycopg://"
                kwargs["creator"] = lambda: _psycopg_connect(conninfo)
                kwargs["isolation_level"] = "AUTOCOMMIT"
            else:
                # MySQL starts transactions implicitly (no BEGIN round trip); every session ends with its own
                # COMMIT or ROLLBACK, so the pool's extra ROLLBACK at check-in is only a wasted round trip.
                target = _mysql_url(url)
                kwargs["connect_args"] = {"init_command": f"SET SESSION sql_mode='{_MYSQL_SQL_MODE}'"}
                kwargs["isolation_level"] = "READ COMMITTED"
                kwargs["pool_reset_on_return"] = None
        try:
            self.engine: Engine = create_engine(target, **kwargs)
        except (ArgumentError, ValueError) as exc:
            raise StoreError(f"invalid database URL: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
        else:
            event.listen(self.engine, "checkin", _mark_idle)
            event.listen(self.engine, "checkout", self._ping_if_idle)
        self._write_lock: threading.Lock | _WriteLock = threading.Lock()
        file_lock: _WriteLock | None = None
        if self.is_sqlite and self.engine.url.database not in (None, "", ":memory:"):
            file_lock = self._write_lock = _WriteLock(Path(self.engine.url.database + ".writelock"))
        try:
            schema.prepare(self.engine, clear=clear, file_lock=file_lock)
        except StoreError:
            self.close()
            raise
        except (SQLAlchemyError, sqlite3.Error) as exc:
            self.close()
            raise StoreError(f"cannot open the database: {_describe(exc)}: {_reason(exc)}") from exc

    def _ping_if_idle(self, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        """Pool checkout hook: a connection idle for a while may have been closed by the server (restart, idle
        timeout, failover); ping it, and on failure make the pool replace it (DisconnectionError), so a request
        after a quiet period never meets a dead connection. Busy connections are not pinged."""
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < self.ping_after_idle_s:
            return
        try:
            self.engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection lost while idle: {type(exc).__name__}") from exc

    @classmethod
    def sqlite(cls, directory: str | Path, *, clear: bool = False) -> SqlStore:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path / 'kms.sqlite'}", clear=clear)

    @classmethod
    def server(cls, database_type: str, url: str, *, clear: bool = False, pool_size: int = 8) -> SqlStore:
        """A PostgreSQL or MySQL store (`database_type` as in --database-type) from its --database-url."""
        kind = _kind(url)
        if kind != database_type:
            raise StoreError(f"--database-type {database_type} needs a {database_type} URL, not a {kind} one")
        return cls(url, clear=clear, pool_size=pool_size)

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
                elif self.dialect == "postgresql":
                    yield from self._postgresql_transaction(conn, write)
                else:
                    with conn.begin():
                        yield _SqlSession(conn, self, write)
        except DBAPIError as exc:
            raise _classify(exc) from exc
        except sqlite3.Error as exc:
            raise _classify_sqlite(exc) from exc
        except PoolTimeoutError as exc:
            raise TransientStoreError("no free database connection in the pool") from exc

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

    def _postgresql_transaction(self, conn: Connection, write: bool) -> Iterator[Session]:
        if not write:
            yield _SqlSession(conn, self, write)  # autocommit: each statement sees every earlier commit
            return
        conn.exec_driver_sql("BEGIN ISOLATION LEVEL READ COMMITTED")
        ok = False
        try:
            yield _SqlSession(conn, self, write)
            ok = True
        finally:
            if ok:
                conn.exec_driver_sql("COMMIT")
            else:
                try:
                    conn.exec_driver_sql("ROLLBACK")
                except DBAPIError:
                    conn.invalidate()  # never hand a connection back with a transaction open

    def scrub(self) -> None:
        """SQLite: truncate the WAL (secure_delete already zeroes freed pages). PostgreSQL and MySQL: nothing.
        Their dead row versions, WAL/binlog and undo are theirs to recycle (autovacuum, InnoDB purge); a VACUUM
        per Destroy would not erase WAL or backups either. Key material must reach them already wrapped: that
        is what the database secret (encryption at rest) is for."""
        if self.is_sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def get_parameter(self, name: str) -> str | None:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(parameters.c.value).where(parameters.c.name == name)).first()
        except DBAPIError as exc:
            raise _classify(exc) from exc
        return None if row is None else row[0]

    def put_parameter_once(self, name: str, value: str) -> str:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(parameters).values(name=name, value=value))
            return value
        except IntegrityError:
            pass  # another process or node stored it first: theirs wins
        except DBAPIError as exc:
            raise _classify(exc) from exc
        stored = self.get_parameter(name)
        if stored is None:
            raise StoreError(f"the database parameter {name} vanished while it was being written")
        return stored

    def close(self) -> None:
        self.engine.dispose()
        if isinstance(self._write_lock, _WriteLock):
            self._write_lock.close()


def _kind(url: str) -> str:
    """sqlite, postgresql or mysql, from the URL scheme; a string without a scheme is a libpq conninfo."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres") or (not scheme and "=" in url):
        return "postgresql"
    if scheme in ("mysql", "mariadb"):
        return "mysql"
    raise StoreError("the database URL must start with sqlite://, postgresql://, postgres://, mysql:// or mariadb://")


def _libpq_conninfo(url: str) -> str:
    """The URL libpq parses itself: only a SQLAlchemy driver suffix (postgresql+psycopg://) is removed."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url, flags=re.IGNORECASE)


def _psycopg_connect(conninfo: str) -> Any:
    import psycopg

    return psycopg.connect(conninfo, autocommit=False)


def _mysql_url(url: str) -> str:
    parsed = make_url(url).set(drivername="mysql+pymysql")
    if "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


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


# Errors worth re-running the whole transaction for. PostgreSQL by SQLSTATE: class 40 (serialization failure,
# deadlock), 08 (connection), 53 (too many connections, out of memory), 57P0x (server shutting down or
# restarting), 55P03 (lock not available). MySQL/MariaDB by error number.
_PG_TRANSIENT_CLASSES = ("40", "08", "53", "57P")
_PG_TRANSIENT_CODES = frozenset({"55P03"})
_MYSQL_TRANSIENT_CODES = frozenset(
    {
        1020,  # record changed since last read (MariaDB snapshot isolation)
        1040,  # too many connections
        1053,  # server shutdown in progress
        1205,  # lock wait timeout
        1213,  # deadlock
        1927,  # connection killed
        2002,  # cannot connect (socket)
        2003,  # cannot connect (TCP)
        2006,  # server has gone away
        2013,  # lost connection during query
        4031,  # disconnected by the server (idle timeout)
    }
)


def _classify(exc: DBAPIError) -> StoreError:
    """Map a driver error to the store's errors: transient (the engine retries the request) or not."""
    orig = exc.orig
    if exc.connection_invalidated:
        return TransientStoreError(f"database connection lost: {_describe(exc)}")
    if isinstance(orig, sqlite3.Error):
        return _classify_sqlite(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith(_PG_TRANSIENT_CLASSES) or sqlstate in _PG_TRANSIENT_CODES:
            return TransientStoreError(f"database busy: {_describe(exc)}")
        return StoreError(f"database error: {_describe(exc)}")
    code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
    if code in _MYSQL_TRANSIENT_CODES:
        return TransientStoreError(f"database busy: {_describe(exc)}")
    return StoreError(f"database error: {_describe(exc)}")


def _classify_sqlite(exc: BaseException) -> StoreError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return TransientStoreError(f"database busy: {type(exc).__name__}")
    return StoreError(f"database error: {type(exc).__name__}")


def _reason(exc: BaseException) -> str:
    """The driver's own words, for start-up failures only (unreachable host, refused login, missing database):
    they name the host, user and database, never a password; statements and their parameters are cut off."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    text = args[-1] if args and isinstance(args[-1], str) else str(orig)
    return (text.strip().splitlines() or ["?"])[0][:300]


def _describe(exc: BaseException) -> str:
    """The driver's class and code, for logs: never the statement or its parameters (they hold key material)."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlstate", None) or (orig.args[0] if orig.args and isinstance(orig.args[0], int) else "")
    return f"{type(orig).__name__}{f' {code}' if code else ''}"


def _mark_idle(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _is_duplicate(exc: IntegrityError) -> bool:
    orig = exc.orig
    if isinstance(orig, sqlite3.IntegrityError):
        return "unique" in str(orig).lower()
    return bool(orig is not None and orig.args and orig.args[0] == 1062)  # MySQL ER_DUP_ENTRY


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
        if not self.writable:  # nothing can have been written: nothing to undo (and no transaction block)
            yield
            return
        self.conn.exec_driver_sql("SAVEPOINT batch_item")
        try:
            yield
        except BaseException:
            self.conn.exec_driver_sql("ROLLBACK TO SAVEPOINT batch_item")
            self.conn.exec_driver_sql("RELEASE SAVEPOINT batch_item")
            raise
        self.conn.exec_driver_sql("RELEASE SAVEPOINT batch_item")

    def load_many(self, uids: Sequence[str]) -> list[StoredObject]:
        """The objects of `uids` that exist, in the order given: one query per chunk of uids, not per object
        (a round trip each on a server database)."""
        found: dict[str, StoredObject] = {}
        for i in range(0, len(uids), _LOAD_CHUNK):
            for row in self.conn.execute(_GET_MANY, {"uids": list(uids[i : i + _LOAD_CHUNK])}):
                found[row[0]] = _row_to_obj(row)
        return [found[u] for u in uids if u in found]

    def insert(self, obj: StoredObject) -> None:
        self._writing()
        dialect = self.store.dialect
        if dialect == "postgresql":
            # ON CONFLICT: a duplicate must not abort the transaction (the batch goes on, or is rolled back).
            if self.conn.execute(_PG_INSERT, {"id": obj.uid, **_values(obj)}).first() is None:
                raise DuplicateError(f"an object with id {obj.uid!r} already exists")
        else:
            row = {"id": obj.uid, **_values(obj)}
            if dialect == "sqlite":  # one writer at a time: max + 1 cannot race (servers use AUTO_INCREMENT)
                row["seq"] = int(self.conn.execute(_NEXT_SEQ).scalar_one()) + 1
            try:
                self.conn.execute(_INSERT, row)
            except IntegrityError as exc:
                if _is_duplicate(exc):
                    raise DuplicateError(f"an object with id {obj.uid!r} already exists") from None
                raise
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
