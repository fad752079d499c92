"""The SQL backends beyond the common suite: schema versioning (Alembic), start-up races, URLs, and how driver
errors from real servers are classified (deadlocks, killed connections)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from kms.store import schema
from kms.store.base import Query, StoredObject, StoreError, TransientStoreError
from kms.store.sql import SqlStore
from tests.store.conftest import StoreTarget
from tests.support import services
from tests.support.server import kms_server_command

FUTURE = "9999_from_the_future"


def _fresh_url(target: StoreTarget, tmp_path: Path, purpose: str) -> str:
    """An empty database of the target's backend (no schema at all)."""
    if target.backend == "sqlite":
        return f"sqlite:///{tmp_path / (purpose + '.sqlite')}"
    return services.database(target.backend, purpose)


def _engine_url(url: str) -> str:
    """A SQLAlchemy URL for inspecting a database from the tests."""
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    if url.startswith("mysql://"):
        return url.replace("mysql://", "mysql+pymysql://", 1)
    return url


def _stamp(url: str, revision: str) -> None:
    engine = create_engine(_engine_url(url))
    with engine.begin() as conn:
        conn.execute(schema.version_table.delete())
        conn.execute(schema.version_table.insert().values(version_num=revision))
    engine.dispose()


def _describe_schema(url: str) -> dict:
    """Tables, columns (type, nullability, identity/auto-increment), keys and indexes, as the database reports."""
    engine = create_engine(_engine_url(url))
    out: dict = {}
    with engine.connect() as conn:
        insp = inspect(conn)
        for table in sorted(insp.get_table_names()):
            cols = {
                c["name"]: (
                    str(c["type"]),
                    c["nullable"],
                    bool(c.get("identity")) or bool(c.get("autoincrement") is True and table == "objects"),
                )
                for c in insp.get_columns(table)
            }
            out[table] = {
                "columns": cols,
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
                "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                  for i in insp.get_indexes(table)),
            }
        if conn.dialect.name == "mysql":
            extra = conn.execute(text("SHOW CREATE TABLE objects")).one()[1]
            out["objects"]["seq_auto_increment"] = "`seq` bigint(20) NOT NULL AUTO_INCREMENT" in extra
    engine.dispose()
    return out


def test_revisions_list_matches_the_migration_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    chain = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(chain) == schema.REVISIONS
    assert scripts.get_current_head() == schema.HEAD


