"""The listener's process: started by kms-server before gunicorn, never outliving it, and taking it down if it dies.

Process exits are awaited with pidfds (Linux 5.3+), never with sleeps: a pidfd becomes readable when its process
ends. The timeouts only bound a failing test.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.socket.conftest import SocketKms, exchange, server_args, two_free_ports
from tests.socket.pki import P12_PASSWORD, Pki
from tests.socket.test_bad_input import assert_served, discover_versions
from tests.support.server import ServerProcess, kms_server_command

BOUND = 60  # seconds: only a bound for a failing test, never a measurement

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux)")


def listener_pid(server_pid: int) -> int:
    """The `python -m kms.server.socket_server` child among kms-server's children."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    for pid in children:
        if "kms.server.socket_server" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            return int(pid)
    raise AssertionError(f"no socket listener among the children {children} of kms-server {server_pid}")


def wait_exit(pid: int) -> bool:
    """True once the (not necessarily child) process `pid` has ended."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], BOUND)[0])
    finally:
        os.close(fd)


@pytest.fixture()
def own_server(tmp_path: Path, pki: Pki) -> Iterator[SocketKms]:
    """A server of its own, for tests that kill a process."""
    http_port, socket_port = two_free_ports()
    server = ServerProcess(tmp_path / "data", *server_args(pki, socket_port), port=http_port, scheme="https")
    server.start()
    yield SocketKms(server, socket_port, pki)
    server.kill()


def test_listener_stops_with_the_server(own_server: SocketKms) -> None:
    assert own_server.server.proc is not None
    child = listener_pid(own_server.server.proc.pid)
    with own_server.connect() as conn:
        assert_served(exchange(conn, discover_versions()))
    own_server.server.stop()
    assert own_server.server.proc.returncode == 0
    assert wait_exit(child)
    assert any("KMS socket server stopped" in line for line in own_server.server.log)


def test_listener_exits_when_the_server_is_killed(own_server: SocketKms) -> None:
    """SIGKILL leaves kms-server no chance to clean up: the child sees its stdin close and stops by itself."""
    proc = own_server.server.proc
    assert proc is not None
    child = listener_pid(proc.pid)
    proc.kill()
    proc.wait()
    assert wait_exit(child)


def test_server_stops_with_failure_when_the_listener_dies(own_server: SocketKms) -> None:
    proc = own_server.server.proc
    assert proc is not None
    os.kill(listener_pid(proc.pid), signal.SIGKILL)
    assert proc.wait(timeout=BOUND) == 1
    assert any("KMIP socket listener exited unexpectedly" in line for line in own_server.server.log)


def _start_fails(tmp_path: Path, *args: str) -> str:
    cmd = [*kms_server_command(), "--sqlite-path", str(tmp_path / "data"), "--workers", "1", *args]
    env = {k: v for k, v in os.environ.items() if k != "COSMIAN_KMS_CONF"}
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=BOUND, env=env, stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr
    return run.stderr


def test_busy_port_fails_the_start(tmp_path: Path, pki: Pki) -> None:
    http_port, socket_port = two_free_ports()
    with socket.create_server(("127.0.0.1", socket_port)):
        stderr = _start_fails(
            tmp_path,
            "--port",
            str(http_port),
            "--hostname",
            "127.0.0.1",
            *server_args(pki, socket_port),
            "--socket-server-hostname",
            "127.0.0.1",
        )
    assert f"cannot listen on 127.0.0.1:{socket_port}" in stderr
    assert "the KMIP socket listener did not start" in stderr
    assert "Starting gunicorn" not in stderr


def test_socket_without_tls_is_refused(tmp_path: Path) -> None:
    stderr = _start_fails(tmp_path, "--socket-server-start")
    assert "--socket-server-start requires --https-p12-file" in stderr


def test_wrong_p12_password_fails_the_start(tmp_path: Path, pki: Pki) -> None:
    args = server_args(pki, two_free_ports()[1])
    args[args.index(P12_PASSWORD)] = "wrong"
    assert "cannot read the PKCS#12" in _start_fails(tmp_path, *args)


def test_bad_authority_file_fails_the_start(tmp_path: Path, pki: Pki) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    args = server_args(pki, two_free_ports()[1])
    args[args.index(str(pki.ca))] = str(not_pem)
    stderr = _start_fails(tmp_path, "--port", str(two_free_ports()[0]), *args)
    assert "cannot set up TLS for the KMIP socket listener" in stderr
