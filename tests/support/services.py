"""PostgreSQL and MySQL/MariaDB for the tests: find the service, give each test process databases of its own.

Discovery, per backend, once per process:
1. `KMS_TEST_POSTGRESQL_URL` / `KMS_TEST_MYSQL_URL`: an administrator URL (one that may CREATE DATABASE);
   the value `throwaway` forces a throwaway instance;
2. else the local service (postgresql://postgres@127.0.0.1:5432/postgres, mysql://root@127.0.0.1:3306/);
3. else a throwaway instance started from the machine's binaries (initdb/postgres, mariadb-install-db/mariadbd)
   in a temporary directory, stopped when the process exits;
4. else the test is skipped with the reason, or fails when CI=true (CI must not silently test less).
Redis has its own helper: tests.support.redis_server.

Databases: `database(backend, purpose)` creates (or re-creates) `kmst_<host>_<pid>_<purpose>` and returns its
URL. The process id keeps xdist workers, and several test runs sharing one database server, apart; databases
are dropped when the process exits, and those left by processes that died are dropped by the next run.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

SERVER_BACKENDS = ("postgresql", "mysql")
DEFAULTS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mysql": "mysql://root@127.0.0.1:3306/",
}
ENV = {"postgresql": "KMS_TEST_POSTGRESQL_URL", "mysql": "KMS_TEST_MYSQL_URL"}
THROWAWAY = "throwaway"
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_NAME = re.compile(rf"^kmst_{_HOST}_(\d+)_\w+$")


class ServiceUnavailable(Exception):
    """No server for a backend: the reason says why."""


def unavailable(reason: str) -> None:
    """Skip the test, or fail it in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test service missing in CI: {reason}")
    pytest.skip(reason)


def admin_url(backend: str) -> str:
    """The administrator URL of `backend`'s server (see the module docstring), or skip/fail the test."""
    try:
        return _service(backend)
    except ServiceUnavailable as exc:
        unavailable(str(exc))
        raise AssertionError("unreachable") from exc


def database(backend: str, purpose: str) -> str:
    """A new, empty database for `purpose` in this process (re-created if it exists) and its URL."""
    admin = admin_url(backend)
    name = database_name(purpose)
    with _admin(backend, admin) as execute:
        execute(f"DROP DATABASE IF EXISTS {name}")
        execute(f"CREATE DATABASE {name}" + (" CHARACTER SET utf8mb4" if backend == "mysql" else ""))
    _created.add((backend, name))
    return with_database(admin, name)


def drop_database(backend: str, name: str) -> None:
    with _admin(backend, admin_url(backend)) as execute:
        execute(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if backend == "postgresql" else ""))
    _created.discard((backend, name))


def database_name(purpose: str) -> str:
    if not re.fullmatch(r"\w{1,30}", purpose):
        raise ValueError(f"database purpose {purpose!r}: letters, digits and _ only, at most 30")
    return f"kmst_{_HOST}_{os.getpid()}_{purpose}".lower()