def test_a_new_database_is_created_at_head(sql_target: StoreTarget, tmp_path: Path) -> None:
    url = _fresh_url(sql_target, tmp_path, "newdb")
    store = SqlStore(url)
    assert store.get_parameter("db_version") == schema.LEGACY_DB_VERSION
    store.close()
    engine = create_engine(_engine_url(url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [schema.HEAD]
    engine.dispose()


def test_the_migration_scripts_build_the_same_schema_as_the_tables(sql_target: StoreTarget, tmp_path: Path) -> None:
    """New databases are created from kms.store.schema's tables and stamped; upgrades run the Alembic scripts.
    Both must give the same database, column for column and index for index."""
    by_tables = _fresh_url(sql_target, tmp_path, "bytables")
    SqlStore(by_tables).close()
    by_scripts = _fresh_url(sql_target, tmp_path, "byscripts")
    engine = create_engine(_engine_url(by_scripts))
    with engine.connect() as conn:
        schema.run_alembic(conn, "upgrade", "head")
        conn.commit()
    engine.dispose()
    assert _describe_schema(by_scripts) == _describe_schema(by_tables)
    if sql_target.backend == "mysql":
        assert _describe_schema(by_tables)["objects"]["seq_auto_increment"]
    store = SqlStore(by_scripts)  # a database upgraded by Alembic is opened by the fast path, and works
    with store.session(write=True) as s:
        s.insert(StoredObject("x", 1, 1, "o", b"a", b"b", frozenset({"t"})))
    with store.session(write=False) as s:
        assert s.find(Query(tags=["t"])) == ["x"]
    assert store.get_parameter("db_version") == schema.LEGACY_DB_VERSION
    store.close()


def test_a_database_newer_than_the_code_is_refused_untouched(sql_target: StoreTarget, tmp_path: Path) -> None:
    url = _fresh_url(sql_target, tmp_path, "newer")
    store = SqlStore(url)
    with store.session(write=True) as s:
        s.insert(StoredObject("kept", 1, 1, "o", b"a", b"b"))
    store.close()
    _stamp(url, FUTURE)
    expected = f"database schema {FUTURE} is newer than this server (knows up to {schema.HEAD}); upgrade the server"
    with pytest.raises(StoreError) as refused:
        SqlStore(url)
    assert str(refused.value) == expected
    _stamp(url, schema.HEAD)
    again = SqlStore(url)
    with again.session(write=False) as s:
        assert s.find(Query()) == ["kept"]
    again.close()


def test_the_server_refuses_to_start_on_a_newer_schema(sql_target: StoreTarget, tmp_path: Path) -> None:
    url = _fresh_url(sql_target, tmp_path, "srvnewer")
    SqlStore(url).close()
    _stamp(url, FUTURE)
    data = Path(url.removeprefix("sqlite:///")).parent if sql_target.backend == "sqlite" else tmp_path
    if sql_target.backend == "sqlite":
        os.replace(url.removeprefix("sqlite:///"), data / "kms.sqlite")
        args = ["--database-type", "sqlite", "--sqlite-path", str(data)]
    else:
        args = ["--database-type", sql_target.backend, "--database-url", url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_") and k != "COSMIAN_KMS_CONF"}
    done = subprocess.run(
        [*kms_server_command(), *args, "--port", "1", "--workers", "1"],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert f"database schema {FUTURE} is newer than this server (knows up to {schema.HEAD})" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_pre_alembic_sqlite_database_is_adopted(tmp_path: Path) -> None:
    """A database written by the SQLite store before Alembic (db_version 2, no alembic_version) is stamped as
    the baseline revision and its objects stay readable."""
    path = tmp_path / "kms.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE objects (id VARCHAR(128) NOT NULL, seq INTEGER NOT NULL, object BLOB NOT NULL,
            attributes BLOB NOT NULL, object_type INTEGER NOT NULL, state INTEGER NOT NULL,
            owner VARCHAR(255) NOT NULL, algorithm INTEGER, length INTEGER, version BIGINT NOT NULL,
            tags_json TEXT NOT NULL, names_json TEXT NOT NULL, PRIMARY KEY (id));
        CREATE INDEX ix_objects_owner_type ON objects (owner, object_type);
        CREATE INDEX ix_objects_seq ON objects (seq);
        CREATE TABLE tags (id VARCHAR(128) NOT NULL, tag VARCHAR(255) NOT NULL, UNIQUE (id, tag));
        CREATE INDEX ix_tags_tag ON tags (tag);
        CREATE TABLE names (id VARCHAR(128) NOT NULL, name VARCHAR(255) NOT NULL);
        CREATE INDEX ix_names_name ON names (name);
        CREATE INDEX ix_names_id ON names (id);
        CREATE TABLE read_access (id VARCHAR(128) NOT NULL, userid VARCHAR(255) NOT NULL,
            permissions VARCHAR(2048) NOT NULL, UNIQUE (id, userid));
        CREATE TABLE parameters (name VARCHAR(128) NOT NULL, value VARCHAR(256), PRIMARY KEY (name));
        INSERT INTO parameters VALUES ('db_version', '2');
        INSERT INTO objects VALUES ('old', 1, x'01', x'02', 2, 1, 'alice', 3, 256, 5, '["t"]', '[]');
        INSERT INTO tags VALUES ('old', 't');
        """
    )
    db.close()
    store = SqlStore.sqlite(tmp_path)
    with store.session(write=True) as s:
        assert s.get("old") == StoredObject("old", 2, 1, "alice", b"\x01", b"\x02", frozenset({"t"}), (), 3, 256, 5)
        s.insert(StoredObject("new", 2, 1, "alice", b"a", b"b", frozenset({"t"})))
    with store.session(write=False) as s:
        assert s.find(Query(tags=["t"])) == ["old", "new"]
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(schema.REVISIONS[0],)]
    db.execute("UPDATE parameters SET value = '1' WHERE name = 'db_version'")
    db.execute("DROP TABLE alembic_version")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="db_version '1'"):
        SqlStore.sqlite(tmp_path)


def test_nodes_starting_together_on_an_empty_database_all_open_it(sql_target: StoreTarget, tmp_path: Path) -> None:
    url = _fresh_url(sql_target, tmp_path, "race")
    barrier = threading.Barrier(6)
    results: list[object] = []

    def start() -> None:
        barrier.wait()
        try:
            store = SqlStore(url)
            with store.session(write=False) as s:
                s.find(Query())
            store.close()
            results.append("ok")
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ok"] * 6
    engine = create_engine(_engine_url(url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [schema.HEAD]
        assert conn.execute(text("SELECT COUNT(*) FROM parameters")).scalar_one() == 1
    engine.dispose()


def test_clear_also_works_on_a_newer_schema(sql_target: StoreTarget, tmp_path: Path) -> None:
    """--clear-database erases: it does not need to understand what it erases."""
    url = _fresh_url(sql_target, tmp_path, "clearnewer")
    store = SqlStore(url)
    with store.session(write=True) as s:
        s.insert(StoredObject("gone", 1, 1, "o", b"a", b"b"))
    store.close()
    _stamp(url, FUTURE)
    cleared = SqlStore(url, clear=True)
    with cleared.session(write=False) as s:
        assert s.find(Query()) == []
    cleared.close()


# ---------------------------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize("form", ["postgres://", "libpq key=value", "several hosts", "driver suffix"])
def test_postgresql_url_forms_reach_libpq(form: str) -> None:
    url = services.database("postgresql", "urls")
    parts = url.split("://", 1)[1]  # user@host:port/db
    user_host, db = parts.split("/", 1)
    user, hostport = user_host.split("@", 1)
    host, port = hostport.split(":")
    given = {
        "postgres://": f"postgres://{parts}",
        "libpq key=value": f"host={host} port={port} user={user} dbname={db}",
        # the first host refuses connections: libpq goes on to the next one
        "several hosts": f"postgresql://{user}@{host}:1,{host}:{port}/{db}?target_session_attrs=read-write",
        "driver suffix": f"postgresql+psycopg://{parts}",
    }[form]
    store = SqlStore.server("postgresql", given)
    with store.session(write=False) as s:
        assert s.find(Query()) == []
    store.close()


def test_mysql_and_mariadb_urls() -> None:
    url = services.database("mysql", "urls")
    for given in (url, url.replace("mysql://", "mariadb://", 1), url.replace("mysql://", "mysql+pymysql://", 1)):
        store = SqlStore.server("mysql", given)
        with store.session(write=False) as s:
            assert s.find(Query()) == []
        store.close()


def test_a_url_of_another_database_type_is_refused() -> None:
    with pytest.raises(StoreError, match="needs a postgresql URL, not a mysql one"):
        SqlStore.server("postgresql", "mysql://root@127.0.0.1/x")
    with pytest.raises(StoreError, match="must start with"):
        SqlStore.server("mysql", "oracle://x/y")


# ---------------------------------------------------------------------------------- errors of real servers


def test_a_deadlock_is_a_transient_error(sql_target: StoreTarget) -> None:
    """Two transactions lock two rows in opposite orders: the database kills one, the store says "retry"."""
    if sql_target.serial_writers:
        pytest.skip("SQLite writers queue: no deadlock possible")
    node_a, node_b = sql_target.open(), sql_target.open()
    with node_a.session(write=True) as s:
        s.insert(StoredObject("r1", 1, 1, "o", b"a", b"b"))
        s.insert(StoredObject("r2", 1, 1, "o", b"a", b"b"))
    both_hold_one = threading.Barrier(2)
    outcomes: list[BaseException | str] = []

    def tx(store: SqlStore, first: str, second: str) -> None:
        try:
            with store.session(write=True) as s:
                s.update(StoredObject(first, 1, 2, "o", b"a", b"b", version=2), expected_version=1)
                both_hold_one.wait(30)
                s.update(StoredObject(second, 1, 2, "o", b"a", b"b", version=2), expected_version=1)
            outcomes.append("committed")
        except BaseException as exc:
            outcomes.append(exc)

    threads = [
        threading.Thread(target=tx, args=(node_a, "r1", "r2")),
        threading.Thread(target=tx, args=(node_b, "r2", "r1")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # The database picks a victim and rolls it back; the survivor's second update then finds that row at version
    # 1 again and commits.
    assert len(outcomes) == 2 and "committed" in outcomes, outcomes
    victim = next(o for o in outcomes if not isinstance(o, str))
    assert type(victim) is TransientStoreError, victim  # a deadlock, not a version conflict


def test_a_connection_killed_by_the_server_is_replaced(sql_target: StoreTarget) -> None:
    """A pooled connection the server closed (restart, idle timeout, administrator): one that sat idle is pinged
    and replaced at checkout; one that was not pinged fails its transaction as transient (the engine re-runs the
    request) and the pool is renewed; one killed in the middle of a transaction fails it as transient too."""
    if sql_target.backend == "sqlite":
        pytest.skip("no server connection to lose")
    store = sql_target.open()
    assert isinstance(store, SqlStore)
    with store.session(write=True) as s:
        s.insert(StoredObject("k", 1, 1, "o", b"a", b"b"))
    backend_id = "SELECT pg_backend_pid()" if sql_target.backend == "postgresql" else "SELECT CONNECTION_ID()"
    kill = "SELECT pg_terminate_backend({})" if sql_target.backend == "postgresql" else "KILL {}"
    killer = create_engine(_engine_url(sql_target.url or ""))

    def kill_pooled_connection() -> None:
        with store.engine.connect() as conn:
            pid = conn.execute(text(backend_id)).scalar_one()
        with killer.connect() as conn:
            conn.execute(text(kill.format(int(pid))))
            conn.commit()

    store.ping_after_idle_s = 0.0  # every checkout counts as "after a quiet period"
    kill_pooled_connection()
    with store.session(write=False) as s:
        assert s.get("k") is not None
    store.ping_after_idle_s = float("inf")  # never pinged: the first use finds it dead
    kill_pooled_connection()
    with pytest.raises(TransientStoreError), store.session(write=False) as s:
        s.get("k")
    with store.session(write=False) as s:
        assert s.get("k") is not None
    with pytest.raises(TransientStoreError), store.session(write=False) as s:
        pid = s.conn.execute(text(backend_id)).scalar_one()  # type: ignore[attr-defined]
        with killer.connect() as conn:
            conn.execute(text(kill.format(int(pid))))
            conn.commit()
        s.get("k")
    with store.session(write=False) as s:
        assert s.get("k") is not None
    killer.dispose()


@pytest.mark.parametrize(
    ("backend", "reason"), [("postgresql", 'database "kmst_absent" does not exist'), ("mysql", "Unknown database")]
)
def test_an_unusable_database_is_refused_with_the_drivers_reason(backend: str, reason: str) -> None:
    url = services.with_database(services.admin_url(backend), "kmst_absent")
    with pytest.raises(StoreError, match=f"cannot open the database: .*{reason}"):
        SqlStore.server(backend, url)
