"""The bootstrap server's HTTPS transport: TLS >= 1.2 with the RA-TLS certificate, client certificates requested
and accepted whatever their issuer, the peer key's hash handed to the WSGI app.

Why pyOpenSSL and not `ssl`: owner binding identifies the owner by the hash of its client certificate's key, and
an owner's certificate is typically self-signed, with no CA to verify it against. Python's ssl module can request
a client certificate only with a CA store that must accept it (CERT_OPTIONAL fails the handshake on an
unverifiable certificate). pyOpenSSL lets a verify callback accept any certificate. What that proves is still
strong: the TLS handshake's CertificateVerify shows the client holds the certificate's private key, so the
SHA-256 of its SubjectPublicKeyInfo names a key the client controls. Authorization (is that the owner?) is then the
app's job (bootstrap.owner), on that hash.

Shape: a threading TCP server whose handler thread performs the TLS handshake (so a slow client never stalls the
accept loop), then serves exactly one HTTP request with wsgiref's handler over a small RawIOBase adapter
(pyOpenSSL's Connection has no makefile), answering HTTP/1.0 and closing; a body the app did not read (refused,
or larger than allowed) is drained first, up to DRAIN_LIMIT, so the client reads the answer and not a reset.
One request per connection leaves no idle keep-alive connection behind when the server stops, and makes every
request carry a full handshake. TLS session tickets and the session cache are off, so every connection proves
the client key afresh.

Environ keys given to the app:
- PEER_SPKI_SHA256: bytes, SHA-256 of the client certificate's SPKI DER, or None without a client certificate;
- STOP_AFTER_RESPONSE: a callable; the app calls it to have the server stopped once this response is written
  and the connection closed (POST /start): `wait_for_stop()` in the launcher's thread then returns "started".

Stopping: `request_stop(reason)` (from a handler, or from a signal handler) wakes `wait_for_stop()`; `stop()`, run
by the thread that waited (never a handler thread, which it joins), ends the accept loop, shuts every open
connection down so that its handler thread returns at once, closes the listening socket (the port is free for the
main KMS from then on) and joins the handler threads.

Timeouts: every socket gets SO_RCVTIMEO / SO_SNDTIMEO (IO_TIMEOUT seconds) at the kernel level, which keeps the
socket blocking for OpenSSL while bounding each read and write; at most MAX_CONNECTIONS connections are served at
once, more are closed at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from attestation.ratls import spki_der

log = logging.getLogger("kms.bootstrap.https")

PEER_SPKI_SHA256 = "bootstrap.peer_spki_sha256"
STOP_AFTER_RESPONSE = "bootstrap.stop_after_response"
IO_TIMEOUT = 30.0
MAX_CONNECTIONS = 64
DRAIN_LIMIT = 16 * 1024 * 1024  # unread body bytes read and dropped after the answer; beyond, the connection is cut
# TLS 1.2 suites: forward-secret AEAD only (TLS 1.3 suites are all of that kind and configured apart).
TLS12_CIPHERS = b"ECDHE+AESGCM:ECDHE+CHACHA20"


def _accept_any_certificate(conn: SSL.Connection, cert: Any, errnum: int, depth: int, ok: int) -> bool:
    """Accept every client certificate: there is no CA to check an owner's self-signed certificate against, and
    authorization is done by the app on the hash of the certificate's key (see the module docstring)."""
    return True


