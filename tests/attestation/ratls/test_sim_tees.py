"""RA-TLS end to end with the simulated AMD and Intel TEEs (attestation.tee.sim_amd / sim_intel) and the real
AMD and Intel verifiers: the standard form with SNP (bare and extended reports), SGX and TDX v4/v5 evidence, and
the older Cosmian (.6 SGX, .7 SEV in its three layouts, .8 TDX) and Gramine legacy forms, each accepted when bound
to the certificate key and refused with "ratls-binding" when moved to another key."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestation import ratls
from attestation.errors import VerificationError
from attestation.formats.snp import GUID_ARK, GUID_ASK, GUID_VCEK, parse_evidence
from attestation.tee.sim_amd import SimAmdPki
from attestation.tee.sim_intel import SimIntelPki
from attestation.verify import Claims, Policy
from tests.attestation.ratls.conftest import (
    MEASUREMENT,
    MRENCLAVE,
    MRSIGNER,
    NOW,
    SUBJECT,
    extension_values,
    point,
    self_signed,
    spki,
)

OID_SGX, OID_SEV, OID_TDX = "1.2.840.113741.1337.6", "1.2.840.113741.1337.7", "1.2.840.113741.1337.8"
MRTD = bytes(range(96, 144))


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _fails(cert: x509.Certificate, **kwargs: object) -> str:
    with pytest.raises(VerificationError) as e:
        ratls.verify_certificate(cert, now=NOW, **kwargs)  # type: ignore[arg-type]
    return e.value.check


def _moved(cert: x509.Certificate) -> x509.Certificate:
    """The same RA-TLS extension(s) in a certificate of another key."""
    return self_signed(ec.generate_private_key(ec.SECP256R1()), extension_values(cert))


# ------------------------------------------------------------------------------------------------- SEV-SNP


def test_standard_snp_bare_report_with_vcek(key: ec.EllipticCurvePrivateKey, amd_pki: SimAmdPki) -> None:
    cert = ratls.build_certificate(key, SUBJECT, lambda rd: amd_pki.report(rd, MEASUREMENT), now=NOW)
    claims = ratls.verify_certificate(
        cert, now=NOW, roots=amd_pki.roots(), vcek=amd_pki.vcek_der(), policy=Policy(measurements=(MEASUREMENT,))
    )
    assert claims.tee == "sev-snp" and claims.measurement == MEASUREMENT and claims.simulated
    assert claims.report_data == ratls.read_certificate(cert).expected_report_data
    assert _fails(cert, roots=amd_pki.roots()) == "vcek"  # a bare report needs the VCEK from somewhere
    assert _fails(cert, roots=amd_pki.roots(), vcek=amd_pki.vcek_der(),
                  policy=Policy(measurements=(bytes(48),))) == "measurement"
    assert _fails(_moved(cert), roots=amd_pki.roots(), vcek=amd_pki.vcek_der()) == "ratls-binding"


def test_standard_snp_extended_report(key: ec.EllipticCurvePrivateKey, amd_pki: SimAmdPki) -> None:
    """The certificate table travels inside the evidence: no vcek= needed."""
    nonce = b"\x01" * 32
    cert = ratls.build_certificate(
        key, SUBJECT, lambda rd: amd_pki.extended_report(rd, MEASUREMENT), nonce=nonce, tee="sev-snp", now=NOW
    )
    claims = ratls.verify_certificate(cert, now=NOW, roots=amd_pki.roots(), nonce=nonce)
    assert claims.tee == "sev-snp"
    assert _fails(cert, roots=amd_pki.roots(), nonce=b"\x02" * 32) == "ratls-nonce"
    assert _fails(cert) == "ark"  # the pinned AMD roots do not know the simulated ARK
    assert _fails(_moved(cert), roots=amd_pki.roots()) == "ratls-binding"


def test_standard_snp_debug_guest(key: ec.EllipticCurvePrivateKey, amd_pki: SimAmdPki) -> None:
    cert = ratls.build_certificate(key, SUBJECT, lambda rd: amd_pki.extended_report(rd, MEASUREMENT, debug=True),
                                   now=NOW)
    assert _fails(cert, roots=amd_pki.roots()) == "debug"


def _point_hash(key: ec.EllipticCurvePrivateKey) -> bytes:
    return hashlib.sha256(point(key)).digest()


def _sev_v2(report: bytes, certs: list[tuple[bytes, bytes]]) -> bytes:
    """Cosmian tee-tools v2 layout: report, u32 count, then u32 length || GUID || DER per certificate."""
    out = report + struct.pack("<I", len(certs))
    for guid, der in certs:
        out += struct.pack("<I", 16 + len(der)) + guid + der
    return out


def _sev_bincode(report: bytes, certs: list[tuple[int, bytes]]) -> bytes:
    """Cosmian tee-tools 4.10 bincode layout: report, u64 count, then u32 type || u64 length || DER."""
    out = report + struct.pack("<Q", len(certs))
    for variant, der in certs:
        out += struct.pack("<IQ", variant, len(der)) + der
    return out


def test_cosmian_sev_forms(key: ec.EllipticCurvePrivateKey, amd_pki: SimAmdPki) -> None:
    report = amd_pki.report(_point_hash(key), MEASUREMENT)
    vcek, ask, ark = _der(amd_pki.vcek), _der(amd_pki.ask), _der(amd_pki.ark)
    values = {
        "bare": report,
        "v2": _sev_v2(report, [(GUID_ARK.bytes, ark), (GUID_VCEK.bytes, vcek), (GUID_ASK.bytes, ask)]),
        "bincode": _sev_bincode(report, [(1, ark), (3, vcek), (2, ask), (5, b"a CRL, not forwarded")]),
    }
    for layout, value in values.items():
        cert = self_signed(key, [(OID_SEV, value)])
        found = ratls.read_certificate(cert)
        assert found.form == "cosmian-sev", layout
        assert found.expected_report_data == _point_hash(key) + bytes(32)
        if layout == "bare":
            assert found.evidence == report and found.certificates == ()
            claims = ratls.verify_certificate(cert, now=NOW, roots=amd_pki.roots(), vcek=vcek)
        else:
            rep, table = parse_evidence(found.evidence)
            assert rep.to_bytes() == report and table is not None and table.get(GUID_VCEK) == vcek
            assert {name for name, _ in found.certificates} >= {"VCEK", "ASK", "ARK"}
            claims = ratls.verify_certificate(cert, now=NOW, roots=amd_pki.roots())
        assert claims.tee == "sev-snp" and ("ratls_form", "cosmian-sev") in claims.details
        assert _fails(_moved(cert), roots=amd_pki.roots(), vcek=vcek) == "ratls-binding", layout
        assert _fails(cert, roots=amd_pki.roots(), vcek=vcek, nonce=b"n") == "ratls-nonce"


def test_cosmian_sev_extra_data_is_free(key: ec.EllipticCurvePrivateKey, amd_pki: SimAmdPki) -> None:
    """Only report_data[0:32] binds in the Cosmian forms; the rest is the producer's extra data."""
    report = amd_pki.report(_point_hash(key) + b"\xee" * 32, MEASUREMENT)
    cert = self_signed(key, [(OID_SEV, report)])
    assert ratls.read_certificate(cert).expected_report_data == _point_hash(key) + b"\xee" * 32
    ratls.verify_certificate(cert, now=NOW, roots=amd_pki.roots(), vcek=amd_pki.vcek_der())


