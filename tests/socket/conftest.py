"""A real kms-server with the KMIP socket listener (TLS, client certificates required) and a raw TTLV client."""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms.kmip import binary
from kms.kmip.ttlv import TTLV
from tests.socket.pki import P12_PASSWORD, Pki, make_pki
from tests.support.server import ServerProcess, free_port

TIMEOUT = 60  # a bound on blocking reads, so that a server bug fails a test instead of hanging it


@dataclasses.dataclass
class SocketKms:
    server: ServerProcess
    port: int
    pki: Pki

    def connect(self, cert: tuple[Path, Path] | None = None, *, client_cert: bool = True) -> ssl.SSLSocket:
        """A TLS connection to the listener, presenting john_doe's certificate unless told otherwise."""
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        if cert is None and client_cert:
            cert = (self.pki.client_cert, self.pki.client_key)
        if cert is not None:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        return context.wrap_socket(sock, server_hostname="127.0.0.1")


def server_args(pki: Pki, socket_port: int) -> list[str]:
    return [
        "--https-p12-file",
        str(pki.server_p12),
        "--https-p12-password",
        P12_PASSWORD,
        "--authority-cert-file",
        str(pki.ca),
        "--socket-server-start",
        "--socket-server-port",
        str(socket_port),
    ]


def two_free_ports() -> tuple[int, int]:
    http = free_port()
    sock = free_port()
    while sock == http:
        sock = free_port()
    return http, sock


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("socket-pki"))


@pytest.fixture(scope="session")
def socket_kms(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SocketKms]:
    """One server for the socket tests. kms-server starts gunicorn only once the listener is up, so the HTTP
    workers' readiness line (what ServerProcess waits for) also means that the socket accepts connections."""
    http_port, socket_port = two_free_ports()
    server = ServerProcess(
        tmp_path_factory.mktemp("socket-data"), *server_args(pki, socket_port), port=http_port, scheme="https"
    )
    server.start()
    yield SocketKms(server, socket_port, pki)
    server.stop()


def read_exactly(sock: ssl.SSLSocket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {size} bytes")
        buf += chunk
    return bytes(buf)


def read_message(sock: ssl.SSLSocket) -> TTLV:
    header = read_exactly(sock, 8)
    return binary.decode(header + read_exactly(sock, binary.message_length(header) - 8))


def exchange(sock: ssl.SSLSocket, request: TTLV | bytes) -> TTLV:
    sock.sendall(binary.encode(request) if isinstance(request, TTLV) else request)
    return read_message(sock)


def closed_by_server(sock: ssl.SSLSocket) -> bool:
    """True once the server has ended the connection without sending anything more: end of file, a reset, or a
    TLS alert (OpenSSL answers a client's half-close in the middle of a record with a decode_error alert)."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