def server_context(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> SSL.Context:
    """TLS >= 1.2 server context with `certificate`, requesting (not requiring) a client certificate."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    context.set_cipher_list(TLS12_CIPHERS)
    context.use_certificate(certificate)
    context.use_privatekey(key)
    context.check_privatekey()
    context.set_verify(SSL.VERIFY_PEER, _accept_any_certificate)
    return context


class _TlsStream(io.RawIOBase):
    """A raw byte stream over a pyOpenSSL connection, for io.BufferedReader/BufferedWriter; TLS failures surface as
    OSError like any broken socket, a close_notify or an abrupt end as end of file."""

    def __init__(self, conn: SSL.Connection) -> None:
        super().__init__()
        self._conn = conn

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return self._conn.recv_into(buffer)
        except SSL.ZeroReturnError:
            return 0
        except SSL.SysCallError as exc:
            if exc.args and exc.args[0] == -1:  # the peer closed without close_notify
                return 0
            raise OSError(f"TLS read failed: {exc}") from None
        except SSL.Error as exc:
            raise OSError(f"TLS read failed: {exc}") from None

    def write(self, data: Any) -> int:
        view = bytes(data)
        try:
            self._conn.sendall(view)
        except SSL.Error as exc:
            raise OSError(f"TLS write failed: {exc}") from None
        return len(view)


class _RequestBody(io.RawIOBase):
    """wsgi.input: the request body, never more than Content-Length bytes of the connection; `remaining` says how
    much the app left unread."""

    def __init__(self, source: io.BufferedReader, length: int) -> None:
        super().__init__()
        self._source = source
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self.remaining)]
        count = self._source.readinto(view) or 0
        self.remaining = self.remaining - count if count else 0  # end of stream: nothing more will come
        return count


def _set_io_timeouts(sock: socket.socket, seconds: float) -> None:
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


class _Handler(WSGIRequestHandler):
    """One connection: TLS handshake, one HTTP request through wsgiref, close_notify."""

    server: BootstrapHttpsServer

    def setup(self) -> None:
        self.tls: SSL.Connection | None = None
        self.peer_spki_sha256: bytes | None = None
        self.stop_after = False
        raw: socket.socket = self.request
        _set_io_timeouts(raw, self.server.io_timeout)
        conn = SSL.Connection(self.server.context, raw)
        conn.set_accept_state()
        try:
            conn.do_handshake()
            peer = conn.get_peer_certificate(as_cryptography=True)
        except (SSL.Error, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", self.client_address[0], exc)
            return
        if peer is not None:
            self.peer_spki_sha256 = hashlib.sha256(spki_der(peer)).digest()
        self.tls = conn
        stream = _TlsStream(conn)
        self.rfile = io.BufferedReader(stream, 64 * 1024)
        self.wfile = io.BufferedWriter(stream, 64 * 1024)

    def handle(self) -> None:
        if self.tls is None:
            return
        try:
            self._serve_one_request()
        except OSError as exc:  # the client went away or timed out: nothing to answer
            log.debug("connection from %s ended: %s", self.client_address[0], exc)

    def _serve_one_request(self) -> None:
        """wsgiref's handle(), with the body given to the app as a reader limited to Content-Length, and what the
        app left unread (a refused or too large body) drained before closing, so that the client, still sending,
        reads the answer instead of a connection reset."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # an error was sent
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        body = _RequestBody(self.rfile, length)
        stdin = io.BufferedReader(body)
        handler = ServerHandler(stdin, self.wfile, self.get_stderr(), self.get_environ(), multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's back pointer for log_request
        handler.run(self.server.get_app())
        if body.remaining <= DRAIN_LIMIT:
            while stdin.read(64 * 1024):
                pass

    def finish(self) -> None:
        try:
            if self.tls is not None:
                with contextlib.suppress(OSError, ValueError):
                    self.wfile.flush()
                with contextlib.suppress(SSL.Error, OSError):
                    self.tls.shutdown()  # close_notify: the client sees a clean end of the response
        finally:
            if self.stop_after:
                self.server.request_stop("started")

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["wsgi.url_scheme"] = "https"
        environ["HTTPS"] = "on"
        environ[PEER_SPKI_SHA256] = self.peer_spki_sha256
        environ[STOP_AFTER_RESPONSE] = self._stop_after_response
        return environ

    def _stop_after_response(self) -> None:
        self.stop_after = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Method and path only: no query string, no header, no body.
        log.info("%s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s: " + fmt, self.client_address[0], *args)


class BootstrapHttpsServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """The HTTPS server of the bootstrap flow (module docstring)."""

    daemon_threads = True
    block_on_close = True  # server_close joins the handler threads (after stop() has shut their sockets)
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        host: str,
        port: int,
        app: Callable[..., Any],
        certificate: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        *,
        io_timeout: float = IO_TIMEOUT,
    ) -> None:
        self.app = app
        self.context = server_context(certificate, key)
        self.io_timeout = io_timeout
        self.base_environ = {
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SCRIPT_NAME": "",
            "CONTENT_LENGTH": "",
            "REMOTE_HOST": "",
        }
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_reason: str | None = None
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)

    # -- socketserver hooks -----------------------------------------------------------------------------------

    def get_app(self) -> Callable[..., Any]:
        return self.app

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self._open_lock:
            if self._stop.is_set() or len(self._open) >= MAX_CONNECTIONS:
                return False
            self._open.add(request)
        return True

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback to stderr; one line is enough, and keeps request data out of logs.
        log.warning("error while serving %s", client_address[0] if client_address else "a client", exc_info=False)

    # -- stopping ---------------------------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Wake `wait_for_stop` (safe from handler threads and signal handlers); the first reason wins."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()

    def wait_for_stop(self) -> str:
        """Block until `request_stop`; its reason ("started", "signal", ...)."""
        self._stop.wait()
        return self._stop_reason or "stopped"

    def stop(self) -> None:
        """End the accept loop, cut open connections, free the port and join the handler threads. Call it from
        the thread that runs neither serve_forever nor a handler."""
        self._stop.set()
        self.shutdown()
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()