def with_database(url: str, name: str) -> str:
    """`url` naming database `name` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


# ------------------------------------------------------------------------------------------------ internals

_services: dict[str, str | ServiceUnavailable] = {}
_created: set[tuple[str, str]] = set()
_lock = threading.Lock()


def _service(backend: str) -> str:
    with _lock:
        found = _services.get(backend)
        if found is None:
            try:
                found = _discover(backend)
                _sweep(backend, found)
            except ServiceUnavailable as exc:
                found = exc
            _services[backend] = found
    if isinstance(found, ServiceUnavailable):
        raise found
    return found


def _discover(backend: str) -> str:
    given = os.environ.get(ENV[backend])
    if given and given != THROWAWAY:
        if not _answers(backend, given):
            raise ServiceUnavailable(f"{ENV[backend]}={given} does not answer")
        return given
    if not given and _answers(backend, DEFAULTS[backend]):
        return DEFAULTS[backend]
    starter = _THROWAWAY_STARTERS[backend]
    return starter()


def _answers(backend: str, url: str) -> bool:
    try:
        with _admin(backend, url) as execute:
            execute("SELECT 1")
        return True
    except Exception:  # any failure means "not usable"
        return False


@contextlib.contextmanager
def _admin(backend: str, url: str) -> Iterator[Callable[[str], list[tuple]]]:
    """Run statements outside transactions (CREATE/DROP DATABASE need that) on an administrator connection."""
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:

            def run_pg(sql: str) -> list[tuple]:
                cur = conn.execute(sql.encode())
                return cur.fetchall() if cur.description else []

            yield run_pg
    else:
        import pymysql

        parts = urlsplit(url)
        conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            autocommit=True,
            connect_timeout=5,
        )
        try:

            def run_mysql(sql: str) -> list[tuple]:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    return list(cur.fetchall())

            yield run_mysql
        finally:
            conn.close()


def _sweep(backend: str, url: str) -> None:
    """Drop databases left on this host by test processes that no longer run (killed runs)."""
    query = (
        "SELECT datname FROM pg_database WHERE datname LIKE 'kmst\\_%'"
        if backend == "postgresql"
        else "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'kmst\\_%'"
    )
    with contextlib.suppress(Exception), _admin(backend, url) as execute:
        for (name,) in execute(query):
            match = _NAME.match(name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(Exception):
                    execute(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if backend == "postgresql" else ""))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _drop_created() -> None:
    for backend, name in list(_created):
        with contextlib.suppress(Exception):
            drop_database(backend, name)


# ------------------------------------------------------------------------------------- throwaway instances


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Instance:
    """A database server process of this test process, waited for by its readiness log line."""

    def __init__(self, cmd: list[str], ready_line: str, directory: tempfile.TemporaryDirectory[str]) -> None:
        self.directory = directory
        self.log: list[str] = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                if ready_line in line:
                    ready.set()
            ready.set()  # exited: wake the waiter

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60) or self.proc.poll() is not None:
            self.stop()
            raise ServiceUnavailable(f"{cmd[0]} did not start: " + " | ".join(self.log[-5:]))
        atexit.register(self.stop)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            self.directory.cleanup()


def _binary(*candidates: str) -> str:
    for c in candidates:
        found = shutil.which(c) or (c if Path(c).is_file() else None)
        if found:
            return found
    raise ServiceUnavailable(f"no local server and none of {', '.join(candidates)} to start one")


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` account then."""
    if os.geteuid() != 0:
        return cmd
    return [_binary("runuser", "/usr/sbin/runuser"), "-u", "postgres", "--", *cmd]


def _start_postgresql() -> str:
    initdb = _binary("initdb", "/usr/local/bin/initdb", "/usr/lib/postgresql/15/bin/initdb")
    postgres = _binary("postgres", "/usr/local/bin/postgres", "/usr/lib/postgresql/15/bin/postgres")
    directory = tempfile.TemporaryDirectory(prefix="kms-pg-")
    data = Path(directory.name) / "data"
    if os.geteuid() == 0:
        shutil.chown(directory.name, "postgres")
    init = subprocess.run(
        _as_postgres_user([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]),
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        directory.cleanup()
        raise ServiceUnavailable(f"initdb failed: {init.stderr.strip()[-300:]}")
    port = _free_port()
    cmd = [postgres, "-D", str(data), "-p", str(port), "-k", directory.name, "-c", "listen_addresses=127.0.0.1"]
    cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    _Instance(_as_postgres_user(cmd), "database system is ready to accept connections", directory)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _start_mysql() -> str:
    install = _binary("mariadb-install-db", "mysql_install_db")
    server = _binary("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
    directory = tempfile.TemporaryDirectory(prefix="kms-mariadb-")
    data = Path(directory.name) / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []
    init = subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal", "--skip-test-db",
         *user],
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        directory.cleanup()
        raise ServiceUnavailable(f"mariadb-install-db failed: {init.stderr.strip()[-300:]}")
    port = _free_port()
    cmd = [server, "--no-defaults", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1"]
    cmd += [f"--socket={directory.name}/mysqld.sock", "--innodb-flush-log-at-trx-commit=2", *user]
    _Instance(cmd, "ready for connections", directory)
    return f"mysql://root@127.0.0.1:{port}/"


_THROWAWAY_STARTERS: dict[str, Callable[[], str]] = {"postgresql": _start_postgresql, "mysql": _start_mysql}
