"""Building standard RA-TLS certificates and reading them back: the bytes match spec/attestation.md §5.3 and
spec/bootstrap.md §2 (extension, CBOR tag, claims layout, report data) and the certificate is a proper
self-signed TLS certificate."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import timedelta

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestation import ratls
from attestation.errors import FormatError
from tests.attestation.ratls.conftest import NOW, SUBJECT, spki


class Recorder:
    """A quote_fn returning fixed stand-in evidence and remembering the report data it was asked to bind."""

    def __init__(self, evidence: bytes = b"stand-in evidence") -> None:
        self.evidence = evidence
        self.calls: list[bytes] = []

    def __call__(self, report_data: bytes) -> bytes:
        self.calls.append(report_data)
        return self.evidence


def test_standard_extension_bytes(key: ec.EllipticCurvePrivateKey) -> None:
    quote = Recorder()
    cert = ratls.build_certificate(key, SUBJECT, quote, nonce=b"N" * 32, tee="simulated-sev-snp", now=NOW)
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("2.23.133.5.4.9"))
    assert ext.critical is False
    value = ext.value.value  # type: ignore[attr-defined]
    assert value[:4] == bytes.fromhex("d9ea6082")  # tag 60000, array(2)
    tagged = cbor2.loads(value)
    assert tagged.tag == 60000
    evidence, claims = tagged.value
    assert evidence == b"stand-in evidence"
    # claims: pubkey-hash first, as a bstr holding [1, SHA-256(SPKI)]
    digest = hashlib.sha256(spki(key)).digest()
    assert claims[1:13] == b"\x6bpubkey-hash"
    assert claims[13:15] == b"\x58\x24" and claims[15:19] == b"\x82\x01\x58\x20" and claims[19:51] == digest
    assert cbor2.loads(claims) == {"pubkey-hash": cbor2.dumps([1, digest]), "nonce": b"N" * 32,
                                   "tee": "simulated-sev-snp"}
    # the quote was asked for SHA-256(claims) || 32 zero bytes
    assert quote.calls == [hashlib.sha256(claims).digest() + bytes(32)]


def test_certificate_fields(key: ec.EllipticCurvePrivateKey) -> None:
    cert = ratls.build_certificate(
        key, SUBJECT, Recorder(), days=30, sans=["kms.example.com", "10.0.0.5", "::1"], now=NOW
    )
    assert cert.subject == cert.issuer == SUBJECT
    cert.verify_directly_issued_by(cert)
    assert cert.serial_number >= 1
    assert cert.not_valid_before_utc == (NOW - timedelta(minutes=5)).replace(microsecond=0)
    assert cert.not_valid_after_utc == (NOW + timedelta(days=30)).replace(microsecond=0)
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["kms.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("::1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ExtendedKeyUsageOID.SERVER_AUTH in eku
    no_san = ratls.build_certificate(key, SUBJECT, Recorder(), now=NOW)
    with pytest.raises(x509.ExtensionNotFound):
        no_san.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_p384_key_signs_with_sha384() -> None:
    cert = ratls.build_certificate(ec.generate_private_key(ec.SECP384R1()), SUBJECT, Recorder(), now=NOW)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)


def test_refused_keys_and_quotes(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ValueError):
        ratls.build_certificate(ec.generate_private_key(ec.SECP521R1()), SUBJECT, Recorder(), now=NOW)
    with pytest.raises(ValueError):
        ratls.build_certificate(rsa.generate_private_key(65537, 2048), SUBJECT, Recorder(), now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ratls.build_certificate(key, SUBJECT, Recorder(b""), now=NOW)
    with pytest.raises(ValueError):
        ratls.build_certificate(key, SUBJECT, Recorder(), now=NOW.replace(tzinfo=None))


def test_read_back(key: ec.EllipticCurvePrivateKey) -> None:
    cert = ratls.build_certificate(key, SUBJECT, Recorder(), nonce=b"n", now=NOW)
    found = ratls.read_certificate(cert)
    assert found.form == "standard" and found.oid == "2.23.133.5.4.9"
    assert found.evidence == b"stand-in evidence"
    assert found.claims is not None and found.claims["nonce"] == b"n"
    assert found.claims_bytes is not None
    assert found.expected_report_data == ratls.report_data_for_claims(found.claims_bytes)
    assert found.certificates == ()


def test_claims_helpers(key: ec.EllipticCurvePrivateKey) -> None:
    claims = ratls.make_claims(spki(key))
    assert cbor2.loads(claims) == {"pubkey-hash": cbor2.dumps([1, hashlib.sha256(spki(key)).digest()])}
    assert ratls.spki_der(key) == ratls.spki_der(key.public_key()) == spki(key)
    assert ratls.parse_claims(claims)["pubkey-hash"]
    # a bare [alg, digest] array and SHA-384 are read too
    bare = cbor2.dumps({"pubkey-hash": [7, hashlib.sha384(spki(key)).digest()]})
    assert ratls.parse_claims(bare)
    for bad in (
        cbor2.dumps([1, 2]),
        cbor2.dumps({"nonce": b"x"}),
        cbor2.dumps({"pubkey-hash": [99, bytes(32)]}),
        cbor2.dumps({"pubkey-hash": [1, bytes(31)]}),
        cbor2.dumps({"pubkey-hash": [True, bytes(32)]}),
        cbor2.dumps({"pubkey-hash": "text"}),
        cbor2.dumps({"pubkey-hash": [1, bytes(32)], "nonce": "text"}),
        cbor2.dumps({"pubkey-hash": [1, bytes(32)], "tee": 3}),
        cbor2.dumps({1: 2}),
        claims + b"\x00",
    ):
        with pytest.raises(FormatError) as e:
            ratls.parse_claims(bad)
        assert e.value.field == "claims"


class FakeProvider:
    def __init__(self, kind: str, certificates: bytes | None) -> None:
        self.kind = kind
        self.certificates = certificates

    def quote(self, report_data: bytes) -> object:
        from attestation.tee import Evidence

        return Evidence(self.kind, b"R" + report_data, self.certificates)


def test_provider_quote_fn() -> None:
    assert ratls.provider_quote_fn(FakeProvider("sev-snp", b"TABLE"))(b"rd") == b"Rrd" + b"TABLE"
    assert ratls.provider_quote_fn(FakeProvider("sev-snp", b"-----BEGIN CERT"))(b"rd") == b"Rrd"
    assert ratls.provider_quote_fn(FakeProvider("sev-snp", None))(b"rd") == b"Rrd"
    assert ratls.provider_quote_fn(FakeProvider("tdx", b"TABLE"))(b"rd") == b"Rrd"
