"""A Redis for the tests: the local service (127.0.0.1:6379, or KMS_TEST_REDIS_URL), else a throwaway
`redis-server` started from the machine's binary. With CI=true a missing Redis fails the test instead of skipping it.

Tests share the Redis database, so each one works under a key prefix of its own (`unique_prefix`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.server import free_port

DEFAULT_URL = "redis://127.0.0.1:6379/0"
READY_LINE = "Ready to accept connections"


def reachable(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis is required in CI: {reason}")
    pytest.skip(reason)


class RedisServer:
    """A throwaway redis-server on a free port; `start()` returns once it accepts connections.

    persist=True: it saves its dataset when stopped and loads it when started again (restart tests).
    """

    def __init__(self, port: int | None = None, *, persist: bool = False) -> None:
        self.port = port or free_port()
        self.persist = persist
        self.proc: subprocess.Popen[str] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="kms-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> RedisServer:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(exe).exists():
            unavailable("no redis-server binary")
        save = "3600 1" if self.persist else ""  # with a save point, SIGTERM writes the dataset first
        cmd = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", save, "--appendonly", "no"]
        cmd += ["--dir", self._dir.name]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()
        log: list[str] = []

        def pump(out: object) -> None:
            for line in out:  # type: ignore[attr-defined]
                log.append(line)
                if READY_LINE in line:
                    ready.set()
            ready.set()  # exited: wake the waiter

        threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("redis-server did not start:\n" + "".join(log[-20:]))
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


_service: str | None = None
_service_lock = threading.Lock()


def service_url() -> str:
    """The Redis of this test process: the local one if it answers (KMS_TEST_REDIS_URL, else 127.0.0.1:6379),
    else a throwaway one started once and stopped when the process exits; skips (fails in CI) without either."""
    global _service
    with _service_lock:
        if _service is None:
            url = os.environ.get("KMS_TEST_REDIS_URL", DEFAULT_URL)
            if not reachable(url):
                if not (shutil.which("redis-server") or Path("/usr/bin/redis-server").exists()):
                    unavailable(f"no Redis at {url} and no redis-server binary")
                server = RedisServer().start()
                atexit.register(server.close)
                url = server.url
            _service = url
        return _service


def redis_url_or_start() -> Iterator[str]:
    """service_url() for a fixture."""
    yield service_url()


def with_prefix(url: str, prefix: str) -> str:
    """The URL naming the key prefix a RedisFindexStore (or a kms-server) should work under."""
    return f"{url}{'&' if '?' in url else '?'}key_prefix={prefix}"


def unique_prefix(name: str = "t") -> str:
    """A key prefix no other test (or xdist worker) uses."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"kms-test:{worker}:{name}:{uuid.uuid4().hex[:10]}:"


def delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
        keys = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 1000):
            client.unlink(*keys[i : i + 1000])
    finally:
        client.close()
