"""Reading RA-TLS extensions without verifying: form precedence, malformed Cosmian SEV values, and the
unauthenticated report-data peek at each format's offset."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestation import ratls
from attestation.errors import FormatError, VerificationError
from tests.attestation.ratls.conftest import NOW, self_signed
from tests.attestation.ratls.test_build import Recorder

OID_SGX, OID_SEV, OID_TDX = "1.2.840.113741.1337.6", "1.2.840.113741.1337.7", "1.2.840.113741.1337.8"


def _report(report_data: bytes = bytes(64)) -> bytes:
    """A stand-in SNP report: version 2, report data at 0x50, 0x4A0 bytes (unsigned)."""
    out = bytearray(0x4A0)
    out[0:4] = struct.pack("<I", 2)
    out[0x50:0x90] = report_data
    return bytes(out)


def test_standard_wins_over_legacy(key: ec.EllipticCurvePrivateKey) -> None:
    standard = ratls.build_certificate(key, self_signed(key, []).subject, Recorder(), now=NOW)
    value = standard.extensions.get_extension_for_oid(ratls.OID_STANDARD).value.value  # type: ignore[attr-defined]
    both = self_signed(key, [(OID_SGX, b"legacy quote"), ("2.23.133.5.4.9", value)])
    assert ratls.read_certificate(both).form == "standard"
    sev_and_tdx = self_signed(key, [(OID_TDX, b"tdx"), (OID_SEV, _report())])
    assert ratls.read_certificate(sev_and_tdx).form == "cosmian-sev"


@pytest.mark.parametrize(
    "value",
    [
        b"",
        _report()[:-1],  # shorter than a report
        _report() + b"\x01",  # neither layout
        _report() + struct.pack("<I", 1) + struct.pack("<I", 10) + bytes(10),  # v2 entry without a certificate
        _report() + struct.pack("<I", 1) + struct.pack("<I", 40) + bytes(20),  # v2 entry truncated
        _report() + struct.pack("<I", 1000) + bytes(4),  # absurd count
        _report() + struct.pack("<Q", 1) + struct.pack("<IQ", 9, 1) + b"x",  # unknown bincode type
        _report() + struct.pack("<Q", 1) + struct.pack("<IQ", 3, 5) + b"x",  # bincode entry truncated
        _report() + struct.pack("<Q", 1) + struct.pack("<IQ", 3, 1) + b"xy",  # trailing byte
    ],
)
def test_malformed_sev_values(key: ec.EllipticCurvePrivateKey, value: bytes) -> None:
    cert = self_signed(key, [(OID_SEV, value)])
    with pytest.raises(FormatError) as e:
        ratls.read_certificate(cert)
    assert e.value.field == "ratls-extension"
    with pytest.raises(VerificationError) as v:
        ratls.verify_certificate(cert, now=NOW)
    assert v.value.check == "ratls-extension"


def test_empty_sev_certificate_list(key: ec.EllipticCurvePrivateKey) -> None:
    for value in (_report() + struct.pack("<I", 0), _report() + struct.pack("<Q", 0)):
        found = ratls.read_certificate(self_signed(key, [(OID_SEV, value)]))
        assert found.evidence == _report() and found.certificates == ()


def test_report_data_peek() -> None:
    rd = bytes(range(64))
    assert ratls.evidence_report_data(_report(rd)) == rd
    sgx = bytearray(1000)
    sgx[0:2], sgx[4:8], sgx[368:432] = b"\x03\x00", bytes(4), rd
    assert ratls.evidence_report_data(bytes(sgx)) == rd
    tdx4 = bytearray(1000)
    tdx4[0:2], tdx4[4:8], tdx4[568:632] = b"\x04\x00", b"\x81\x00\x00\x00", rd
    assert ratls.evidence_report_data(bytes(tdx4)) == rd
    tdx5 = bytearray(1000)
    tdx5[0:2], tdx5[4:8], tdx5[48:50], tdx5[574:638] = b"\x05\x00", b"\x81\x00\x00\x00", b"\x03\x00", rd
    assert ratls.evidence_report_data(bytes(tdx5)) == rd
    assert ratls.evidence_report_data(b"unknown") is None
    assert ratls.evidence_report_data(bytes(tdx4[:600])) is None  # too short for its report data
    assert ratls.evidence_report_data(b"\x84garbage") is None  # looks like Nitro, does not parse
