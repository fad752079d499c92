"""Binary KMIP over TLS on a TCP socket (default port 5696): the transport PyKMIP and KMIP appliances speak.

Why a child process: `kms-server` runs gunicorn, whose workers are forked from the arbiter. A listener in the
arbiter would be copied into every worker, and one in each worker would exist once per worker. So
`kms-server --socket-server-start` launches `python -m kms.server.socket_server` (a fresh interpreter that shares
nothing with gunicorn's forks), which opens its own store and Kms: SQLite in WAL mode serves several processes, and
the store queues writers across processes with a lock file.

The parent and the child talk over pipes, so the PKCS#12 password never appears on a command line or in the
environment:
- the parent writes the `ServerConfig` as one JSON line on the child's stdin and keeps stdin open. End of file on
  stdin means the parent is gone, and the child then stops: the listener must never outlive the server;
- the child writes `ready` on its stdout once it listens, or logs why it cannot and exits. The parent starts
  gunicorn only after `ready`, so once the HTTP workers report ready the socket accepts connections too;
- end of file on the child's stdout tells the parent that the listener died. The parent logs it and stops the
  whole server with a failure status, so that a supervisor restarts it instead of leaving KMIP clients refused.

Wire format: each message is one TTLV RequestMessage. Its 8-byte header gives the length of the rest
(`binary.message_length`), checked against `--max-request-bytes` (the HTTP limit) before anything more is read. A
connection serves messages one after another until the client closes it. A message that cannot be decoded is
answered with an InvalidMessage ResponseMessage, then the connection is closed, because the framing of what
follows can no longer be trusted. A message that decodes but is not a valid request is answered by the engine
like any other, and the connection stays open.

Identity: every request runs as `--default-username`, exactly as over HTTP. Objects belong to whoever creates them
and only their owner may use them, so until there is per-user access control, mapping the certificate to a user
would hide from a client over this socket the objects that the same client created over HTTP. The certificate's
identity is used once authentication and access control arrive (issue 6). Until then the verified common name is
only logged, at debug level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kms.config import ServerConfig
from kms.core.kms import Kms, ServerIdentity
from kms.kmip import binary
from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError, invalid_message
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType
from kms.server.tls import p12_to_pem_files

log = logging.getLogger("kms.socket")

HANDSHAKE_TIMEOUT = 30.0  # seconds for a client to complete the TLS handshake
IDLE_TIMEOUT = 300.0  # seconds a connection may wait between two messages (clients keep one open across calls)
MESSAGE_TIMEOUT = 60.0  # seconds for the whole of a message once its first byte arrived (no slow-drip clients)
MAX_CONNECTIONS = 256  # connections served at once (one thread each); more are closed at once
# Requests executed at once; the others wait their turn. Below the store's 24 pooled connections, so that a burst
# queues here, in order, rather than timing out in the pool. (One thread runs Python at a time anyway.)
MAX_REQUESTS_AT_ONCE = 16
STOP_GRACE = 10.0  # seconds the requests in progress get to finish when the listener stops
READY_TIMEOUT = 60.0  # seconds kms-server waits for the child to listen
CHILD_FLAG = "--child-of-kms-server"

# Tag 0x420078 (RequestMessage) and type Structure: what the first 4 bytes of every request must be.
_REQUEST_START = ((Tag.RequestMessage << 8) | ItemType.Structure).to_bytes(4, "big")


class SocketServerError(Exception):
    """The listener could not start; the message says why."""


class _ClientGone(Exception):
    """The client closed the connection, timed out or broke TLS: nothing more can be sent to it."""


def server_tls_context(cert_path: str, key_path: str, authority_cert_file: str | None) -> ssl.SSLContext:
    """TLS 1.2+ server context. With an authority file, client certificates are required and verified against it
    (OpenSSL also checks that their extended key usage allows clientAuth). Without one, none is asked for: there
    would be nothing to verify it against, and an unverified certificate proves nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    if authority_cert_file:
        context.load_verify_locations(cafile=authority_cert_file)
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def context_from_config(config: ServerConfig) -> ssl.SSLContext:
    """Load the server certificate from the PKCS#12; the PEM copy of the key lives on disk only while loading."""
    if not config.https_p12_file:
        raise SocketServerError("the KMIP socket listener needs --https-p12-file: it serves TLS only")
    with tempfile.TemporaryDirectory(prefix="kms-socket-tls-") as tmp:
        os.chmod(tmp, 0o700)
        try:
            cert, key = p12_to_pem_files(Path(config.https_p12_file), config.https_p12_password, Path(tmp))
            return server_tls_context(cert, key, config.authority_cert_file)
        except (ValueError, OSError, ssl.SSLError) as exc:
            raise SocketServerError(f"cannot set up TLS for the KMIP socket listener: {exc}") from None


