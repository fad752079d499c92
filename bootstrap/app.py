"""The bootstrap server's Flask app: every call of bootstrap/PROTOCOL.md over the state machine of bootstrap.state.

Order of checks for a POST: owner (403) first, so that a non-owner learns nothing and changes nothing; then the
state (409), so that a repeated or out-of-order call is named as such whatever its body; then the body (400).
Errors are JSON {"error": "<one line>"} with the status of bootstrap.errors; no traceback ever reaches a client.

Secrets (the database secret, the Redis password, the PKCS#12 and its password, key material) are never logged
and never put in an error message: the log says "database configured (type sqlite, path ...)", no more. An
unexpected exception is logged with its type and stack frames only, not its message, which could quote input.

Bodies are limited to MAX_BODY_BYTES (a chain, a CSR request, a PKCS#12 are all far smaller).
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from attestation.errors import AttestationError
from attestation.ratls import spki_der
from attestation.tee import TeeProvider
from bootstrap import certs
from bootstrap.errors import BootstrapError, ProvisioningError, ServerFaultError, TeeFaultError
from bootstrap.https import PEER_SPKI_SHA256, STOP_AFTER_RESPONSE
from bootstrap.keys import BootstrapKeys
from bootstrap.owner import check_owner
from bootstrap.provisioned import DatabaseSettings, ProvisionedConfig, TlsMaterial
from bootstrap.state import Provisioning
from kms.server.app import VERSION
from kms.server.tee_routes import attestation_answer, parse_nonce

log = logging.getLogger("kms.bootstrap")

MAX_BODY_BYTES = 1024 * 1024
PKCS12_CONTENT_TYPES = ("application/octet-stream", "application/x-pkcs12", "application/pkcs12")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass
class BootstrapService:
    """What the app works with, built by bootstrap.launcher (tests build it directly).

    seal: stores the provisioned configuration (sealed file) or raises OSError; check_database: why the given
    settings cannot be opened, or None; now: the clock (injected, for certificate validity checks)."""

    provider: TeeProvider
    tee: str
    keys: BootstrapKeys
    certificate: x509.Certificate
    owner: bytes | None
    seal: Callable[[ProvisionedConfig], None]
    check_database: Callable[[DatabaseSettings], str | None]
    now: Callable[[], datetime] = _utc_now
    machine: Provisioning = dataclasses.field(default_factory=Provisioning)
    provisioned: ProvisionedConfig | None = None

    @property
    def api_spki(self) -> bytes:
        return spki_der(self.keys.api_key)


def _json_error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _json_object(*, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object (ProvisioningError otherwise); {} for an empty body when `empty_ok`."""
    if empty_ok and not request.get_data(cache=True):
        return {}
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ProvisioningError("the body must be a JSON object")
    return body


