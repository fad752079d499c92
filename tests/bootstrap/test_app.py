"""The bootstrap app through Flask's test client: every call, the order of checks (403, 409, 400), JSON errors,
sealing failures, and no secret in the log. The transport (real TLS, client certificates) is tested in
test_https.py and test_process.py; here the peer key hash is put in the WSGI environ as the transport does."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient

from attestation.ratls import spki_der, verify_claims_evidence
from attestation.tee.simulated import SimulatedTee
from bootstrap.app import BootstrapService, create_app
from bootstrap.certs import bootstrap_certificate
from bootstrap.https import PEER_SPKI_SHA256, STOP_AFTER_RESPONSE
from bootstrap.keys import BootstrapKeys
from bootstrap.provisioned import DatabaseSettings, ProvisionedConfig
from kms.config import DEFAULT_BOOTSTRAP_SUBJECT

NOW = datetime.now(UTC)
KEYS = BootstrapKeys.from_sk(b"\x05" * 32, sealed=True)
OWNER = hashlib.sha256(b"owner").digest()
SECRET = "5ec2e7" * 6
SQLITE = {"database_type": "sqlite", "sqlite_path": "/data/kms"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulatedTee:
    return SimulatedTee(tmp_path_factory.mktemp("sim"), "sev-snp")


@pytest.fixture(scope="module")
def bootstrap_cert(sim: SimulatedTee) -> x509.Certificate:
    return bootstrap_certificate(KEYS.bootstrap_key, sim, "simulated-sev-snp", subject=DEFAULT_BOOTSTRAP_SUBJECT,
                                 days=1, sans=["localhost"])


class Harness:
    def __init__(self, sim: SimulatedTee, cert: x509.Certificate, owner: bytes | None = None) -> None:
        self.sealed: list[ProvisionedConfig] = []
        self.seal_error: Exception | None = None
        self.database_problem: str | None = None
        self.checked: list[DatabaseSettings] = []
        self.stops = 0
        self.service = BootstrapService(
            provider=sim, tee="simulated-sev-snp", keys=KEYS, certificate=cert, owner=owner, seal=self._seal,
            check_database=self._check, now=lambda: NOW,
        )
        self.client: FlaskClient = create_app(self.service).test_client()

    def _seal(self, provisioned: ProvisionedConfig) -> None:
        if self.seal_error is not None:
            raise self.seal_error
        self.sealed.append(provisioned)

    def _check(self, settings: DatabaseSettings) -> str | None:
        self.checked.append(settings)
        return self.database_problem

    def _stop(self) -> None:
        self.stops += 1

    def post(self, path: str, body: Any = None, *, peer: bytes | None = None, **kwargs: Any) -> Any:
        environ = {PEER_SPKI_SHA256: peer, STOP_AFTER_RESPONSE: self._stop}
        if body is not None:
            kwargs["json"] = body
        return self.client.post(path, environ_overrides=environ, **kwargs)

    def state(self) -> str:
        return self.client.get("/bootstrap/status").get_json()["state"]


@pytest.fixture()
def harness(sim: SimulatedTee, bootstrap_cert: x509.Certificate) -> Harness:
    return Harness(sim, bootstrap_cert)


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test ca")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=9))
            .sign(key, hashes.SHA256()))
    return key, cert


def _sign(csr_pem: str, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], **dates: datetime) -> str:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    key, ca_cert = ca
    leaf = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_cert.subject)
            .public_key(csr.public_key()).serial_number(2)
            .not_valid_before(dates.get("not_before", NOW - timedelta(hours=1)))
            .not_valid_after(dates.get("not_after", NOW + timedelta(days=1))).sign(key, hashes.SHA256()))
    return (leaf.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)).decode()


def _to_ready(h: Harness, peer: bytes | None = None) -> str:
    csr = h.post("/csr", {"subject": "CN=kms"}, peer=peer).get_json()["csr_pem"]
    chain = _sign(csr, _ca())
    assert h.post("/certificate", {"chain_pem": chain}, peer=peer).status_code == 200
    assert h.post("/database", {**SQLITE, "database_secret": SECRET}, peer=peer).status_code == 200
    return chain


# ------------------------------------------------------------------------------------------------ GETs


def test_status_and_certificate(harness: Harness, bootstrap_cert: x509.Certificate) -> None:
    status = harness.client.get("/bootstrap/status").get_json()
    assert status == {"state": "waiting-certificate", "tee": "simulated-sev-snp", "version": "0.1.0",
                      "owner_bound": False}
    r = harness.client.get("/bootstrap/certificate")
    assert r.content_type.startswith("text/plain")
    assert x509.load_pem_x509_certificate(r.data) == bootstrap_cert


def test_attestation_is_fresh_and_bound_to_the_bootstrap_key(harness: Harness, sim: SimulatedTee) -> None:
    nonce = bytes(range(32))
    answer = harness.client.get(f"/attestation?nonce={nonce.hex()}").get_json()
    assert answer["tee"] == "simulated-sev-snp" and answer["collateral"] is None
    verify_claims_evidence(base64.b64decode(answer["evidence"]), base64.b64decode(answer["claims"]),
                           spki=spki_der(KEYS.bootstrap_key), nonce=nonce, now=NOW, roots=sim.roots())


@pytest.mark.parametrize("query", ["", "?nonce=", "?nonce=xyz", "?nonce=" + "0" * 63, "?nonce=" + "00" * 33])
def test_attestation_bad_nonce(harness: Harness, query: str) -> None:
    r = harness.client.get(f"/attestation{query}")
    assert r.status_code == 400 and "nonce" in r.get_json()["error"]


# ------------------------------------------------------------------------------------------------ sequence


def test_full_sequence_seals_then_asks_the_server_to_stop(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = harness.post("/csr", {"subject": "CN=kms.example.com,O=Owner", "sans": ["kms.example.com", "127.0.0.1"]})
    assert r.status_code == 200
    csr = x509.load_pem_x509_csr(r.get_json()["csr_pem"].encode())
    assert spki_der(csr.public_key()) == spki_der(KEYS.api_key)
    chain = _sign(r.get_json()["csr_pem"], _ca())
    r = harness.post("/certificate", {"chain_pem": chain})
    assert r.status_code == 200 and "success" in r.get_json()
    assert harness.state() == "waiting-database"
    r = harness.post("/database", {**SQLITE, "database_secret": SECRET, "clear_database": True})
    assert r.status_code == 200, r.get_json()
    assert harness.state() == "ready"
    assert harness.stops == 0 and not harness.sealed
    r = harness.post("/start", {})
    assert r.status_code == 200 and r.get_json() == {"success": "starting the KMS"}
    assert harness.state() == "started"
    assert harness.stops == 1
    (sealed,) = harness.sealed
    assert sealed.tls.chain_pem == chain and sealed.tls.derived_key
    assert sealed.database.database_secret == SECRET and sealed.database.clear_database
    assert harness.service.provisioned == sealed
    assert "database configured (type sqlite, path /data/kms, with a database secret)" in caplog.text
    assert SECRET not in caplog.text
    assert harness.post("/start", {}).status_code == 409
    assert harness.stops == 1


def test_start_accepts_an_empty_body(harness: Harness) -> None:
    _to_ready(harness)
    assert harness.post("/start", data=b"").status_code == 200


def test_start_with_a_non_object_body_is_400_and_changes_nothing(harness: Harness) -> None:
    _to_ready(harness)
    assert harness.post("/start", [1]).status_code == 400
    assert harness.state() == "ready" and not harness.sealed and harness.stops == 0


def test_a_failed_seal_is_500_and_the_server_stays_ready(harness: Harness) -> None:
    _to_ready(harness)
    harness.seal_error = PermissionError(13, "Permission denied")
    r = harness.post("/start", {})
    assert r.status_code == 500 and "cannot write the sealed configuration (Permission denied)" in r.get_json()["error"]
    assert harness.state() == "ready" and harness.stops == 0
    harness.seal_error = None
    assert harness.post("/start", {}).status_code == 200


# ------------------------------------------------------------------------------------------------ owner


def test_owner_binding_checks_posts_before_anything_else(sim: SimulatedTee, bootstrap_cert: x509.Certificate) -> None:
    h = Harness(sim, bootstrap_cert, owner=OWNER)
    assert h.client.get("/bootstrap/status").get_json()["owner_bound"] is True
    other = hashlib.sha256(b"intruder").digest()
    for peer in (None, other):
        for path, body in (("/csr", {"subject": "CN=x"}), ("/certificate", {}), ("/database", SQLITE),
                           ("/start", {}), ("/pkcs12", None), ("/pkcs12-password", {"password": ""}),
                           ("/no-such-call", {})):
            r = h.post(path, body, peer=peer)
            assert r.status_code == 403, (path, r.status_code)
            assert "owner" in r.get_json()["error"]
    assert h.state() == "waiting-certificate" and not h.checked
    # GETs are open; the owner provisions.
    assert h.client.get("/attestation?nonce=" + "00" * 32).status_code == 200
    _to_ready(h, peer=OWNER)
    assert h.post("/start", {}, peer=other).status_code == 403
    assert h.state() == "ready"
    assert h.post("/start", {}, peer=OWNER).status_code == 200


# ------------------------------------------------------------------------------------------------ 400 / 409


def test_state_is_checked_before_the_body(harness: Harness) -> None:
    r = harness.post("/database", {"database_type": "oracle"})
    assert r.status_code == 409  # out of order, whatever the body
    r = harness.post("/start", data=b"garbage")
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"database_type": "oracle"}, "unknown database_type 'oracle'"),
        ({}, "database_type is required"),
        ({"database_type": "postgresql"}, "needs database_url"),
        ({"database_type": "redis-findex", "database_url": "redis://x"}, "redis_master_password, redis_findex_label"),
        ({**SQLITE, "sqlite-path": "/x"}, "unknown field(s): sqlite-path"),
        ({**SQLITE, "database_secret": "xyz"}, "hexadecimal"),
        ({**SQLITE, "database_secret": "00" * 15}, "at least 16 bytes"),
        ({**SQLITE, "clear_database": "yes"}, "clear_database"),
        ({**SQLITE, "sqlite_path": 5}, "sqlite_path must be a string"),
        ([SQLITE], "JSON object"),
    ],
)
def test_bad_database_bodies(harness: Harness, body: Any, fragment: str) -> None:
    csr = harness.post("/csr", {"subject": "CN=kms"}).get_json()["csr_pem"]
    assert harness.post("/certificate", {"chain_pem": _sign(csr, _ca())}).status_code == 200
    r = harness.post("/database", body)
    assert r.status_code == 400, r.get_json()
    assert fragment in r.get_json()["error"]
    assert harness.state() == "waiting-database"
    assert SECRET not in r.get_data(as_text=True)


def test_a_database_that_does_not_open_is_400(harness: Harness) -> None:
    csr = harness.post("/csr", {"subject": "CN=kms"}).get_json()["csr_pem"]
    harness.post("/certificate", {"chain_pem": _sign(csr, _ca())})
    harness.database_problem = "unable to open database file"
    r = harness.post("/database", SQLITE)
    assert r.status_code == 400 and r.get_json()["error"] == "cannot open the database: unable to open database file"
    assert harness.state() == "waiting-database"
    harness.database_problem = None
    assert harness.post("/database", SQLITE).status_code == 200


def test_bad_certificates_are_400(harness: Harness) -> None:
    csr = harness.post("/csr", {"subject": "CN=kms"}).get_json()["csr_pem"]
    other_csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])).sign(ec.generate_private_key(ec.SECP256R1()),
                                                                         hashes.SHA256())
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: {"chain_pem": _sign(other_csr.public_bytes(serialization.Encoding.PEM).decode(), _ca())},
         "not the API key"),
        (lambda: {"chain_pem": _sign(csr, _ca(), not_after=NOW - timedelta(seconds=1),
                                     not_before=NOW - timedelta(days=1))}, "expired"),
        (lambda: {"chain_pem": _sign(csr, _ca(), not_before=NOW + timedelta(hours=1))}, "not valid yet"),
        (lambda: {"chain_pem": _sign(csr, _ca()).split("-----END CERTIFICATE-----")[0]
                  + "-----END CERTIFICATE-----\n" + _ca()[1].public_bytes(serialization.Encoding.PEM).decode()},
         "signature of certificate 1"),
        (lambda: {"chain_pem": 42}, "chain_pem"),
        (lambda: {}, "chain_pem"),
    ]
    for body, fragment in cases:
        r = harness.post("/certificate", body())
        assert r.status_code == 400, (fragment, r.get_json())
        assert fragment in r.get_json()["error"]
    assert harness.state() == "waiting-certificate"


def test_http_errors_are_json(harness: Harness) -> None:
    r = harness.client.get("/csr")
    assert r.status_code == 405 and "error" in r.get_json()
    r = harness.client.get("/nowhere")
    assert r.status_code == 404 and "error" in r.get_json()
    r = harness.post("/csr", data=b"x" * (1024 * 1024 + 1), content_type="application/json")
    assert r.status_code == 413 and "error" in r.get_json()


def test_unexpected_errors_hide_their_message(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    csr = harness.post("/csr", {"subject": "CN=kms"}).get_json()["csr_pem"]
    harness.post("/certificate", {"chain_pem": _sign(csr, _ca())})

    def explode(settings: DatabaseSettings) -> str | None:
        raise RuntimeError(f"boom with {settings.database_secret}")

    harness.service.check_database = explode
    r = harness.post("/database", {**SQLITE, "database_secret": SECRET})
    assert r.status_code == 500 and r.get_json() == {"error": "internal error"}
    assert "RuntimeError" in caplog.text and SECRET not in caplog.text
    assert harness.state() == "waiting-database"


def test_pkcs12_upload_forms(harness: Harness) -> None:
    r = harness.post("/pkcs12", data=b"\x30\x82", content_type="application/octet-stream")
    assert r.status_code == 200 and r.get_json()["success"] == "PKCS#12 of 2 bytes received"
    r = harness.post("/pkcs12", data={"file": (__import__("io").BytesIO(b"abc"), "bootstrap.p12")},
                     content_type="multipart/form-data")
    assert r.status_code == 200 and r.get_json()["success"] == "PKCS#12 of 3 bytes received"
    assert harness.post("/pkcs12", data=b"x", content_type="text/plain").status_code == 400
    assert harness.post("/pkcs12", data=b"", content_type="application/octet-stream").status_code == 400
    r = harness.post("/pkcs12-password", {"password": 5})
    assert r.status_code == 400 and "password must be a string" in r.get_json()["error"]
    r = harness.post("/pkcs12-password", {"password": "pw"})
    assert r.status_code == 400 and "wrong password or not a PKCS#12" in r.get_json()["error"]
    assert harness.state() == "waiting-certificate"


def test_sealed_plaintext_contains_the_secret_only_inside_the_sealed_form(harness: Harness) -> None:
    _to_ready(harness)
    harness.post("/start", {})
    plaintext = harness.sealed[0].to_bytes()
    assert SECRET.encode() in plaintext  # what bootstrap.sealing encrypts (tested there)
    assert b'"clear_database": false' in plaintext


def test_keys_file_unused(tmp_path: Path) -> None:
    assert not any(tmp_path.iterdir())  # the app writes nothing itself: sealing and files are the launcher's
