"""A direct `kms-server --tee simulated --https-p12-file F` (no bootstrap) serves /tee/attestation and
/tee/certificate bound to the key of F; the routes exist only when a TEE is configured."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from attestation.errors import VerificationError
from attestation.ratls import read_certificate, spki_der, verify_certificate
from attestation.tee.simulated import SimulatedTee
from tests.bootstrap.support import verify_fresh_attestation
from tests.support.server import ServerProcess

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def _p12(path: Path) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "direct-kms")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"k", key, cert, None,
                                                           serialization.BestAvailableEncryption(b"pw")))
    return cert


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, x509.Certificate, SimulatedTee]]:
    base = tmp_path_factory.mktemp("direct-tee")
    cert = _p12(base / "server.p12")
    server = ServerProcess(
        base / "data", "--https-p12-file", str(base / "server.p12"), "--https-p12-password", "pw",
        "--tee", "simulated", "--tee-sim-dir", str(base / "sim"), "--tee-sim-format", "tdx", scheme="https",
    )
    server.start()
    yield server, cert, SimulatedTee(base / "sim", "tdx")
    server.stop()


def test_attestation_is_bound_to_the_tls_key(direct: tuple[ServerProcess, x509.Certificate, SimulatedTee]) -> None:
    server, cert, sim = direct
    nonce = bytes(range(32))
    r = requests.get(f"{server.url}/tee/attestation", params={"nonce": nonce.hex()}, verify=False, timeout=60)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["tee"] == "simulated-tdx" and answer["collateral"]
    verify_fresh_attestation(answer, sim, spki_der(cert), nonce)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(VerificationError, match="pubkey-hash"):
        verify_fresh_attestation(answer, sim, spki_der(other), nonce)
    assert base64.b64decode(answer["claims"])


def test_certificate_is_ra_tls_of_the_tls_key(direct: tuple[ServerProcess, x509.Certificate, SimulatedTee]) -> None:
    server, cert, sim = direct
    r = requests.get(f"{server.url}/tee/certificate", verify=False, timeout=60)
    assert r.status_code == 200
    tee_cert = x509.load_pem_x509_certificate(r.content)
    assert spki_der(tee_cert) == spki_der(cert) and tee_cert.subject == cert.subject
    assert read_certificate(tee_cert).claims["tee"] == "simulated-tdx"
    collateral = sim.quote(bytes(64)).collateral
    verify_certificate(tee_cert, now=datetime.now(UTC), roots=sim.roots(), collateral=collateral)
    assert tee_cert.not_valid_after_utc >= cert.not_valid_after_utc - timedelta(seconds=1)


@pytest.mark.parametrize("query", ["", "?nonce=12", "?nonce=" + "g" * 64])
def test_bad_nonce(direct: tuple[ServerProcess, x509.Certificate, SimulatedTee], query: str) -> None:
    server, _, _ = direct
    r = requests.get(f"{server.url}/tee/attestation{query}", verify=False, timeout=60)
    assert r.status_code == 400 and "nonce" in r.json()["error"]


def test_no_tee_routes_without_a_tee(kms_server: ServerProcess) -> None:
    assert requests.get(f"{kms_server.url}/tee/attestation?nonce=" + "00" * 32, timeout=60).status_code == 404
    assert requests.get(f"{kms_server.url}/tee/certificate", timeout=60).status_code == 404
