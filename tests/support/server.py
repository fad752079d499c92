"""Run a real `kms-server` process for tests and wait for its readiness line (no sleeps)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.support.backends import ServerDatabase

READY_MARK = "KMS worker"
READY_SUFFIX = "ready"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kms_server_command() -> list[str]:
    exe = shutil.which("kms-server", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "kms.server.main"]


class ServerProcess:
    """A kms-server subprocess; `start()` returns once `workers` workers have logged that they are ready.

    database: the backend and its flags (tests.support.backends); SQLite in data_dir by default.
    """

    def __init__(
        self,
        data_dir: Path,
        *extra_args: str,
        port: int | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        scheme: str = "http",
        database: ServerDatabase | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.database = database or ServerDatabase()
        self.port = port or free_port()
        self.workers = workers
        self.extra_args = list(extra_args)
        self.env = env
        self.scheme = scheme
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Semaphore(0)
        self._exited = threading.Event()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        # Fresh readiness signals: a restart must not consume permits left by the previous process.
        self._ready = threading.Semaphore(0)
        self._exited = threading.Event()
        cmd = [
            *kms_server_command(),
            *self.database.args(self.data_dir),
            "--hostname",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            *self.extra_args,
        ]
        env = dict(os.environ)
        env.pop("COSMIAN_KMS_CONF", None)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        threading.Thread(target=self._pump, args=(self.proc, self._ready, self._exited), daemon=True).start()
        for _ in range(self.workers):
            if not self._ready.acquire(timeout=timeout):
                self.stop()
                raise RuntimeError("kms-server did not become ready:\n" + "\n".join(self.log[-40:]))
            if self._exited.is_set() and self.proc.poll() is not None:
                raise RuntimeError("kms-server exited:\n" + "\n".join(self.log[-40:]))
        return self

    def _pump(self, proc: subprocess.Popen[str], ready: threading.Semaphore, exited: threading.Event) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line.rstrip())
            if READY_MARK in line and line.rstrip().endswith(READY_SUFFIX):
                ready.release()
        exited.set()
        for _ in range(self.workers):  # wake a waiter if the process died before becoming ready
            ready.release()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
