"""TLS for attested servers: fetch a certificate without trusting it, then talk only to that exact certificate.

Cosmian's `bootstrap-start` verified the RA-TLS certificate once and then sent its secrets over new connections
that accepted any certificate (cosmian-reference.md §7, weakness 3). Here every connection of a `PinnedClient`,
including the new ones a keep-alive pool opens later, compares SHA-256 of the peer's certificate (DER) with the
verified one right after the handshake and before a single byte of the request is written; a mismatch raises
`PinMismatch`, which is deliberately not an OSError so that urllib3 and requests neither retry nor rewrap it.

No proxy is used (`trust_env` off): the certificate is fetched over a direct socket, so the requests must reach
the same endpoint the same way, and the environment cannot swap in another CA bundle or proxy behind our back.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ckms.client import _load_client_certificate, _one_line, _root_cause
from ckms.errors import ClientError, CliError

CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0


class PinMismatch(Exception):
    """The server presented another certificate than the pinned one (not an OSError: never retried/rewrapped)."""

    def __init__(self, expected: str, got: str | None) -> None:
        self.expected = expected
        self.got = got
        seen = f"sha256 {got}" if got else "no certificate"
        super().__init__(f"the server presented {seen}, the pinned certificate is sha256 {expected}")


def fingerprint(der: bytes) -> str:
    """SHA-256 of a certificate's DER, hex: the pin."""
    return hashlib.sha256(der).hexdigest()


def https_endpoint(url: str) -> tuple[str, int]:
    """(host, port) of an https:// URL (port 443 when absent); CliError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise CliError(f"{url}: an https:// URL is required (the server must be attested over TLS)")
    if not parts.hostname:
        raise CliError(f"{url}: no host")
    try:
        port = parts.port or 443
    except ValueError:
        raise CliError(f"{url}: bad port") from None
    return parts.hostname, port


def base_url(url: str) -> str:
    """https://host:port, without path, query or trailing slash (what the configuration stores)."""
    host, port = https_endpoint(url)
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"


def tls_context(
    *,
    verify: bool = False,
    cafile: Path | None = None,
    client_pkcs12: Path | None = None,
    client_password: str | None = None,
) -> ssl.SSLContext:
    """A client context: no certificate validation (pinning or attestation decides) unless `verify`, then the
    system roots or `cafile` with hostname checking. The owner's PKCS#12, when given, is presented as the client
    certificate (its key touches disk only inside a private temporary directory, as ckms.client does)."""
    if verify:
        try:
            context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        except (OSError, ssl.SSLError) as exc:
            raise CliError(f"cannot use the CA file {cafile}: {exc}") from None
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_pkcs12 is not None:
        _load_client_certificate(context, str(client_pkcs12), client_password)
    return context


def fetch_certificate(url: str, context: ssl.SSLContext, timeout: float = CONNECT_TIMEOUT) -> bytes:
    """The DER certificate the server at `url` presents, from a bare TLS handshake with `context` (ClientError
    when the connection or the handshake fails; with a verifying context that includes an invalid chain)."""
    host, port = https_endpoint(url)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        raise CertificateRejected(
            f"the certificate of {host}:{port} does not verify: {exc.verify_message or exc}"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise ClientError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    if not der:
        raise ClientError(f"{host}:{port} presented no certificate")
    return der


# ------------------------------------------------------------------------------------------------ pinned HTTP


class _PinnedConnection(HTTPSConnection):
    """An HTTPS connection that refuses any peer but the pinned certificate (`pin` is set on a subclass)."""

    pin: bytes = b""

    def connect(self) -> None:
        super().connect()
        sock: Any = self.sock
        der = sock.getpeercert(binary_form=True) if sock is not None else None
        if not der or not self.pin or not hmac.compare_digest(hashlib.sha256(der).digest(), self.pin):
            self.close()
            raise PinMismatch(self.pin.hex(), fingerprint(der) if der else None)
        # The pin is a stronger check than a CA chain: tell urllib3 so it does not warn about an unverified peer.
        self.is_verified = True


def _pinned_pool(pin: bytes) -> type[HTTPSConnectionPool]:
    connection = type("PinnedConnection", (_PinnedConnection,), {"pin": pin})
    return type("PinnedConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": connection})


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, pin: bytes, context: ssl.SSLContext) -> None:
        self._pool_cls = _pinned_pool(pin)
        self._context = context
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self._context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": HTTPConnectionPool, "https": self._pool_cls}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise CliError("a pinned connection cannot go through a proxy")


class CertificateRejected(ClientError):
    """A verifying handshake refused the server's certificate (chain, hostname, validity)."""


class ServerRefused(ClientError):
    """The server answered with an error status; `message` holds its `{"error": ...}` text."""


class PinnedClient:
    """JSON over HTTPS to one server whose certificate is pinned by SHA-256 of its DER.

    Raises PinMismatch when a connection meets another certificate, ServerRefused for an HTTP error status,
    ClientError when the server cannot be reached or answers something that is not JSON.
    """

    def __init__(
        self, url: str, pin_der: bytes, context: ssl.SSLContext, headers: dict[str, str] | None = None
    ) -> None:
        self.base_url = base_url(url)
        self.pin = fingerprint(pin_der)
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = False  # the pin replaces chain validation; the context does not validate either
        self.session.headers.update(headers or {})
        self.session.mount("https://", _PinnedAdapter(hashlib.sha256(pin_der).digest(), context))
        self.session.mount("http://", _RefuseAdapter())

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> PinnedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                body: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        try:
            resp = self.session.request(
                method, url, params=params, json=body, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), verify=False,
                allow_redirects=False,
            )
        except PinMismatch:
            raise
        except requests.exceptions.Timeout:
            raise ClientError(f"{self.base_url} did not answer {method} {path} in time") from None
        except requests.exceptions.RequestException as exc:
            cause = _root_cause(exc)
            if isinstance(cause, PinMismatch):
                raise cause from None
            detail = _one_line(str(cause)) or type(cause).__name__
            raise ClientError(f"{method} {path} to {self.base_url} failed: {detail}") from None
        text = resp.text
        try:
            value = resp.json()
        except ValueError:
            value = None
        if resp.status_code != 200:
            message = value.get("error") if isinstance(value, dict) else None
            if not isinstance(message, str):
                message = _one_line(text)[:200] if text and not text.lstrip().startswith("<") else resp.reason
            raise ServerRefused(f"HTTP {resp.status_code}: {_one_line(str(message))}", resp.status_code)
        if value is None:
            raise ClientError(f"{method} {path}: the answer of {self.base_url} is not JSON")
        return value

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body=body)


class _RefuseAdapter(HTTPAdapter):
    """Plain HTTP is never spoken to an attested server (a redirect to http:// must not leak anything)."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        raise CliError(f"refusing plain HTTP to {request.url}")
