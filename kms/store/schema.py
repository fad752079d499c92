"""The SQL schema (SQLite, PostgreSQL, MySQL/MariaDB) and its versioning.

Tables: `objects` (serialised object + indexed columns + `version` for optimistic concurrency + `seq`, the
creation order), `tags` and `names` (search indexes), `read_access` (per-user grants) and `parameters`.

Versioning is Alembic's: the revision a database is at is the row of `alembic_version`, the revisions are the
scripts in `kms/store/migrations/versions/` (shipped as package files) and `REVISIONS` below lists them in
order. `prepare(engine)` runs at every start:
- the fast path, taken by every start but the first: one SELECT of `alembic_version`; at `HEAD`, done. Alembic
  itself is not even imported (it costs ~0.2 s, and tests start many servers);
- an empty database is created from the tables below and stamped `HEAD`, Alembic's own recipe for new databases
  ("create_all, then stamp"); a test checks that running the revision scripts gives the same schema;
- a database at an older known revision is upgraded by Alembic; one at a revision this code does not know was
  written by a newer server: `StoreError`, nothing is touched;
- a database from before Alembic (SQLite only: `parameters.db_version` = "2", no `alembic_version`) is the
  schema of the first revision: stamped, then upgraded like any other.
The slow paths run under a database-wide lock (PostgreSQL transaction-scoped advisory lock, MySQL GET_LOCK,
an exclusive lock file for SQLite), so several nodes starting at once on one empty database create it once.

Types chosen per backend:
- identifiers, owners, tags and names are VARCHAR on SQLite and PostgreSQL, VARBINARY on MySQL: MySQL's
  character collations compare case-insensitively and (even the `_bin` ones, PAD SPACE) ignore trailing spaces,
  so "Key" and "key " would be the same uid or tag there; bytes compare exactly. Lengths are in bytes on MySQL
  (InnoDB keys are limited to 3072 bytes); PostgreSQL and SQLite have no limit.
- serialised objects are LargeBinary: BLOB on SQLite, BYTEA on PostgreSQL, LONGBLOB on MySQL (a plain MySQL
  BLOB stops at 64 KiB); JSON copies of tags and names are LONGTEXT on MySQL.
- `seq` is filled by the database on servers (PostgreSQL identity, MySQL AUTO_INCREMENT), so nodes inserting at
  once never draw the same number; SQLite has one writer at a time and the store gives max(seq) + 1.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator, TypeEngine

from kms.store.base import StoreError

log = logging.getLogger(__name__)

# Every revision in kms/store/migrations/versions, oldest first (a test checks it against the scripts).
REVISIONS: tuple[str, ...] = ("0001_baseline",)
HEAD = REVISIONS[-1]
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Pre-Alembic databases recorded their schema here; "2" is the schema of the first revision.
LEGACY_DB_VERSION = "2"
_MYSQL = ("mysql", "mariadb")


class Key(TypeDecorator[str]):
    """A string compared byte for byte: VARCHAR on SQLite/PostgreSQL, VARBINARY(`length` bytes) on MySQL."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.max_bytes = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(self.max_bytes))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(String())  # no arbitrary limit where the database has none
        return dialect.type_descriptor(String(self.max_bytes))

    # Strings are bound as they are (MySQL compares a string with a VARBINARY as bytes); only MySQL needs
    # its bytes decoded on the way back, so the other backends get no per-value conversion at all.
    def bind_processor(self, dialect: Dialect) -> None:  # type: ignore[override]
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name in _MYSQL:
            return _decode
        return None


def _decode(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _blob() -> TypeEngine[bytes]:
    return LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL)


def _long_text() -> TypeEngine[str]:
    return Text().with_variant(mysql.LONGTEXT(), *_MYSQL)


_TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

metadata = MetaData()
objects = Table(
    "objects",
    metadata,
    Column("id", Key(255), primary_key=True),
    # Identity renders on PostgreSQL only; MySQL gets AUTO_INCREMENT below, SQLite a value from the store.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), Identity(), nullable=False),
    Column("object", _blob(), nullable=False),
    Column("attributes", _blob(), nullable=False),
    Column("object_type", Integer, nullable=False),
    Column("state", Integer, nullable=False),
    Column("owner", Key(1024), nullable=False),
    Column("algorithm", Integer),
    Column("length", Integer),
    Column("version", BigInteger, nullable=False),
    # Copies of the object's tags and names, so reading an object is one query; the `tags` and `names` tables
    # are the search indexes.
    Column("tags_json", _long_text(), nullable=False, default="[]"),
    Column("names_json", _long_text(), nullable=False, default="[]"),
    Index("ix_objects_owner_type", "owner", "object_type"),
    Index("ix_objects_seq", "seq"),
    **_TABLE_OPTIONS,
)
# MySQL accepts AUTO_INCREMENT only on an indexed column: added once ix_objects_seq exists (SQLAlchemy creates
# a table's indexes before its after_create event).
MYSQL_SEQ_DDL = "ALTER TABLE objects MODIFY seq BIGINT NOT NULL AUTO_INCREMENT"
event.listen(objects, "after_create", DDL(MYSQL_SEQ_DDL).execute_if(dialect=_MYSQL))

