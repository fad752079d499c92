"""A stand-in for the appliance (bootstrap server, then main KMS) that follows bootstrap/PROTOCOL.md, to test
`ckms bootstrap start` and `ckms verify` as a user runs them, while the real server is written elsewhere.

It serves real TLS with an RA-TLS certificate built by `attestation.ratls.build_certificate` over a
`SimulatedTee`, answers `GET /attestation?nonce=` with fresh evidence bound to its key and our nonce, keeps the
state machine of PROTOCOL.md (409 out of order, 403 for a non-owner when an owner is set), and after `/start`
serves the provisioned chain with the API key (`/version`, `/tee/attestation`, `/tee/certificate`).

Every request is recorded, so tests assert what ckms sent and, above all, what it did NOT send after a failed
check. The attacks of spec §7 are switches on the instance: a swapped key for later connections, a replayed
answer, a debug guest, a certificate carrying another key's evidence or tampered extension bytes.

The TLS context is chosen per accepted connection (`get_request`), which is how the key can change between two
connections of the same client.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import itertools
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask, Response, jsonify, request
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from attestation.ratls import (
    OID_STANDARD,
    build_certificate,
    make_claims,
    read_certificate,
    report_data_for_claims,
    spki_der,
)
from attestation.tee.simulated import SimulatedTee

SUBJECT = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cosmian.kms.bootstrap")])
VERSION = "4.99.0-fake"
DATABASE_TYPES = ("sqlite", "sqlite-enc", "postgresql", "mysql", "redis-findex")
PROVISIONING = ("/csr", "/certificate", "/database", "/start")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: Any
    client_cert: str | None  # PEM of the TLS client certificate, if one was presented


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def resign_with_extension(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, value: bytes
) -> x509.Certificate:
    """`cert` with its RA-TLS extension replaced by `value`, self-signed again by `key` (so only the evidence
    is wrong, not the certificate signature)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.subject)
        .public_key(key.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        if ext.oid == OID_STANDARD:
            builder = builder.add_extension(x509.UnrecognizedExtension(OID_STANDARD, value), critical=False)
        elif isinstance(ext.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        else:
            builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(key, hashes.SHA256())


def server_context(chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey,
                   client_ca: x509.Certificate | None) -> ssl.SSLContext:
    """A server context (files only for the instant `ssl` reads them); asks for a client certificate issued by
    `client_ca` (the owner's self-signed certificate) when given, without requiring one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "c.pem"), Path(tmp, "k.pem")
        cert_file.write_text("".join(pem(c) for c in chain))
        key_file.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        )
        context.load_cert_chain(cert_file, key_file)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cadata=pem(client_ca))
    return context


class FakeAppliance:
    """One appliance: bootstrap mode until `/start`, then the main KMS, on one port."""

    def __init__(
        self,
        sim_dir: Path,
        kind: str = "sev-snp",
        *,
        measurement: bytes | None = None,
        host_data: bytes | None = None,
        debug: bool = False,
        owner: x509.Certificate | None = None,
    ) -> None:
        self.tee = SimulatedTee(sim_dir, kind, measurement=measurement, host_data=host_data)
        self.kind = kind
        self.tee_name = f"simulated-{kind}"
        self.debug = debug
        self.owner = owner
        self.owner_sha256 = hashlib.sha256(spki_der(owner)).digest() if owner is not None else None
        self.bootstrap_key = new_key()
        self.api_key = new_key()
        self.bootstrap_cert = self.ratls_certificate(self.bootstrap_key)
        self.state = "waiting-certificate"
        self.chain: list[x509.Certificate] = []
        self.database: dict[str, Any] | None = None
        self.requests: list[Recorded] = []
        self.connections = 0
        # Attack switches.
        self.serve_cert: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None  # instead of bootstrap
        self.swap_to: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
        self.swap_after_connections: int | None = None  # new connections from this count on get swap_to
        self.swap_after_attestation = False  # ... or once an attestation answer was sent
        self.replay: dict[str, Any] | None = None  # answer returned to every GET (tee/)attestation
        self.answer_key: ec.EllipticCurvePrivateKey | None = None  # fresh answers bound to this key instead
        self.close_connections = False
        self.handover = True  # False: after /start, keep presenting the bootstrap certificate (a KMS that never came)
        self.refuse: dict[str, tuple[int, str]] = {}  # path -> (status, error) for a server-side refusal
        self._attested = False
        self._lock = threading.Lock()
        self._contexts: dict[int, ssl.SSLContext] = {}
        self.app = self._build_app()
        self._server: ThreadedWSGIServer | None = None

    # ---------------------------------------------------------------------------------------- evidence

    def evidence(self, report_data: bytes) -> tuple[bytes, str | None]:
        if self.debug:
            tee = self.tee
            if self.kind == "sev-snp":
                report = tee.amd.extended_report(report_data, tee.measurement, host_data=tee.host_data, debug=True)
                return report, None
            if self.kind == "tdx":
                quote = tee.intel.tdx_quote(report_data, tee.measurement, mrconfigid=tee.host_data, debug=True)
                return quote, tee.intel.collateral("tdx")
            quote = tee.intel.sgx_quote(report_data, tee.measurement, tee.mrsigner, debug=True)
            return quote, tee.intel.collateral("sgx")
        ev = self.tee.quote(report_data)
        data = ev.data + ev.certificates if ev.kind == "sev-snp" and ev.certificates else ev.data
        return data, ev.collateral

    def ratls_certificate(self, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        return build_certificate(
            key, SUBJECT, lambda rd: self.evidence(rd)[0], tee=self.tee_name, sans=["localhost", "127.0.0.1"]
        )

    def answer(self, key: ec.EllipticCurvePrivateKey, nonce: bytes) -> dict[str, Any]:
        """A fresh attestation answer exactly as PROTOCOL.md describes it."""
        claims = make_claims(spki_der(key), nonce=nonce)
        evidence, collateral = self.evidence(report_data_for_claims(claims))
        return {
            "tee": self.tee_name,
            "evidence": base64.b64encode(evidence).decode(),
            "claims": base64.b64encode(claims).decode(),
            "collateral": collateral,
        }

    def extension_value(self) -> bytes:
        return read_certificate(self.bootstrap_cert).extension_value

    # ---------------------------------------------------------------------------------------- TLS

    def _context(self, cert_chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey) -> ssl.SSLContext:
        ident = id(cert_chain[0])
        if ident not in self._contexts:
            self._contexts[ident] = server_context(cert_chain, key, self.owner)
        return self._contexts[ident]

    def context_for_new_connection(self) -> ssl.SSLContext:
        with self._lock:
            number = self.connections
            self.connections += 1
            swapped = self.swap_to is not None and (
                (self.swap_after_connections is not None and number >= self.swap_after_connections)
                or (self.swap_after_attestation and self._attested)
            )
            if swapped:
                assert self.swap_to is not None
                return self._context([self.swap_to[0]], self.swap_to[1])
            if self.state == "started" and self.handover:
                return self._context(self.chain, self.api_key)
            cert, key = self.serve_cert or (self.bootstrap_cert, self.bootstrap_key)
            return self._context([cert], key)

    # ---------------------------------------------------------------------------------------- HTTP

    def posts(self) -> list[str]:
        return [r.path for r in self.requests if r.method == "POST"]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def _build_app(self) -> Flask:
        app = Flask("fake-appliance")
        fake = self

        def error(status: int, message: str) -> Response:
            resp = jsonify({"error": message})
            resp.status_code = status
            return resp

        @app.before_request
        def record() -> Response | None:
            body = request.get_json(silent=True) if request.method == "POST" else None
            fake.requests.append(
                Recorded(request.method, request.path, body, request.environ.get("SSL_CLIENT_CERT"))
            )
            started = fake.state == "started"
            main_only = request.path in ("/version", "/tee/attestation", "/tee/certificate")
            if started != main_only:
                return error(404, "not found")
            if request.path in fake.refuse:
                status, message = fake.refuse[request.path]
                return error(status, message)
            if request.method == "POST" and request.path in PROVISIONING and fake.owner_sha256 is not None:
                presented = request.environ.get("SSL_CLIENT_CERT")
                if presented is None or hashlib.sha256(
                    spki_der(x509.load_pem_x509_certificate(presented.encode()))
                ).digest() != fake.owner_sha256:
                    return error(403, "provisioning requires the owner's client certificate")
            return None

        @app.after_request
        def close(resp: Response) -> Response:
            if fake.close_connections:
                resp.headers["Connection"] = "close"
            return resp

        def attestation(key: ec.EllipticCurvePrivateKey) -> Response:
            nonce_hex = request.args.get("nonce", "")
            try:
                nonce = bytes.fromhex(nonce_hex)
            except ValueError:
                nonce = b""
            if len(nonce) != 32:
                return error(400, "nonce must be 64 hex characters")
            body = fake.replay if fake.replay is not None else fake.answer(fake.answer_key or key, nonce)
            fake._attested = True
            return jsonify(body)

        @app.get("/bootstrap/status")
        def status() -> Response:
            return jsonify(
                {"state": fake.state, "tee": fake.tee_name, "version": VERSION,
                 "owner_bound": fake.owner_sha256 is not None}
            )

        @app.get("/attestation")
        def bootstrap_attestation() -> Response:
            return attestation(fake.bootstrap_key)

        @app.get("/bootstrap/certificate")
        def bootstrap_certificate() -> Response:
            return Response(pem(fake.bootstrap_cert), mimetype="text/plain")

        @app.post("/csr")
        def csr() -> Response:
            if fake.state != "waiting-certificate":
                return error(409, f"state is {fake.state}")
            body = request.get_json(silent=True) or {}
            try:
                subject = x509.Name.from_rfc4514_string(body.get("subject", ""))
            except ValueError:
                return error(400, "bad subject")
            names: list[x509.GeneralName] = []
            for san in body.get("sans", []):
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    names.append(x509.DNSName(san))
            builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
            if names:
                builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            csr = builder.sign(fake.api_key, hashes.SHA256())
            return jsonify({"csr_pem": csr.public_bytes(serialization.Encoding.PEM).decode()})

        @app.post("/certificate")
        def certificate() -> Response:
            if fake.state != "waiting-certificate":
                return error(409, f"state is {fake.state}")
            try:
                chain = x509.load_pem_x509_certificates((request.get_json() or {})["chain_pem"].encode())
            except (KeyError, ValueError, TypeError):
                return error(400, "not certificates")
            if spki_der(chain[0]) != spki_der(fake.api_key):
                return error(400, "the leaf key is not the API key")
            for child, parent in itertools.pairwise(chain):
                try:
                    child.verify_directly_issued_by(parent)
                except Exception:
                    return error(400, "the chain does not verify")
            fake.chain = chain
            fake.state = "waiting-database"
            return jsonify({"success": "certificate stored"})

        @app.post("/database")
        def database() -> Response:
            if fake.state != "waiting-database":
                return error(409, f"state is {fake.state}")
            body = request.get_json() or {}
            if body.get("database_type") not in DATABASE_TYPES:
                return error(400, "unknown database type")
            fake.database = body
            fake.state = "ready"
            return jsonify({"success": "database configured"})

        @app.post("/start")
        def start() -> Response:
            if fake.state != "ready":
                return error(409, f"state is {fake.state}")
            fake.state = "started"
            return jsonify({"success": "starting the KMS"})

        @app.get("/version")
        def version() -> Response:
            return jsonify(VERSION)

        @app.get("/tee/attestation")
        def tee_attestation() -> Response:
            return attestation(fake.api_key)

        @app.get("/tee/certificate")
        def tee_certificate() -> Response:
            return Response(pem(fake.ratls_certificate(fake.api_key)), mimetype="text/plain")

        return app

    # ---------------------------------------------------------------------------------------- lifecycle

    def provision_directly(self, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        """Skip the bootstrap: a started appliance whose API leaf (127.0.0.1, localhost) is signed by `ca`."""
        now = datetime.now(UTC)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kms.test")]))
            .issuer_name(ca_cert.subject)
            .public_key(self.api_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.chain = [leaf, ca_cert]
        self.state = "started"
        return leaf

    @contextmanager
    def running(self) -> Iterator[FakeAppliance]:
        server = _TlsServer(self)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._server = server
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


class _Handler(WSGIRequestHandler):
    def setup(self) -> None:
        self.request.settimeout(10)
        self.request.do_handshake()  # in the handler thread: a slow or failing client never blocks accept()
        super().setup()

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _TlsServer(ThreadedWSGIServer):
    def __init__(self, fake: FakeAppliance) -> None:
        super().__init__("127.0.0.1", 0, fake.app, handler=_Handler)
        self.fake = fake

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        context = self.fake.context_for_new_connection()
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that drops the connection after seeing the certificate is the normal case here


ServerFactory = Callable[..., FakeAppliance]