def create_app(service: BootstrapService) -> Flask:
    app = Flask("kms-bootstrap")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["bootstrap"] = service
    bootstrap_pem = service.certificate.public_bytes(serialization.Encoding.PEM)

    @app.errorhandler(BootstrapError)
    def refused(exc: BootstrapError) -> Response:
        return _json_error(exc.status, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _json_error(exc.code or 500, f"{exc.name}: {exc.description}")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unexpected %s in %s %s (message withheld: it could quote input)\n%s",
                  type(exc).__name__, request.method, request.path, frames)
        return _json_error(500, "internal error")

    @app.before_request
    def owner_only_posts() -> None:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            check_owner(service.owner, request.environ.get(PEER_SPKI_SHA256))

    @app.get("/bootstrap/status")
    def status() -> Response:
        return jsonify(
            {
                "state": service.machine.state.value,
                "tee": service.tee,
                "version": VERSION,
                "owner_bound": service.owner is not None,
            }
        )

    @app.get("/bootstrap/certificate")
    def certificate() -> Response:
        return Response(bootstrap_pem, status=200, content_type="text/plain; charset=utf-8")

    @app.get("/attestation")
    def attestation() -> Response:
        try:
            nonce = parse_nonce(request.args.get("nonce"))
        except ValueError as exc:
            raise ProvisioningError(str(exc)) from None
        try:
            answer = attestation_answer(service.provider, spki_der(service.keys.bootstrap_key), nonce)
        except (AttestationError, OSError, ValueError) as exc:
            log.error("the TEE could not produce evidence: %s", exc)
            raise TeeFaultError("the TEE could not produce evidence") from None
        return jsonify(answer)

    @app.post("/csr")
    def csr() -> Response:
        def build() -> str:
            body = _json_object()
            subject = certs.parse_subject(body.get("subject"))
            sans = certs.parse_sans(body.get("sans"))
            return certs.build_csr(service.keys.api_key, subject, sans)

        pem = service.machine.csr(build)
        log.info("CSR of the API key issued")
        return jsonify({"csr_pem": pem})

    @app.post("/certificate")
    def set_certificate() -> Response:
        def validate() -> TlsMaterial:
            chain = certs.load_chain(_json_object().get("chain_pem"))
            certs.check_chain(chain, service.api_spki, service.now())
            pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
            return TlsMaterial(chain_pem=pem)

        service.machine.set_certificate(validate)
        log.info("API certificate chain accepted")
        return jsonify({"success": "certificate chain of the API key received"})

    @app.post("/pkcs12")
    def pkcs12_upload() -> Response:
        def read() -> bytes:
            parts = [f.read() for _, f in request.files.items(multi=True)]
            if parts:
                data = b"".join(parts)
            elif request.mimetype in PKCS12_CONTENT_TYPES:
                data = request.get_data()
            else:
                raise ProvisioningError("send the PKCS#12 as a multipart file part or as application/octet-stream")
            if not data:
                raise ProvisioningError("the PKCS#12 is empty")
            return data

        size = service.machine.receive_pkcs12(read)
        log.info("PKCS#12 received")
        return jsonify({"success": f"PKCS#12 of {size} bytes received"})

    @app.post("/pkcs12-password")
    def pkcs12_password() -> Response:
        def open_pkcs12(data: bytes) -> TlsMaterial:
            password = _json_object().get("password")
            if not isinstance(password, str):
                raise ProvisioningError("password must be a string (empty for none)")
            chain_pem, key_pem = certs.load_pkcs12(data, password, service.now())
            return TlsMaterial(chain_pem=chain_pem, key_pem=key_pem)

        service.machine.set_pkcs12_password(open_pkcs12)
        log.warning("the API TLS key comes from a PKCS#12: it existed outside the TEE (weaker than the derived key)")
        return jsonify({"success": "PKCS#12 opened: certificate and key received"})

    @app.post("/database")
    def database() -> Response:
        accepted: list[DatabaseSettings] = []

        def validate() -> DatabaseSettings:
            settings = DatabaseSettings.from_request(_json_object())
            problem = service.check_database(settings)
            if problem is not None:
                raise ProvisioningError(f"cannot open the database: {problem}")
            accepted.append(settings)
            return settings

        service.machine.set_database(validate)
        log.info("database configured (%s)", accepted[0].describe())
        return jsonify({"success": "database configuration received"})

    @app.post("/start")
    def start() -> Response:
        def seal(provisioned: ProvisionedConfig) -> None:
            _json_object(empty_ok=True)
            try:
                service.seal(provisioned)
            except OSError as exc:
                log.error("cannot write the sealed configuration: %s", exc.strerror or type(exc).__name__)
                raise ServerFaultError(
                    f"cannot write the sealed configuration ({exc.strerror or type(exc).__name__})"
                ) from None

        service.provisioned = service.machine.start(seal)
        stop = request.environ.get(STOP_AFTER_RESPONSE)
        if stop is not None:
            stop()
        log.info("provisioning complete: the bootstrap server stops and the KMS starts")
        return jsonify({"success": "starting the KMS"})

    return app

