"""RA-TLS fixtures: a pinned time, certificate keys, and the simulated TEEs whose evidence goes in the certificates
(the test Nitro PKI of tests/attestation/nitro, and attestation.tee's simulated AMD and Intel PKIs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.tee.sim_amd import SimAmdPki
from attestation.tee.sim_intel import SimIntelPki
from tests.attestation.nitro.builder import NitroTestPki, pcrs

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
PKI_START = datetime(2026, 1, 1, tzinfo=UTC)
SUBJECT = x509.Name.from_rfc4514_string("CN=kms.example.com,O=Test")
PCR0 = bytes(range(48))
MEASUREMENT = bytes(range(48, 96))
MRENCLAVE = bytes(range(32))
MRSIGNER = bytes(range(32, 64))


@pytest.fixture(scope="session")
def nitro_pki() -> NitroTestPki:
    return NitroTestPki.create(NOW - timedelta(minutes=30))


@pytest.fixture(scope="session")
def nitro_quote(nitro_pki: NitroTestPki) -> Callable[[bytes], bytes]:
    """A Nitro enclave (non-debug, PCR0 = PCR0) putting the report data in user_data."""

    def quote(report_data: bytes) -> bytes:
        return nitro_pki.document(NOW - timedelta(minutes=10), pcr_values=pcrs(PCR0), user_data=report_data)

    return quote


@pytest.fixture(scope="session")
def amd_pki(tmp_path_factory: pytest.TempPathFactory) -> SimAmdPki:
    return SimAmdPki.load_or_create(tmp_path_factory.mktemp("sim-tee"), "Milan", not_before=PKI_START, rsa_bits=2048)


@pytest.fixture(scope="session")
def intel_pki(tmp_path_factory: pytest.TempPathFactory) -> SimIntelPki:
    return SimIntelPki.load_or_create(tmp_path_factory.mktemp("sim-tee"), not_before=PKI_START)


@pytest.fixture()
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The 65-byte uncompressed SEC1 point Cosmian's binding hashes."""
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def self_signed(
    key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[str, bytes]],
    *,
    public_key: ec.EllipticCurvePublicKey | None = None,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=365),
) -> x509.Certificate:
    """A certificate for `public_key` (default: key's), named and signed as self-signed by `key`, carrying raw
    extensions (OID dotted string, extnValue content)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(SUBJECT)
        .issuer_name(SUBJECT)
        .public_key(public_key or key.public_key())
        .serial_number(x509.random_serial_number() | 1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for oid, value in extensions:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def extension_values(cert: x509.Certificate) -> list[tuple[str, bytes]]:
    """The certificate's RA-TLS-relevant raw extensions, to copy into another certificate."""
    out = []
    for ext in cert.extensions:
        if isinstance(ext.value, x509.UnrecognizedExtension):
            out.append((ext.oid.dotted_string, ext.value.value))
    return out


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ratls")