tags = Table(
    "tags",
    metadata,
    Column("id", Key(255), nullable=False),
    Column("tag", Key(1024), nullable=False),
    UniqueConstraint("id", "tag"),
    Index("ix_tags_tag", "tag"),
    **_TABLE_OPTIONS,
)
names = Table(
    "names",
    metadata,
    Column("id", Key(255), nullable=False),
    Column("name", Key(1024), nullable=False),
    Index("ix_names_name", "name"),
    Index("ix_names_id", "id"),
    **_TABLE_OPTIONS,
)
read_access = Table(
    "read_access",
    metadata,
    Column("id", Key(255), nullable=False),
    Column("userid", Key(1024), nullable=False),
    Column("permissions", String(2048), nullable=False),
    UniqueConstraint("id", "userid"),
    **_TABLE_OPTIONS,
)
parameters = Table(
    "parameters",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text),  # JSON documents (encryption parameters), not just short strings
    **_TABLE_OPTIONS,
)

# Alembic's own version table, declared exactly as Alembic creates it (so a stamp here equals `alembic stamp`).
version_table = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def newer_schema_error(revision: str) -> StoreError:
    return StoreError(
        f"database schema {revision} is newer than this server (knows up to {HEAD}); upgrade the server"
    )


def prepare(engine: Engine, *, clear: bool = False, file_lock: AbstractContextManager[None] | None = None) -> None:
    """Bring the database to HEAD (creating, stamping or upgrading it), or raise StoreError if it is newer.

    clear: drop this server's tables first (--clear-database). file_lock: the exclusive lock serialising
    SQLite writers across processes (the database-side locks serve the server databases).
    """
    if not clear and _revision_fast(engine) == HEAD:
        return
    with engine.connect() as plain:
        # One transaction for the whole check-and-create on PostgreSQL (transactional DDL, and the advisory
        # lock is held until it commits), whatever the store's connections use otherwise (autocommit).
        conn = plain if plain.dialect.name == "sqlite" else plain.execution_options(isolation_level="READ COMMITTED")
        with _schema_lock(conn, file_lock):
            _prepare_locked(conn, clear)


def _prepare_locked(conn: Connection, clear: bool) -> None:
    if clear:
        metadata.drop_all(conn)
        version_table.drop(conn, checkfirst=True)
    present = set(inspect(conn).get_table_names())
    if version_table.name in present:
        revision = _revision(conn)
    elif objects.name in present:
        revision = _legacy_revision(conn)
    else:
        metadata.create_all(conn)
        conn.execute(parameters.insert().values(name="db_version", value=LEGACY_DB_VERSION))
        _stamp(conn, HEAD)
        conn.commit()
        log.info("created the database schema at revision %s", HEAD)
        return
    if revision not in REVISIONS:
        raise newer_schema_error(revision)
    if version_table.name not in present:
        _stamp(conn, revision)  # adopt a pre-Alembic database
    if revision != HEAD:
        log.info("upgrading the database schema from %s to %s", revision, HEAD)
        run_alembic(conn, "upgrade", HEAD)
    conn.commit()


def _revision_fast(engine: Engine) -> str | None:
    """The stamped revision, or None when it cannot be read that simply (no table yet, any error: the slow path
    looks again, under the lock, and reports real failures)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(version_table.c.version_num)).scalars().all()
    except DBAPIError:
        return None
    return rows[0] if len(rows) == 1 else None


def _revision(conn: Connection) -> str:
    rows = conn.execute(select(version_table.c.version_num)).scalars().all()
    if len(rows) != 1:
        raise StoreError(f"the database has {len(rows)} schema revisions in alembic_version; expected one")
    return rows[0]


def _legacy_revision(conn: Connection) -> str:
    """The revision of a database created before Alembic, from its `parameters.db_version`."""
    row = conn.execute(select(parameters.c.value).where(parameters.c.name == "db_version")).first()
    if row is None or row[0] != LEGACY_DB_VERSION:
        found = "none" if row is None else repr(row[0])
        raise StoreError(
            f"the database has no schema revision and db_version {found} (expected {LEGACY_DB_VERSION!r}); "
            "it was not created by this server"
        )
    return REVISIONS[0]


def _stamp(conn: Connection, revision: str) -> None:
    version_table.create(conn, checkfirst=True)
    conn.execute(version_table.delete())
    conn.execute(version_table.insert().values(version_num=revision))


def run_alembic(conn: Connection, command: str, revision: str) -> None:
    """Run an Alembic command ("upgrade", "downgrade", "stamp") on `conn`, with the scripts of this package and
    no alembic.ini (the connection is handed to migrations/env.py through the config's attributes)."""
    from alembic import command as commands
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    getattr(commands, command)(config, revision)


# Key of the PostgreSQL advisory lock taken while the schema is created or upgraded (advisory locks are per
# database, so one constant serves every database of a cluster).
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"zt-kms schema").digest()[:8], "big", signed=True)
_MYSQL_LOCK_WAIT_S = 120


@contextmanager
def _schema_lock(conn: Connection, file_lock: AbstractContextManager[None] | None) -> Iterator[None]:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # Transaction-scoped: released by the commit that publishes the schema (DDL is transactional there).
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        yield
    elif dialect in _MYSQL:
        # Session-scoped (MySQL commits DDL statement by statement); lock names are server-wide, so the name
        # carries the database's.
        name = conn.execute(text("SELECT CONCAT('zt-kms-schema:', SHA1(DATABASE()))")).scalar_one()[:64]
        got = conn.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": _MYSQL_LOCK_WAIT_S}).scalar_one()
        if got != 1:
            raise StoreError(f"another server held the schema lock for {_MYSQL_LOCK_WAIT_S} s; try again")
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
    else:
        with file_lock or _process_lock:
            yield


# In-memory SQLite databases are private to a process: a process-wide mutex is enough there.
_process_lock: AbstractContextManager[None] = threading.Lock()
