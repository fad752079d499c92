"""Verifying standard RA-TLS certificates end to end, with Nitro evidence from the test Nitro PKI: the threats of
spec/bootstrap.md §7 that concern the certificate (moved quote, another key's claims, replayed nonce, tampered
bytes, wrong self-signature) each fail with their named check."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation import ratls
from attestation.errors import VerificationError
from attestation.verify import Policy
from tests.attestation.nitro.builder import NitroTestPki, pcrs
from tests.attestation.ratls.conftest import NOW, PCR0, SUBJECT, extension_values, self_signed, spki

STANDARD = "2.23.133.5.4.9"
Quote = Callable[[bytes], bytes]


def _fails(cert: x509.Certificate | bytes, roots: object, **kwargs: object) -> str:
    with pytest.raises(VerificationError) as e:
        ratls.verify_certificate(cert, now=kwargs.pop("now", NOW), roots=roots, **kwargs)  # type: ignore[arg-type]
    return e.value.check


def test_verifies(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote) -> None:
    cert = ratls.build_certificate(key, SUBJECT, nitro_quote, now=NOW)
    claims = ratls.verify_certificate(cert, now=NOW, roots=nitro_pki.roots, policy=Policy(measurements=(PCR0,)))
    assert claims.tee == "nitro" and claims.measurement == PCR0 and claims.simulated
    assert claims.report_data == ratls.read_certificate(cert).expected_report_data
    assert ("ratls_form", "standard") in claims.details
    # DER and PEM bytes are accepted too
    for encoding in (serialization.Encoding.DER, serialization.Encoding.PEM):
        ratls.verify_certificate(cert.public_bytes(encoding), now=NOW, roots=nitro_pki.roots)


def test_policy_is_applied(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote) -> None:
    cert = ratls.build_certificate(key, SUBJECT, nitro_quote, now=NOW)
    assert _fails(cert, nitro_pki.roots, policy=Policy(measurements=(bytes(48),))) == "measurement"
    # the caller's report_data is replaced by the binding's
    ratls.verify_certificate(cert, now=NOW, roots=nitro_pki.roots, policy=Policy(report_data=b"ignored"))
    # the evidence's vendor root must be trusted: by default only the pinned AWS root is
    assert _fails(cert, None) == "nitro-root"


def test_debug_enclave_is_refused(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki) -> None:
    def debug_quote(report_data: bytes) -> bytes:
        return nitro_pki.document(NOW, pcr_values=pcrs(debug=True), user_data=report_data)

    cert = ratls.build_certificate(key, SUBJECT, debug_quote, now=NOW)
    assert _fails(cert, nitro_pki.roots) == "debug"
    assert ratls.verify_certificate(cert, now=NOW, roots=nitro_pki.roots, policy=Policy(allow_debug=True)).debug


def test_nonce(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote) -> None:
    nonce = bytes(range(32))
    cert = ratls.build_certificate(key, SUBJECT, nitro_quote, nonce=nonce, now=NOW)
    ratls.verify_certificate(cert, now=NOW, roots=nitro_pki.roots, nonce=nonce)
    ratls.verify_certificate(cert, now=NOW, roots=nitro_pki.roots)  # no nonce asked: fine
    assert _fails(cert, nitro_pki.roots, nonce=bytes(32)) == "ratls-nonce"
    assert _fails(cert, nitro_pki.roots, nonce=nonce[:16]) == "ratls-nonce"
    without = ratls.build_certificate(key, SUBJECT, nitro_quote, now=NOW)
    assert _fails(without, nitro_pki.roots, nonce=nonce) == "ratls-nonce"


def test_evidence_moved_into_another_certificate(
    key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote
) -> None:
    genuine = ratls.build_certificate(key, SUBJECT, nitro_quote, now=NOW)
    thief = ec.generate_private_key(ec.SECP256R1())
    moved = self_signed(thief, extension_values(genuine))
    assert _fails(moved, nitro_pki.roots) == "ratls-binding"
    # rewriting the claims for the thief's key breaks the evidence's report data instead
    evidence = ratls.read_certificate(genuine).evidence
    rewritten = self_signed(thief, [(STANDARD, ratls.encode_extension(evidence, ratls.make_claims(spki(thief))))])
    assert _fails(rewritten, nitro_pki.roots) == "ratls-binding"


def test_claims_naming_another_key(
    key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote
) -> None:
    """Genuine evidence over genuine claims, but the claims name another key than the certificate's."""
    other = ec.generate_private_key(ec.SECP256R1())
    claims = ratls.make_claims(spki(other))
    evidence = nitro_quote(ratls.report_data_for_claims(claims))
    cert = self_signed(key, [(STANDARD, ratls.encode_extension(evidence, claims))])
    assert _fails(cert, nitro_pki.roots) == "ratls-binding"
    # the same evidence and claims in the other key's certificate verify
    ratls.verify_certificate(self_signed(other, [(STANDARD, ratls.encode_extension(evidence, claims))]), now=NOW,
                             roots=nitro_pki.roots)