def test_cosmian_sev_needs_an_ec_key(amd_pki: SimAmdPki) -> None:
    rsa_key = rsa.generate_private_key(65537, 2048)
    report = amd_pki.report(bytes(64), MEASUREMENT)
    cert = (
        x509.CertificateBuilder().subject_name(SUBJECT).issuer_name(SUBJECT).public_key(rsa_key.public_key())
        .serial_number(3).not_valid_before(NOW.replace(year=2025)).not_valid_after(NOW.replace(year=2027))
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(OID_SEV), report), critical=False)
        .sign(rsa_key, hashes.SHA256())
    )
    assert _fails(cert, roots=amd_pki.roots(), vcek=amd_pki.vcek_der()) == "ratls-binding"


# ------------------------------------------------------------------------------------------------- Intel


def _intel(pki: SimIntelPki, kind: str) -> dict[str, object]:
    return {"roots": pki.roots(), "collateral": pki.collateral(kind)}


def test_standard_sgx(key: ec.EllipticCurvePrivateKey, intel_pki: SimIntelPki) -> None:
    cert = ratls.build_certificate(key, SUBJECT, lambda rd: intel_pki.sgx_quote(rd, MRENCLAVE, MRSIGNER), now=NOW)
    claims = ratls.verify_certificate(cert, now=NOW, policy=Policy(measurements=(MRENCLAVE,)), **_intel(intel_pki,
                                                                                                          "sgx"))
    assert claims.tee == "sgx" and claims.measurement == MRENCLAVE and claims.tcb_status == "UpToDate"
    assert _fails(_moved(cert), **_intel(intel_pki, "sgx")) == "ratls-binding"
    assert _fails(cert, roots=intel_pki.roots()) == "tcb-required"
    debug = ratls.build_certificate(
        key, SUBJECT, lambda rd: intel_pki.sgx_quote(rd, MRENCLAVE, MRSIGNER, debug=True), now=NOW
    )
    assert _fails(debug, **_intel(intel_pki, "sgx")) == "debug"


@pytest.mark.parametrize(("version", "body_type"), [(4, None), (5, 2), (5, 3)])
def test_standard_tdx(
    key: ec.EllipticCurvePrivateKey, intel_pki: SimIntelPki, version: int, body_type: int | None
) -> None:
    def quote(rd: bytes) -> bytes:
        return intel_pki.tdx_quote(rd, MRTD, version=version, body_type=body_type)

    cert = ratls.build_certificate(key, SUBJECT, quote, now=NOW)
    found = ratls.read_certificate(cert)
    assert ratls.evidence_report_data(found.evidence) == found.expected_report_data  # the offset per version
    claims = ratls.verify_certificate(cert, now=NOW, policy=Policy(measurements=(MRTD,)), **_intel(intel_pki, "tdx"))
    assert claims.tee == "tdx" and claims.measurement == MRTD
    assert _fails(_moved(cert), **_intel(intel_pki, "tdx")) == "ratls-binding"


