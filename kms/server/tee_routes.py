"""GET /tee/attestation and GET /tee/certificate: the main KMS proves it runs in the attested TEE (spec/bootstrap.md
§3 and §5, bootstrap/PROTOCOL.md).

Both bind to the key of the TLS certificate the server serves, so a client can check that the evidence names the
very key of the connection it is on:

- `GET /tee/attestation?nonce=<64 hex>` quotes report_data = SHA-256(claims) || 32 zero bytes with
  claims = {"pubkey-hash": [1, SHA-256(SPKI DER of the TLS leaf key)], "nonce": <the 32 bytes>}: fresh evidence,
  answered as {"tee", "evidence", "claims", "collateral"} (base64), exactly as the bootstrap server's /attestation.
- `GET /tee/certificate` returns a self-signed RA-TLS certificate of that same key (built once at start-up by
  `kms.server.main.serve`, in the arbiter, so every worker serves the same one), for verifiers that sit behind a
  TLS terminator and cannot see the server's certificate.

Which key: after a bootstrap handover, the API key derived from the TEE's sealing key (or the key of a provisioned
PKCS#12). A direct `kms-server --tee simulated|auto|... --https-p12-file F` (no bootstrap) serves these routes too,
bound to the key of F: the evidence then proves the code runs in a TEE and holds that key, not that the key was
born there. Plain HTTP has no key to bind to, so kms.config refuses --tee without HTTPS or bootstrap.

The provider is built lazily once per worker process (gunicorn forks workers; a provider may hold file handles or
device state that must not be shared across a fork). This module is also where the bootstrap server takes its
provider and attestation answers from, so both servers answer the same way (bootstrap imports kms.server, never
the reverse).
"""

from __future__ import annotations

import base64
import logging
import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from attestation.errors import AttestationError
from attestation.ratls import build_certificate, make_claims, provider_quote_fn, report_data_for_claims, spki_der
from attestation.tee import Evidence, TeeProvider
from attestation.tee.providers import TeeUnavailableError, detect_provider, provider_by_name
from attestation.tee.simulated import SimulatedTee
from kms.config import ServerConfig

log = logging.getLogger("kms.tee")

NONCE_BYTES = 32
TEE_CERTIFICATE_NAME = "tee-certificate.pem"

bp = Blueprint("tee", __name__, url_prefix="/tee")


# ------------------------------------------------------------------------------------------------ providers


def build_provider(config: ServerConfig) -> TeeProvider:
    """The provider `config.tee` names; TeeUnavailableError (with what is missing) when there is none.

    The simulated one is built only when asked for by name, from --tee-sim-dir / -measurement / -format /
    -host-data; `auto` never picks it."""
    if config.tee == "simulated":
        assert config.tee_sim_dir is not None  # kms.config.validate guarantees it
        host_data = bytes.fromhex(config.tee_sim_host_data) if config.tee_sim_host_data else None
        if host_data is not None and config.tee_sim_format == "tdx":
            host_data = host_data.ljust(48, b"\x00")  # MRCONFIGID is 48 bytes; a 32-byte owner hash fills the front
        measurement = bytes.fromhex(config.tee_sim_measurement) if config.tee_sim_measurement else None
        return SimulatedTee(
            Path(config.tee_sim_dir), config.tee_sim_format, measurement=measurement, host_data=host_data
        )
    if config.tee == "auto":
        provider = detect_provider()
        if provider is None:
            raise TeeUnavailableError(
                "--tee auto: no TEE found on this machine (no configfs-tsm, Gramine /dev/attestation or "
                "/dev/sev-guest); use --tee simulated --tee-sim-dir DIR for tests"
            )
        return provider
    return provider_by_name(config.tee)


def tee_label(provider: TeeProvider) -> str:
    """The "tee" value of claims and answers: the evidence kind, prefixed "simulated-" for the simulated TEE so a
    reader never mistakes simulated evidence for hardware evidence."""
    return f"simulated-{provider.kind}" if isinstance(provider, SimulatedTee) else provider.kind


class _Recording:
    """Wraps a provider to keep the last Evidence: `provider_quote_fn` gives bytes only, the answer needs the
    collateral too."""

    def __init__(self, provider: TeeProvider) -> None:
        self.provider = provider
        self.kind = provider.kind
        self.last: Evidence | None = None

    def quote(self, report_data: bytes) -> Evidence:
        self.last = self.provider.quote(report_data)
        return self.last