def test_evidence_for_other_claims(
    key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote
) -> None:
    """Claims naming this key, but evidence binding different claims (a nonce added afterwards)."""
    evidence = nitro_quote(ratls.report_data_for_claims(ratls.make_claims(spki(key))))
    claims = ratls.make_claims(spki(key), nonce=b"added later")
    cert = self_signed(key, [(STANDARD, ratls.encode_extension(evidence, claims))])
    assert _fails(cert, nitro_pki.roots, nonce=b"added later") == "ratls-binding"


def _der_with_flip(cert: x509.Certificate, needle: bytes, offset: int) -> bytes:
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    at = bytes(der).index(needle) + offset
    der[at] ^= 0x01
    return bytes(der)


def test_tampered_extension(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote) -> None:
    cert = ratls.build_certificate(key, SUBJECT, nitro_quote, now=NOW)
    found = ratls.read_certificate(cert)
    assert found.claims_bytes is not None
    # any change inside the signed certificate breaks its self-signature
    for needle, offset in ((found.claims_bytes, 20), (found.evidence, 100), (found.evidence, len(found.evidence) - 5)):
        assert _fails(_der_with_flip(cert, needle, offset), nitro_pki.roots) == "ratls-certificate"
    # re-signed by the key holder, a changed claim byte breaks the binding and a changed evidence byte the evidence
    claims = bytearray(found.claims_bytes)
    claims[-1] ^= 0x01
    bad_claims = self_signed(key, [(STANDARD, ratls.encode_extension(found.evidence, bytes(claims)))])
    assert _fails(bad_claims, nitro_pki.roots) == "ratls-binding"
    evidence = bytearray(found.evidence)
    evidence[len(evidence) - 10] ^= 0x01  # inside the COSE signature
    bad_evidence = self_signed(key, [(STANDARD, ratls.encode_extension(bytes(evidence), found.claims_bytes))])
    assert _fails(bad_evidence, nitro_pki.roots) == "nitro-signature"
    evidence[5] ^= 0x01  # the protected header: not even a Nitro document
    garbled = self_signed(key, [(STANDARD, ratls.encode_extension(bytes(evidence), found.claims_bytes))])
    assert _fails(garbled, nitro_pki.roots) == "ratls-evidence"


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x00",
        cbor2.dumps([b"evidence", b"claims"]),  # no tag
        cbor2.dumps(cbor2.CBORTag(60001, [b"evidence", b"claims"])),
        cbor2.dumps(cbor2.CBORTag(60000, [b"evidence"])),
        cbor2.dumps(cbor2.CBORTag(60000, [b"evidence", "claims"])),
        cbor2.dumps(cbor2.CBORTag(60000, [b"", cbor2.dumps({"pubkey-hash": [1, bytes(32)]})])),
        cbor2.dumps(cbor2.CBORTag(60000, [b"evidence", b"\xa1"])),
        cbor2.dumps(cbor2.CBORTag(60000, [b"evidence", cbor2.dumps({"nonce": b""})])),
        cbor2.dumps(cbor2.CBORTag(60000, [b"e", cbor2.dumps({"pubkey-hash": [1, bytes(32)]})])) + b"\x00",
    ],
)
def test_malformed_extension(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, value: bytes) -> None:
    assert _fails(self_signed(key, [(STANDARD, value)]), nitro_pki.roots) == "ratls-extension"