def peer_common_name(conn: ssl.SSLSocket) -> str | None:
    """Common name of the verified client certificate, if the handshake verified one."""
    cert = conn.getpeercert()
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


class SocketServer:
    """Accepts TLS connections and serves each in a thread of its own, one KMIP message at a time."""

    def __init__(
        self,
        kms: Kms,
        context: ssl.SSLContext,
        *,
        host: str,
        port: int,
        user: str,
        max_message_bytes: int,
    ) -> None:
        self.kms = kms
        self.context = context
        self.user = user
        self.max_message_bytes = max_message_bytes
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.listener = socket.create_server((host, port), family=family, backlog=128)
        except OSError as exc:
            raise SocketServerError(f"cannot listen on {host}:{port} for KMIP: {exc}") from None
        self.listener.setblocking(False)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self._wake_r, self._wake_w = os.pipe()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._executing = threading.BoundedSemaphore(MAX_REQUESTS_AT_ONCE)
        self._lock = threading.Lock()
        self._active: dict[ssl.SSLSocket | socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()

    @classmethod
    def from_config(cls, config: ServerConfig) -> SocketServer:
        from kms.server.app import VERSION  # the version the HTTP side reports, in one place
        from kms.store.base import StoreError
        from kms.store.factory import open_store

        context = context_from_config(config)
        try:
            store = open_store(config)
        except StoreError as exc:
            raise SocketServerError(f"cannot open the database: {exc}") from None
        identity = ServerIdentity(vendor_identification=config.vendor_identification, version=VERSION)
        kms = Kms(store, identity=identity, cache_capacity=config.cache_capacity)
        return cls(
            kms,
            context,
            host=config.socket_server_hostname,
            port=config.socket_server_port,
            user=config.default_username,
            max_message_bytes=config.max_request_bytes,
        )

    # ------------------------------------------------------------------------------------------ accept loop

    def serve_forever(self) -> None:
        """Accept until `stop()`; then let the requests in progress finish (bounded) and close everything."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self.listener:
                        self._accept()
        self._close()

    def stop(self) -> None:
        """Ask `serve_forever` to return; safe from a signal handler or any thread."""
        self._stopping.set()
        with contextlib.suppress(OSError):  # already closed: the server has stopped
            os.write(self._wake_w, b"x")

    def _accept(self) -> None:
        try:
            conn, peer = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # the client went away between readiness and accept
        if not self._slots.acquire(blocking=False):
            log.warning("refusing a KMIP connection from %s: %d connections already open", peer[0], MAX_CONNECTIONS)
            conn.close()
            return
        thread = threading.Thread(target=self._connection, args=(conn, peer), name=f"kmip-{peer[0]}", daemon=True)
        with self._lock:
            self._active[conn] = thread
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: refuse this connection, keep serving the others
            log.error("refusing a KMIP connection from %s: cannot start a thread for it", peer[0])
            with self._lock:
                self._active.pop(conn, None)
            conn.close()
            self._slots.release()

    def _close(self) -> None:
        self.listener.close()
        with self._lock:
            # Wake the connections waiting for a message (they see end of file); a request being served finishes
            # and is still answered, since only the reading side is shut.
            for conn in self._active:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RD)
            threads = list(self._active.values())
        deadline = time.monotonic() + STOP_GRACE
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.kms.store.close()

    # ------------------------------------------------------------------------------------------ one connection

    def _connection(self, raw: socket.socket, peer: tuple) -> None:
        conn: ssl.SSLSocket | socket.socket = raw
        try:
            raw.settimeout(HANDSHAKE_TIMEOUT)
            tls = self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            with self._lock:
                self._active[tls] = self._active.pop(raw)
            conn = tls
            tls.do_handshake()
            log.debug("KMIP connection from %s:%d, client certificate CN %s", peer[0], peer[1], peer_common_name(tls))
            self._serve(tls)
        except _ClientGone as exc:
            log.debug("KMIP connection from %s closed: %s", peer[0], exc)
        except (ssl.SSLError, OSError) as exc:  # handshake refused (no or bad certificate, not TLS) or I/O error
            log.info("KMIP connection from %s dropped: %s", peer[0], exc)
        except Exception:
            log.exception("unexpected error on a KMIP connection from %s", peer[0])
        finally:
            with self._lock:
                self._active.pop(conn, None)
            conn.close()
            self._slots.release()

    def _serve(self, conn: ssl.SSLSocket) -> None:
        while not self._stopping.is_set():
            header = self._read(conn, 8, IDLE_TIMEOUT, at_start=True)
            if header is None:
                return  # the client closed between messages: the normal end of a session
            deadline = time.monotonic() + MESSAGE_TIMEOUT
            if header[:4] != _REQUEST_START:
                self._reject(conn, invalid_message("expected a binary TTLV RequestMessage"))
                return
            total = binary.message_length(header)
            if total > self.max_message_bytes:
                # Refused without reading the rest: the declared length alone decides.
                self._reject(
                    conn, invalid_message(f"message of {total} bytes exceeds the {self.max_message_bytes} byte limit")
                )
                return
            body = self._read(conn, total - 8, deadline - time.monotonic())
            assert body is not None
            try:
                request = binary.decode(header + body)
            except KmipError as exc:
                self._reject(conn, exc)
                return
            self._send(conn, binary.encode(self._handle(request)))

    def _handle(self, request: TTLV) -> TTLV:
        try:
            with self._executing:
                return self.kms.handle_message(request, self.user)
        except Exception:  # a bug, not a protocol error: the framing is intact, so answer and go on
            log.exception("unexpected error serving a KMIP message")
            return self.kms.failure_message(KmipError(ResultReason.GeneralFailure, "internal server error"))

    def _reject(self, conn: ssl.SSLSocket, exc: KmipError) -> None:
        """Answer an unreadable message with a failure; the caller then closes the connection."""
        log.info("KMIP message rejected: %s", exc.message)
        self._send(conn, binary.encode(self.kms.failure_message(exc)))

    @staticmethod
    def _send(conn: ssl.SSLSocket, data: bytes) -> None:
        conn.settimeout(MESSAGE_TIMEOUT)
        try:
            conn.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            raise _ClientGone(f"cannot send the response: {exc}") from None

    @staticmethod
    def _read(conn: ssl.SSLSocket, size: int, timeout: float, *, at_start: bool = False) -> bytes | None:
        """Exactly `size` bytes within `timeout` seconds. None if the client closed before the first byte and
        `at_start` (a clean end of session); _ClientGone if it closed or stalled part way."""
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        deadline = time.monotonic() + timeout
        while got < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ClientGone(f"timed out after {got} of {size} bytes")
            conn.settimeout(remaining)
            try:
                n = conn.recv_into(view[got:], size - got)
            except TimeoutError:
                raise _ClientGone(f"timed out after {got} of {size} bytes") from None
            except (OSError, ssl.SSLError) as exc:
                raise _ClientGone(str(exc)) from None
            if n == 0:
                if got == 0 and at_start:
                    return None
                raise _ClientGone(f"closed after {got} of {size} bytes")
            got += n
        return bytes(buf)


# ---------------------------------------------------------------------------------------------- kms-server side


class ListenerProcess:
    """The listener child as kms-server sees it: started before gunicorn, stopped in kms-server's `finally`."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._owner = os.getpid()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="kmip-listener-watch", daemon=True)
        self.died = False

    @classmethod
    def start(cls, config: ServerConfig, timeout: float = READY_TIMEOUT) -> ListenerProcess:
        """Launch the child and return once it listens; SocketServerError if it does not (its log says why)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "kms.server.socket_server", CHILD_FLAG],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(dataclasses.asdict(config)).encode() + b"\n")
            proc.stdin.flush()
            readable, _, _ = select.select([proc.stdout], [], [], timeout)
            line = proc.stdout.readline() if readable else b""
        except OSError:  # the child died before reading its configuration
            line = b""
        if line.strip() != b"ready":
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()
            raise SocketServerError("the KMIP socket listener did not start (its error is logged above)")
        listener = cls(proc)
        listener._watcher.start()
        return listener

    def _watch(self) -> None:
        assert self._proc.stdout is not None
        # os.read, not the buffered file: a thread blocked in a buffered read holds its lock, and gunicorn's workers
        # are forked with that lock taken.
        fd = self._proc.stdout.fileno()
        while os.read(fd, 4096):
            pass  # end of file: the child has exited
        if not self._stopping.is_set():
            self.died = True
            logging.getLogger("kms").error("the KMIP socket listener exited unexpectedly: stopping the server")
            os.kill(os.getpid(), signal.SIGTERM)  # gunicorn's arbiter shuts down gracefully on SIGTERM

    def stop(self) -> bool:
        """Stop the child; False if it had died on its own (kms-server then exits with a failure status)."""
        if os.getpid() != self._owner:
            # A gunicorn worker leaving through kms-server's main(): it was forked from the owner and inherited this
            # object, but the listener is not its to stop.
            return True
        self._stopping.set()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=STOP_GRACE + 5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._watcher.join(STOP_GRACE)  # it sees end of file now that the child is gone; then close its pipe
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        return not self.died


# ---------------------------------------------------------------------------------------------- child side


def _read_line(fd: int) -> bytes:
    """The configuration line, read unbuffered so that nothing after it is swallowed by a buffer."""
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    return bytes(line) or b"{}"


def _watch_parent(fd: int, server: SocketServer) -> None:
    # os.read, not sys.stdin: a daemon thread blocked in a buffered read would hold its lock at interpreter exit.
    while os.read(fd, 4096):
        pass  # end of file: kms-server has exited (even if it was killed)
    server.stop()


def main(argv: list[str] | None = None) -> None:
    """Child entry point: read the configuration from stdin, listen, say `ready`, serve until told to stop."""
    args = sys.argv[1:] if argv is None else argv
    if args != [CHILD_FLAG]:
        print("kms.server.socket_server is started by kms-server --socket-server-start", file=sys.stderr)
        raise SystemExit(2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: kms-server decides, then stops us
    config = ServerConfig(**json.loads(_read_line(sys.stdin.fileno())))
    logging.basicConfig(
        level=logging.WARNING if config.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        server = SocketServer.from_config(config)
    except SocketServerError as exc:
        log.error("KMS socket server cannot start: %s", exc)
        raise SystemExit(2) from None
    log.info("KMS socket server listening on tls://%s:%d", server.host, server.port)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    threading.Thread(target=_watch_parent, args=(sys.stdin.fileno(), server), daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    log.info("KMS socket server ready")  # connections are accepted from now on (the socket listens already)
    server.serve_forever()
    log.info("KMS socket server stopped")


if __name__ == "__main__":
    main()
