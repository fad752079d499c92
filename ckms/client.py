"""HTTP transport to the KMS: bare Cosmian-style KMIP JSON operations on `POST /kmip/2_1`, and `GET /version`.

One `requests.Session` per client: keep-alive makes a multi-call stream (Encrypt/Decrypt with a correlation
value) reach the same server worker over the same connection, and saves a TLS handshake per call. Requests and
responses are built and read with `kms.kmip` only, so the CLI and the server can never disagree on a field name.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ckms.config import ClientConfig
from ckms.errors import ClientError, CliError
from kms.kmip import json_codec, schema
from kms.kmip.attributes import RevocationReason
from kms.kmip.enums import Operation, RevocationReasonCode
from kms.kmip.errors import KmipError
from kms.kmip.payloads import (
    PAYLOADS,
    CreateRequest,
    CreateResponse,
    DecryptRequest,
    DecryptResponse,
    DeleteAttributeRequest,
    DestroyRequest,
    EncryptRequest,
    EncryptResponse,
    ExportRequest,
    ExportResponse,
    GetAttributesRequest,
    GetAttributesResponse,
    GetRequest,
    GetResponse,
    ImportRequest,
    ImportResponse,
    LocateRequest,
    LocateResponse,
    ReKeyRequest,
    ReKeyResponse,
    RevokeRequest,
    SetAttributeRequest,
    UidResponse,
)
from kms.kmip.registry import tag_name
from kms.kmip.ttlv import PSEUDO_BASE_REQUEST, PSEUDO_BASE_RESPONSE, TTLV

KMIP_PATH = "/kmip/2_1"
VERSION_PATH = "/version"
NEW_DATABASE_PATH = "/new_database"
# Generous read timeout: a 1 MiB streaming chunk or a slow database must not be cut off, but a dead server
# must not hang a script forever either.
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 600.0
DATABASE_SECRET_HEADER = "KmsDatabaseSecret"


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text.strip())


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception: urllib3 nests the socket error several levels down."""
    seen: set[int] = set()
    cur: BaseException = exc
    while id(cur) not in seen:
        seen.add(id(cur))
        nxt = getattr(cur, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = cur.__cause__ or cur.__context__
        if nxt is None:
            for arg in getattr(cur, "args", ()):
                if isinstance(arg, BaseException):
                    nxt = arg
                    break
        if nxt is None:
            break
        cur = nxt
    return cur


class _TlsAdapter(HTTPAdapter):
    """Adapter carrying our own SSL context (client certificate in memory) and, optionally, a pinned leaf."""

    def __init__(self, context: ssl.SSLContext, fingerprint: str | None) -> None:
        self._context = context
        self._fingerprint = fingerprint
        super().__init__()

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self._context
        if self._fingerprint:
            pool_kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def _leaf_fingerprint(pem: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise CliError(f"verified_cert in the configuration is not a PEM certificate: {exc}") from None
    return cert.fingerprint(hashes.SHA256()).hex()


def _load_client_certificate(context: ssl.SSLContext, path: str, password: str | None) -> None:
    """Load a PKCS#12 into the SSL context; the key touches disk only for the instant `ssl` needs to read it."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read ssl_client_pkcs12_path {path}: {exc.strerror or exc}") from None
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError as exc:
        raise CliError(f"cannot open the PKCS#12 {path} (wrong password?): {exc}") from None
    if key is None or cert is None:
        raise CliError(f"the PKCS#12 {path} must hold a private key and its certificate")
    pem_chain = cert.public_bytes(Encoding.PEM) + b"".join(c.public_bytes(Encoding.PEM) for c in chain or ())
    pem_key = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory(prefix="ckms-tls-") as tmp:
        cert_file = os.path.join(tmp, "cert.pem")
        key_file = os.path.join(tmp, "key.pem")
        for name, content in ((cert_file, pem_chain), (key_file, pem_key)):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
        try:
            context.load_cert_chain(cert_file, key_file)
        except ssl.SSLError as exc:
            raise CliError(f"cannot use the client certificate from {path}: {exc}") from None


class KmsClient:
    """A connection to one KMS; every method is one HTTP exchange and raises `ClientError` on any failure."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        print_json: bool = False,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = config.kms_server_url.rstrip("/")
        self.print_json = print_json
        self._echo = echo or (lambda _text: None)
        self.session = requests.Session()
        self._configure(config)

    # -------------------------------------------------------------------------------------- connection setup

    def _configure(self, config: ClientConfig) -> None:
        session = self.session
        if config.kms_access_token:
            session.headers["Authorization"] = f"Bearer {config.kms_access_token}"
        if config.kms_database_secret:
            session.headers[DATABASE_SECRET_HEADER] = config.kms_database_secret
        pinned = config.pinned_cert
        # A pinned leaf (set by `ckms verify` after attestation) is a stronger check than a CA chain, and the
        # attested certificate is usually self-signed: pinning replaces chain validation instead of adding to it.
        verify = not config.accept_invalid_certs and not pinned
        # Also passed on every request: a session-level False loses to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in the
        # environment, and an explicit argument does not.
        self._verify = verify
        session.verify = verify
        if not verify:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if pinned or config.ssl_client_pkcs12_path:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
            if config.ssl_client_pkcs12_path:
                _load_client_certificate(context, config.ssl_client_pkcs12_path, config.ssl_client_pkcs12_password)
            fingerprint = _leaf_fingerprint(pinned) if pinned else None
            session.mount("https://", _TlsAdapter(context, fingerprint))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> KmsClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, body: bytes | None = None) -> requests.Response:
        url = self.base_url + path
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            return self.session.request(
                method, url, data=body, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), verify=self._verify
            )
        except requests.exceptions.SSLError as exc:
            raise ClientError(f"TLS failure talking to the KMS server at {self.base_url}: {_root_cause(exc)}") from None
        except requests.exceptions.Timeout:
            raise ClientError(f"the KMS server at {self.base_url} did not answer in time") from None
        except requests.exceptions.ConnectionError as exc:
            cause = _root_cause(exc)
            if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
                detail = "connection refused (is the server running?)"
            else:
                detail = _one_line(str(cause)) or type(cause).__name__
            raise ClientError(f"cannot connect to the KMS server at {self.base_url}: {detail}") from None
        except requests.exceptions.RequestException as exc:
            raise ClientError(f"request to the KMS server at {self.base_url} failed: {_one_line(str(exc))}") from None

    def _check(self, resp: requests.Response) -> None:
        if resp.status_code == 200:
            return
        text = resp.text.strip() if resp.content else ""
        # An HTML page (proxy, wrong port, 404 from a web server) says nothing useful on one line.
        if not text or text.startswith("<"):
            text = f"HTTP {resp.status_code} {resp.reason or ''} from {resp.url}".replace("  ", " ")
        raise ClientError(_one_line(text), resp.status_code)

    def _dump(self, label: str, text: str | bytes) -> None:
        if not self.print_json:
            return
        try:
            pretty = json.dumps(json.loads(text), indent=2)
        except ValueError:
            pretty = text.decode(errors="replace") if isinstance(text, bytes) else text
        self._echo(f"{label}\n{pretty}")

    # ------------------------------------------------------------------------------------------------ KMIP

    def call(self, operation: Operation, request: Any) -> Any:
        """Send one bare operation and return the typed response payload."""
        request_cls, response_cls = PAYLOADS[operation]
        if not isinstance(request, request_cls):
            raise TypeError(f"{operation.name} needs a {request_cls.__name__}, got {type(request).__name__}")
        body = json_codec.dumps(schema.encode(request, PSEUDO_BASE_REQUEST + operation))
        self._dump(f"==> {operation.name} request (POST {self.base_url}{KMIP_PATH})", body)
        resp = self._request("POST", KMIP_PATH, body.encode())
        self._dump(f"<== {operation.name} response (HTTP {resp.status_code})", resp.content)
        self._check(resp)
        try:
            item = json_codec.loads(resp.content)
        except KmipError as exc:
            raise ClientError(f"unreadable {operation.name} response from the KMS server: {exc.message}") from None
        if item.tag != PSEUDO_BASE_RESPONSE + operation:
            raise ClientError(f"the KMS server answered {operation.name} with {tag_name(item.tag)}")
        try:
            return schema.decode(response_cls, item)
        except KmipError as exc:
            raise ClientError(f"invalid {operation.name} response from the KMS server: {exc.message}") from None

    def new_database(self) -> str:
        """POST /new_database (sqlite-enc servers only): the secret of a new group database, shown once."""
        resp = self._request("POST", NEW_DATABASE_PATH)
        if resp.status_code == 404:
            raise ClientError(
                f"the KMS server at {self.base_url} does not create databases: it does not run with "
                "--database-type sqlite-enc",
                404,
            )
        self._check(resp)
        try:
            value = resp.json()
        except ValueError:
            value = None
        if not isinstance(value, str) or not value:
            raise ClientError("the KMS server answered /new_database without a database secret")
        return value

    def server_version(self) -> str:
        resp = self._request("GET", VERSION_PATH)
        self._check(resp)
        try:
            value = resp.json()
        except ValueError:
            return resp.text.strip()
        return value if isinstance(value, str) else json.dumps(value)

    # One typed method per operation: call sites read like the protocol and get typed responses.

    def create(self, request: CreateRequest) -> CreateResponse:
        return self.call(Operation.Create, request)

    def import_object(self, request: ImportRequest) -> ImportResponse:
        return self.call(Operation.Import, request)

    def get(self, request: GetRequest) -> GetResponse:
        return self.call(Operation.Get, request)

    def export(self, request: ExportRequest) -> ExportResponse:
        return self.call(Operation.Export, request)

    def revoke(self, unique_identifier: str, message: str) -> UidResponse:
        reason = RevocationReason(RevocationReasonCode.Unspecified, revocation_message=message)
        request = RevokeRequest(unique_identifier=unique_identifier, revocation_reason=reason)
        return self.call(Operation.Revoke, request)

    def destroy(self, unique_identifier: str) -> UidResponse:
        return self.call(Operation.Destroy, DestroyRequest(unique_identifier=unique_identifier))

    def rekey(self, unique_identifier: str) -> ReKeyResponse:
        return self.call(Operation.ReKey, ReKeyRequest(unique_identifier=unique_identifier))

    def locate(self, request: LocateRequest) -> LocateResponse:
        return self.call(Operation.Locate, request)

    def get_attributes(self, unique_identifier: str, references: list[TTLV]) -> GetAttributesResponse:
        request = GetAttributesRequest(unique_identifier=unique_identifier, attribute_reference=references)
        return self.call(Operation.GetAttributes, request)

    def set_attribute(self, request: SetAttributeRequest) -> UidResponse:
        return self.call(Operation.SetAttribute, request)

    def delete_attribute(self, request: DeleteAttributeRequest) -> UidResponse:
        return self.call(Operation.DeleteAttribute, request)

    def encrypt(self, request: EncryptRequest) -> EncryptResponse:
        return self.call(Operation.Encrypt, request)

    def decrypt(self, request: DecryptRequest) -> DecryptResponse:
        return self.call(Operation.Decrypt, request)