def test_cosmian_sgx_and_gramine_legacy(key: ec.EllipticCurvePrivateKey, intel_pki: SimIntelPki) -> None:
    """`.6` carries either binding; the reader picks the one the quote's report data satisfies."""
    cases: dict[str, Callable[[ec.EllipticCurvePrivateKey], bytes]] = {
        "cosmian-sgx": _point_hash,  # 32 bytes, zero-padded by the quoting enclave
        "gramine-legacy": lambda k: hashlib.sha256(spki(k)).digest(),
    }
    for form, binding in cases.items():
        cert = self_signed(key, [(OID_SGX, intel_pki.sgx_quote(binding(key), MRENCLAVE, MRSIGNER))])
        found = ratls.read_certificate(cert)
        assert found.form == form and found.expected_report_data == binding(key) + bytes(32)
        claims = ratls.verify_certificate(cert, now=NOW, **_intel(intel_pki, "sgx"))
        assert ("ratls_form", form) in claims.details
        assert _fails(_moved(cert), **_intel(intel_pki, "sgx")) == "ratls-binding"
        assert _fails(cert, nonce=b"n", **_intel(intel_pki, "sgx")) == "ratls-nonce"
    # Cosmian 4.10 SGX quotes carry leftover bytes after the hash: accepted, only the first 32 bytes bind
    cert = self_signed(key, [(OID_SGX, intel_pki.sgx_quote(_point_hash(key) + b"\x5a" * 32, MRENCLAVE, MRSIGNER))])
    ratls.verify_certificate(cert, now=NOW, **_intel(intel_pki, "sgx"))
    # Gramine legacy requires the rest zero
    spki_hash = hashlib.sha256(spki(key)).digest()
    cert = self_signed(key, [(OID_SGX, intel_pki.sgx_quote(spki_hash + b"\x5a" * 32, MRENCLAVE, MRSIGNER))])
    assert ratls.read_certificate(cert).form == "gramine-legacy"
    assert _fails(cert, **_intel(intel_pki, "sgx")) == "ratls-binding"


def test_gramine_legacy_with_rsa_key(intel_pki: SimIntelPki) -> None:
    rsa_key = rsa.generate_private_key(65537, 2048)
    rsa_spki = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    quote = intel_pki.sgx_quote(hashlib.sha256(rsa_spki).digest(), MRENCLAVE, MRSIGNER)
    cert = (
        x509.CertificateBuilder().subject_name(SUBJECT).issuer_name(SUBJECT).public_key(rsa_key.public_key())
        .serial_number(5).not_valid_before(NOW.replace(year=2025)).not_valid_after(NOW.replace(year=2027))
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(OID_SGX), quote), critical=False)
        .sign(rsa_key, hashes.SHA256())
    )
    assert ratls.read_certificate(cert).form == "gramine-legacy"
    ratls.verify_certificate(cert, now=NOW, **_intel(intel_pki, "sgx"))


def test_dot6_with_neither_binding(key: ec.EllipticCurvePrivateKey, intel_pki: SimIntelPki) -> None:
    cert = self_signed(key, [(OID_SGX, intel_pki.sgx_quote(b"\x01" * 64, MRENCLAVE, MRSIGNER))])
    found = ratls.read_certificate(cert)
    assert found.form == "cosmian-sgx" and found.expected_report_data[:32] == _point_hash(key)
    assert _fails(cert, **_intel(intel_pki, "sgx")) == "ratls-binding"


@pytest.mark.parametrize("version", [4, 5])
def test_cosmian_tdx(key: ec.EllipticCurvePrivateKey, intel_pki: SimIntelPki, version: int) -> None:
    cert = self_signed(key, [(OID_TDX, intel_pki.tdx_quote(_point_hash(key), MRTD, version=version))])
    assert ratls.read_certificate(cert).form == "cosmian-tdx"
    claims: Claims = ratls.verify_certificate(cert, now=NOW, **_intel(intel_pki, "tdx"))
    assert claims.tee == "tdx"
    assert _fails(_moved(cert), **_intel(intel_pki, "tdx")) == "ratls-binding"


def test_tampered_quote_in_legacy_form(key: ec.EllipticCurvePrivateKey, intel_pki: SimIntelPki) -> None:
    quote = bytearray(intel_pki.sgx_quote(_point_hash(key), MRENCLAVE, MRSIGNER))
    quote[48 + 64] ^= 0x01  # MRENCLAVE, signed by the attestation key
    cert = self_signed(key, [(OID_SGX, bytes(quote))])
    assert _fails(cert, **_intel(intel_pki, "sgx")) == "quote-signature"
