"""The pinned HTTPS client in process: the pin holds on every connection and a mismatch sends nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from attestation.errors import VerificationError
from ckms.commands.bootstrap import check_csr
from ckms.errors import CliError
from ckms.pinning import PinMismatch, PinnedClient, base_url, fetch_certificate, fingerprint, tls_context
from tests.cli_bootstrap.fake_appliance import FakeAppliance, der, new_key


def test_fetch_returns_the_served_certificate_and_the_pin_admits_it(sim_dir: Path) -> None:
    fake = FakeAppliance(sim_dir)
    with fake.running():
        served = fetch_certificate(fake.url, tls_context())
        assert served == der(fake.bootstrap_cert)
        with PinnedClient(fake.url, served, tls_context()) as client:
            assert client.get("/bootstrap/status")["state"] == "waiting-certificate"
            assert client.pin == fingerprint(served)


def test_a_mismatch_raises_before_the_request_is_written(sim_dir: Path) -> None:
    fake = FakeAppliance(sim_dir)
    other = FakeAppliance(sim_dir)
    with fake.running(), PinnedClient(fake.url, der(other.bootstrap_cert), tls_context()) as client:
        with pytest.raises(PinMismatch) as err:
            client.post("/database", {"database_secret": "00" * 32})
        assert err.value.expected == fingerprint(der(other.bootstrap_cert))
        assert err.value.got == fingerprint(der(fake.bootstrap_cert))
        assert fake.requests == [] and fake.connections == 1


def test_every_new_connection_is_checked(sim_dir: Path) -> None:
    fake = FakeAppliance(sim_dir)
    impostor = new_key()
    fake.swap_to = (fake.ratls_certificate(impostor), impostor)
    fake.swap_after_connections = 1
    fake.close_connections = True  # each answer closes its connection: the second call needs a new handshake
    with fake.running(), PinnedClient(fake.url, der(fake.bootstrap_cert), tls_context()) as client:
        assert client.get("/bootstrap/status")["state"] == "waiting-certificate"
        with pytest.raises(PinMismatch):
            client.get("/bootstrap/status")
        assert fake.paths() == ["GET /bootstrap/status"]


def test_only_https_urls() -> None:
    assert base_url("https://kms.example.com/some/path") == "https://kms.example.com:443"
    assert base_url("https://[::1]:9998") == "https://[::1]:9998"
    for url in ("http://kms.example.com", "kms.example.com:9998", "https://"):
        with pytest.raises(CliError):
            base_url(url)


def test_server_error_bodies_become_one_line(sim_dir: Path) -> None:
    fake = FakeAppliance(sim_dir)
    fake.state = "ready"
    with fake.running(), PinnedClient(fake.url, der(fake.bootstrap_cert), tls_context()) as client:
        with pytest.raises(CliError) as err:
            client.post("/csr", {"subject": "CN=x", "sans": []})
        assert err.value.message == "HTTP 409: state is ready"


def test_a_csr_whose_signature_does_not_verify_is_refused() -> None:
    key = new_key()
    subject = x509.Name.from_rfc4514_string("CN=kms.test")
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    raw = bytearray(csr.public_bytes(serialization.Encoding.DER))
    raw[-3] ^= 0x01  # inside the ECDSA signature
    forged = x509.load_der_x509_csr(bytes(raw)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(VerificationError) as err:
        check_csr(forged, subject, ())
    assert err.value.check == "csr-signature"
    good = csr.public_bytes(serialization.Encoding.PEM).decode()
    assert check_csr(good, subject, ()).subject == subject
    with pytest.raises(VerificationError) as err:
        check_csr(good, x509.Name.from_rfc4514_string("CN=other"), ())
    assert err.value.check == "csr-content"