def test_no_extension(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki) -> None:
    assert _fails(self_signed(key, []), nitro_pki.roots) == "ratls-extension"
    assert _fails(self_signed(key, [("1.2.840.113741.1337.5", b"x")]), nitro_pki.roots) == "ratls-extension"


def test_wrong_self_signature(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote) -> None:
    genuine = ratls.build_certificate(key, SUBJECT, nitro_quote, now=NOW)
    signer = ec.generate_private_key(ec.SECP256R1())
    # the certificate names key's public key but is signed by another key
    forged = self_signed(signer, extension_values(genuine), public_key=key.public_key())
    assert _fails(forged, nitro_pki.roots) == "ratls-certificate"
    # issued by someone else (issuer name differs): not self-signed
    other_issuer = (
        x509.CertificateBuilder()
        .subject_name(SUBJECT)
        .issuer_name(x509.Name.from_rfc4514_string("CN=Some CA"))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(genuine.extensions.get_extension_for_oid(x509.ObjectIdentifier(STANDARD)).value, False)
        .sign(key, genuine.signature_hash_algorithm)  # type: ignore[arg-type]
    )
    assert _fails(other_issuer, nitro_pki.roots) == "ratls-certificate"
    assert _fails(b"not a certificate", nitro_pki.roots) == "ratls-certificate"


def test_certificate_validity(key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote) -> None:
    cert = ratls.build_certificate(key, SUBJECT, nitro_quote, days=1, now=NOW)
    ratls.verify_certificate(cert, now=NOW - timedelta(minutes=4), roots=nitro_pki.roots)
    assert _fails(cert, nitro_pki.roots, now=NOW + timedelta(days=1, seconds=1)) == "ratls-certificate"
    assert _fails(cert, nitro_pki.roots, now=NOW - timedelta(minutes=6)) == "ratls-certificate"
    with pytest.raises(VerificationError) as e:
        ratls.verify_certificate(cert, now=NOW.replace(tzinfo=None), roots=nitro_pki.roots)
    assert e.value.check == "time"


def test_fresh_claims_and_evidence(
    key: ec.EllipticCurvePrivateKey, nitro_pki: NitroTestPki, nitro_quote: Quote
) -> None:
    """The GET /attestation?nonce= answer: claims and evidence apart from the certificate (bootstrap.md §3)."""
    nonce = b"\x07" * 32
    claims = ratls.make_claims(spki(key), nonce=nonce)
    evidence = nitro_quote(ratls.report_data_for_claims(claims))
    got = ratls.verify_claims_evidence(evidence, claims, spki=spki(key), nonce=nonce, now=NOW, roots=nitro_pki.roots)
    assert got.tee == "nitro"

    def fails(**kw: object) -> str:
        args: dict[str, object] = {"evidence": evidence, "claims": claims, "spki": spki(key), "nonce": nonce}
        args.update(kw)
        with pytest.raises(VerificationError) as e:
            ratls.verify_claims_evidence(now=NOW, roots=nitro_pki.roots, **args)  # type: ignore[arg-type]
        return e.value.check

    assert fails(nonce=b"\x08" * 32) == "ratls-nonce"  # a replayed answer to another nonce
    assert fails(spki=spki(ec.generate_private_key(ec.SECP256R1()))) == "ratls-binding"  # another TLS key
    assert fails(claims=ratls.make_claims(spki(key), nonce=b"\x08" * 32), nonce=b"\x08" * 32) == "ratls-binding"
    assert fails(claims=b"\xff") == "ratls-extension"


def test_claims_are_exposed_verbatim(key: ec.EllipticCurvePrivateKey, nitro_quote: Quote) -> None:
    cert = ratls.build_certificate(key, SUBJECT, nitro_quote, tee="nitro", now=NOW)
    found = ratls.read_certificate(cert)
    assert dataclasses.asdict(found)["claims"]["tee"] == "nitro"