def parse_nonce(value: str | None) -> bytes:
    """The 32-byte nonce of `?nonce=`; ValueError with a one-line reason for anything else."""
    if not value:
        raise ValueError(f"the nonce query parameter is required ({2 * NONCE_BYTES} hex digits)")
    try:
        nonce = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"the nonce must be {2 * NONCE_BYTES} hex digits") from None
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce must be {NONCE_BYTES} bytes ({2 * NONCE_BYTES} hex digits), not {len(nonce)}")
    return nonce


def attestation_answer(provider: TeeProvider, spki: bytes, nonce: bytes) -> dict[str, Any]:
    """The JSON answer of /attestation and /tee/attestation: fresh evidence over the claims naming `spki` and
    carrying `nonce`."""
    claims = make_claims(spki, nonce=nonce)
    recorder = _Recording(provider)
    evidence = provider_quote_fn(recorder)(report_data_for_claims(claims))
    collateral = recorder.last.collateral if recorder.last is not None else None
    return {
        "tee": tee_label(provider),
        "evidence": base64.b64encode(evidence).decode(),
        "claims": base64.b64encode(claims).decode(),
        "collateral": collateral,
    }


def ratls_sans(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses of a certificate's SAN extension, as strings."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names: list[str] = [str(n) for n in ext.value.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return names


def write_ratls_certificate(
    provider: TeeProvider, cert_file: str, key_file: str, directory: Path, *, now: datetime | None = None
) -> str | None:
    """Build the RA-TLS certificate of the TLS key (subject and SANs of the TLS leaf, valid as long as the leaf, at
    least a day) into `directory`; its path, or None when the key cannot carry one (RA-TLS needs ECDSA P-256/P-384,
    e.g. an RSA key from a PKCS#12): /tee/attestation still works then, /tee/certificate answers 404."""
    now = now or datetime.now(UTC)
    leaf = x509.load_pem_x509_certificates(Path(cert_file).read_bytes())[0]
    key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
        log.warning("the TLS key is not ECDSA P-256/P-384: no RA-TLS certificate, GET /tee/certificate answers 404")
        return None
    days = max(1, math.ceil((leaf.not_valid_after_utc - now) / timedelta(days=1)))
    cert = build_certificate(
        key, leaf.subject, provider_quote_fn(provider), tee=tee_label(provider), days=days, sans=ratls_sans(leaf),
        now=now,
    )
    path = directory / TEE_CERTIFICATE_NAME
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


# ------------------------------------------------------------------------------------------------ routes


class _TeeContext:
    """Per worker: the TLS key's SPKI, the RA-TLS certificate PEM, and the provider (built at first use)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.spki: bytes | None = None
        if config.tls_cert_file:
            self.spki = spki_der(x509.load_pem_x509_certificates(Path(config.tls_cert_file).read_bytes())[0])
        self.certificate_pem: bytes | None = None
        if config.tee_certificate_file:
            self.certificate_pem = Path(config.tee_certificate_file).read_bytes()
        self._provider: TeeProvider | None = None
        self._lock = threading.Lock()

    def provider(self) -> TeeProvider:
        with self._lock:
            if self._provider is None:
                self._provider = build_provider(self.config)
            return self._provider


def init_app(app: Flask, config: ServerConfig) -> None:
    """Register the /tee routes (create_app does when config.tee != "none")."""
    app.extensions["kms_tee"] = _TeeContext(config)
    app.register_blueprint(bp)


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


@bp.get("/attestation")
def attestation() -> Response:
    context: _TeeContext = current_app.extensions["kms_tee"]
    try:
        nonce = parse_nonce(request.args.get("nonce"))
    except ValueError as exc:
        return _error(400, str(exc))
    if context.spki is None:
        return _error(404, "this server has no TLS key to bind evidence to")
    try:
        return jsonify(attestation_answer(context.provider(), context.spki, nonce))
    except (AttestationError, OSError, ValueError) as exc:
        log.error("the TEE could not produce evidence: %s", exc)
        return _error(503, "the TEE could not produce evidence")


@bp.get("/certificate")
def certificate() -> Response:
    context: _TeeContext = current_app.extensions["kms_tee"]
    if context.certificate_pem is None:
        return _error(404, "no RA-TLS certificate: the TLS key is not ECDSA P-256/P-384")
    return Response(context.certificate_pem, status=200, content_type="text/plain; charset=utf-8")

