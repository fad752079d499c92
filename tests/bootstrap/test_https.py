"""The bootstrap HTTPS transport in-process: client certificates of any issuer accepted and their key hash given to
the app, none required, TLS 1.2 and 1.3, body limited to Content-Length, unread bodies drained, stop after a
response, and a stop that cuts idle connections instead of waiting for them."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.ratls import spki_der
from bootstrap.https import PEER_SPKI_SHA256, STOP_AFTER_RESPONSE, BootstrapHttpsServer
from tests.bootstrap.support import Identity, self_signed

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

App = Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]


def echo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Answers what the transport told it; /stop asks for a stop after the answer; /ignore never reads the body."""
    path = environ["PATH_INFO"]
    body = b"" if path == "/ignore" else environ["wsgi.input"].read()
    if path == "/stop":
        environ[STOP_AFTER_RESPONSE]()
    peer = environ[PEER_SPKI_SHA256]
    answer = json.dumps({"peer": peer.hex() if peer else None, "body": len(body), "scheme": environ["wsgi.url_scheme"]})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [answer.encode()]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[BootstrapHttpsServer]:
    identity = self_signed(tmp_path / "server", "bootstrap")
    srv = BootstrapHttpsServer("127.0.0.1", 0, echo_app, identity.cert, identity.key, io_timeout=600)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.request_stop("test over")
    srv.stop()
    thread.join()


def _url(srv: BootstrapHttpsServer, path: str = "/") -> str:
    return f"https://127.0.0.1:{srv.server_address[1]}{path}"


def _get(srv: BootstrapHttpsServer, identity: Identity | None = None, path: str = "/", **kwargs: Any) -> Any:
    r = requests.post(_url(srv, path), verify=False, cert=identity.files if identity else None, timeout=60, **kwargs)
    assert r.status_code == 200, r.text
    return r.json()


def test_no_client_certificate_is_fine(server: BootstrapHttpsServer) -> None:
    assert _get(server) == {"peer": None, "body": 0, "scheme": "https"}


def test_any_client_certificate_is_accepted_and_named_by_its_key(server: BootstrapHttpsServer, tmp_path: Path) -> None:
    owner = self_signed(tmp_path / "owner", "owner")
    expired = self_signed(tmp_path / "expired", "expired", days=-1)  # not valid any more: still proves its key
    for identity in (owner, expired):
        expected = hashlib.sha256(spki_der(identity.cert)).hexdigest()
        assert _get(server, identity)["peer"] == expected
    assert _get(server, owner)["peer"] != _get(server, expired)["peer"]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_versions(server: BootstrapHttpsServer, version: ssl.TLSVersion, tmp_path: Path) -> None:
    owner = self_signed(tmp_path / "owner", "owner")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.load_cert_chain(*owner.files)
    with socket.create_connection(("127.0.0.1", server.server_address[1])) as raw, \
            context.wrap_socket(raw) as tls:
        assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert json.loads(body)["peer"] == owner.spki_sha256.hex()


def test_body_is_limited_to_content_length_and_unread_bodies_are_drained(server: BootstrapHttpsServer) -> None:
    assert _get(server, data=b"x" * 100_000)["body"] == 100_000
    assert _get(server, path="/ignore", data=b"y" * (3 * 1024 * 1024))["body"] == 0  # the answer, not a reset


def test_stop_after_response(server: BootstrapHttpsServer) -> None:
    reasons: list[str] = []
    waiter = threading.Thread(target=lambda: reasons.append(server.wait_for_stop()))
    waiter.start()
    assert _get(server, path="/stop")["scheme"] == "https"  # the whole answer arrives first
    waiter.join(60)
    assert reasons == ["started"]


def test_stop_cuts_idle_connections_and_frees_the_port(tmp_path: Path) -> None:
    """An idle client (connected, no handshake) would hold its handler thread for io_timeout (600 s here); stop()
    must shut it down and return, and the port must be free for the KMS."""
    identity = self_signed(tmp_path / "server", "bootstrap")
    srv = BootstrapHttpsServer("127.0.0.1", 0, echo_app, identity.cert, identity.key, io_timeout=600)
    port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    idle = socket.create_connection(("127.0.0.1", port))
    assert _get(srv)["peer"] is None  # served while the idle one waits
    srv.request_stop("test")
    assert srv.wait_for_stop() == "test"
    srv.stop()
    thread.join(60)
    assert not thread.is_alive()
    assert idle.recv(1) == b""  # cut by the server
    idle.close()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_the_server_presents_its_certificate(server: BootstrapHttpsServer, tmp_path: Path) -> None:
    der = ssl.get_server_certificate(("127.0.0.1", server.server_address[1]))
    cert = x509.load_pem_x509_certificate(der.encode())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.subject.rfc4514_string() == "CN=bootstrap"
