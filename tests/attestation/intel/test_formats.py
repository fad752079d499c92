"""Intel quote formats: byte-exact round trips of every real sample, strict parsing, v5 bodies."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from attestation.errors import FormatError
from attestation.formats.intel_common import (
    EnclaveReportBody,
    OpaqueCertificationData,
    PckCertChain,
    QeReportCertificationData,
    QuoteHeader,
    pem_encode,
    read_certification_data,
    split_pem_chain,
    write_certification_data,
)
from attestation.formats.reader import Reader
from attestation.formats.sgx import SgxQuoteV3, SgxSignatureData, parse_quote, parse_quote_with_length
from attestation.formats.tdx import TdReport10, TdReport15, TdxQuote, TdxSignatureData
from attestation.tee.sim_intel import SimIntelPki
from tests.attestation.intel.conftest import Sample

SAMPLES = ["sgx_quote", "tdx_quote", "tdx-quote.hex", "tdx_prod_quote_SPR_E4", "cos-113-tdx-quote"]


@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip_byte_for_byte(intel_samples: dict[str, Sample], name: str) -> None:
    s = intel_samples[name]
    quote, consumed = parse_quote_with_length(s.quote)
    assert consumed == s.consumed
    assert quote.serialize() == s.quote[:consumed]
    assert quote.tee == s.tee
    assert isinstance(quote, SgxQuoteV3 if s.tee == "sgx" else TdxQuote)
    # the typed structure is what the bytes say
    assert quote.signed_bytes() == s.quote[: 432 if s.tee == "sgx" else 632]


@pytest.mark.parametrize("name", SAMPLES)
def test_trailing_bytes_are_ignored(intel_samples: dict[str, Sample], name: str) -> None:
    s = intel_samples[name]
    base = parse_quote(s.quote[: s.consumed])
    assert parse_quote(s.quote) == base
    assert parse_quote(s.quote[: s.consumed] + b"\xff" * 100) == base


def test_sample_facts(intel_samples: dict[str, Sample]) -> None:
    """What the spec says about the samples (§1.3, §1.4, §2.3) is what the parser reads."""
    sgx = parse_quote(intel_samples["sgx_quote"].quote)
    assert isinstance(sgx, SgxQuoteV3)
    assert sgx.header.qe_svn == 10 and sgx.header.pce_svn == 15
    assert sgx.body.report_data == b"Hello, world!".ljust(64, b"\x00")
    assert sgx.body.mr_enclave.hex().startswith("33d8736d") and sgx.body.mr_enclave.hex().endswith("452fbb")
    assert sgx.body.mr_signer.hex().startswith("815f42f1") and sgx.body.mr_signer.hex().endswith("a3e0e6")
    assert sgx.signature_data.qe_auth_data == bytes(range(32))
    chain = sgx.signature_data.certification_data
    assert isinstance(chain, PckCertChain) and chain.nul_terminated and len(chain.certificates) == 3

    tdx = parse_quote(intel_samples["tdx_quote"].quote)
    assert isinstance(tdx, TdxQuote) and type(tdx.body) is TdReport10
    assert tdx.body.td_attributes.hex() == "0000001000000000" and tdx.body.xfam.hex() == "e702060000000000"
    outer = tdx.signature_data.certification_data
    assert isinstance(outer, QeReportCertificationData)
    assert len(outer.body()) == 4166 and len(tdx.signature_data.serialize()) == 4300
    assert isinstance(outer.certification_data, PckCertChain) and outer.certification_data.nul_terminated

    spr = parse_quote(intel_samples["tdx_prod_quote_SPR_E4"].quote)
    inner = spr.signature_data.certification_data
    assert isinstance(inner, QeReportCertificationData)
    assert isinstance(inner.certification_data, PckCertChain) and not inner.certification_data.nul_terminated
    assert len(inner.certification_data.body()) == 3677
    assert intel_samples["tdx_prod_quote_SPR_E4"].quote[4935:] == b"\nextra bytes(only for testing purpose)\n"


@pytest.mark.parametrize("name", ["sgx_quote", "tdx_quote"])
def test_every_truncation_is_a_format_error(intel_samples: dict[str, Sample], name: str) -> None:
    s = intel_samples[name]
    fields = set()
    for n in range(s.consumed):
        with pytest.raises(FormatError) as info:
            parse_quote(s.quote[:n])
        fields.add(info.value.field)
    # the error names the field that could not be read
    assert {"header.version", "header.user_data", "signature_data_len", "signature_data"} <= fields
    assert ("body.mr_td" if name == "tdx_quote" else "body.mr_enclave") in fields
    # inside the signature data too, at every level of nesting
    quote = parse_quote(s.quote)
    sig = quote.signature_data.serialize()
    parser = SgxSignatureData.parse if isinstance(quote, SgxQuoteV3) else TdxSignatureData.parse
    inner = set()
    for n in range(len(sig)):
        with pytest.raises(FormatError) as info:
            parser(sig[:n])
        inner.add(info.value.field)
    assert "signature_data.attestation_key" in inner
    assert any(f.startswith("signature_data.certification_data.") for f in inner)
    if name == "tdx_quote":
        assert "signature_data.certification_data.data" in inner  # the outer size no longer fits
        outer = quote.signature_data.certification_data
        assert isinstance(outer, QeReportCertificationData)
        body = outer.body()
        nested = set()
        for n in range(len(body)):
            with pytest.raises(FormatError) as info:
                QeReportCertificationData.parse_body(body[:n], "cd")
            nested.add(info.value.field)
        assert {"cd.qe_report.mr_signer", "cd.qe_auth_data", "cd.certification_data.size"} <= nested


@pytest.mark.parametrize("name", ["sgx_quote", "tdx_quote"])
def test_inconsistent_lengths(intel_samples: dict[str, Sample], name: str) -> None:
    s = intel_samples[name]
    data = bytearray(s.quote[: s.consumed])
    at = 432 if s.tee == "sgx" else 632
    (sig_len,) = struct.unpack_from("<I", data, at)
    longer = bytes(data[:at]) + struct.pack("<I", sig_len + 1) + bytes(data[at + 4 :]) + b"\x00"
    with pytest.raises(FormatError) as info:
        parse_quote(longer)
    assert info.value.field == "signature_data_len"


def test_unknown_version_and_tee_type(intel_samples: dict[str, Sample]) -> None:
    data = bytearray(intel_samples["sgx_quote"].quote)
    data[0] = 6
    with pytest.raises(FormatError) as info:
        parse_quote(bytes(data))
    assert info.value.field == "header.version"
    data = bytearray(intel_samples["tdx_quote"].quote)
    data[4] = 0x80
    with pytest.raises(FormatError) as info:
        parse_quote(bytes(data))
    assert info.value.field == "header.tee_type"
    with pytest.raises(FormatError):
        parse_quote(b"")


def test_built_structures_check_their_sizes(intel_samples: dict[str, Sample]) -> None:
    sgx = parse_quote(intel_samples["sgx_quote"].quote)
    assert isinstance(sgx, SgxQuoteV3)
    with pytest.raises(FormatError) as info:
        dataclasses.replace(sgx.body, mr_enclave=bytes(31))
    assert info.value.field == "report.mr_enclave"
    with pytest.raises(FormatError) as info:
        dataclasses.replace(sgx.header, user_data=bytes(21))
    assert info.value.field == "header.user_data"
    with pytest.raises(FormatError) as info:
        dataclasses.replace(sgx.body, isv_svn=1 << 16)
    assert info.value.field == "report.isv_svn"
    tdx = parse_quote(intel_samples["tdx_quote"].quote)
    assert isinstance(tdx, TdxQuote) and isinstance(tdx.body, TdReport10)
    with pytest.raises(FormatError) as info:
        dataclasses.replace(tdx.body, rtmrs=tdx.body.rtmrs[:3])
    assert info.value.field == "body.rtmrs"
    with pytest.raises(FormatError) as info:
        dataclasses.replace(tdx, body=sgx.body)  # a v4 quote carries a TD report
    assert info.value.field == "body"


def test_pem_chain_must_be_canonical(intel_samples: dict[str, Sample]) -> None:
    sgx = parse_quote(intel_samples["sgx_quote"].quote)
    chain = sgx.signature_data.certification_data
    assert isinstance(chain, PckCertChain)
    pem = chain.pem()
    assert split_pem_chain(pem, "f") == chain.certificates
    assert pem_encode(chain.certificates[0]) == pem[: len(pem_encode(chain.certificates[0]))]
    for bad in (
        pem.replace(b"\n", b"\r\n"),  # other line ends
        pem + b"\n",  # text after the last block
        pem[:-1],  # no final newline
        b"\n" + pem,
        pem.replace(b"-----\nMII", b"-----\nM\x00I", 1),  # not base64
        pem.replace(b"-----END", b"\n-----END", 1),  # an empty line
        b"",
    ):
        with pytest.raises(FormatError) as info:
            PckCertChain.parse_body(bad, "chain")
        assert info.value.field == "chain"
    # with and without the NUL terminator, both round-trip
    for nul in (True, False):
        body = pem + (b"\x00" if nul else b"")
        parsed = PckCertChain.parse_body(body, "chain")
        assert parsed.nul_terminated is nul and parsed.body() == body


def test_certification_data_types(intel_samples: dict[str, Sample]) -> None:
    tdx = parse_quote(intel_samples["tdx_quote"].quote)
    outer = tdx.signature_data.certification_data
    assert isinstance(outer, QeReportCertificationData)
    # type 6 inside type 6 is refused
    nested = QeReportCertificationData(
        outer.qe_report, outer.qe_report_signature, outer.qe_auth_data, OpaqueCertificationData(6, b"")
    )
    blob = write_certification_data(nested)
    with pytest.raises(FormatError) as info:
        read_certification_data(Reader(blob), "cd")
    assert info.value.field.endswith("certification_data.type")
    # other types are kept as opaque bytes and round-trip
    opaque = OpaqueCertificationData(7, b"manifest")
    assert read_certification_data(Reader(write_certification_data(opaque)), "cd") == opaque
    # the size of type 6 must be its content's
    raw = bytearray(write_certification_data(outer))
    raw[2:6] = struct.pack("<I", len(outer.body()) + 1)
    with pytest.raises(FormatError):
        read_certification_data(Reader(bytes(raw) + b"\x00"), "cd")


@pytest.mark.parametrize(("version", "body_type"), [(4, 2), (5, 2), (5, 3)])
def test_simulated_tdx_layouts(sim_pki: SimIntelPki, version: int, body_type: int) -> None:
    data = sim_pki.tdx_quote(b"rd", bytes(range(48)), version=version, body_type=body_type)
    quote = parse_quote(data)
    assert isinstance(quote, TdxQuote) and quote.header.version == version and quote.body_type == body_type
    assert quote.serialize() == data
    body_size = {2: 584, 3: 648}[body_type]
    signed = 48 + (6 if version == 5 else 0) + body_size
    assert len(quote.signed_bytes()) == signed
    if version == 5:
        assert struct.unpack_from("<HI", data, 48) == (body_type, body_size)
        assert isinstance(quote.body, TdReport15) == (body_type == 3)


def test_v5_sgx_body_round_trip(sim_pki: SimIntelPki) -> None:
    """Quote v5 may carry an SGX enclave report (body type 1, TEE type 0)."""
    sgx = parse_quote(sim_pki.sgx_quote(b"x", bytes(32), bytes(32)))
    assert isinstance(sgx, SgxQuoteV3)
    tdx = parse_quote(sim_pki.tdx_quote(b"x", bytes(48)))
    assert isinstance(tdx, TdxQuote)
    header = dataclasses.replace(sgx.header, version=5)
    quote = TdxQuote(header, sgx.body, tdx.signature_data)
    data = quote.serialize()
    assert struct.unpack_from("<HI", data, 48) == (1, 384)
    parsed = parse_quote(data)
    assert parsed == quote and parsed.tee == "sgx" and parsed.body_type == 1
    # a TD body under TEE type 0 (or an SGX body under 0x81) is inconsistent
    with pytest.raises(FormatError) as info:
        TdxQuote(header, tdx.body, tdx.signature_data)
    assert info.value.field == "body_type"
    bad = bytearray(data)
    bad[48:54] = struct.pack("<HI", 1, 383)
    with pytest.raises(FormatError) as info:
        parse_quote(bytes(bad))
    assert info.value.field == "body_size"
    bad[48:54] = struct.pack("<HI", 9, 384)
    with pytest.raises(FormatError) as info:
        parse_quote(bytes(bad))
    assert info.value.field == "body_type"


def test_header_and_report_accessors(intel_samples: dict[str, Sample]) -> None:
    sgx = parse_quote(intel_samples["sgx_quote"].quote)
    assert isinstance(sgx, SgxQuoteV3)
    assert QuoteHeader.read(Reader(sgx.header.serialize())) == sgx.header
    assert sgx.header.qe_id == sgx.header.user_data[:16]
    assert EnclaveReportBody.parse(sgx.body.serialize()) == sgx.body
    assert not sgx.body.debug and sgx.body.flags == 0x05 and sgx.body.xfrm == 0xE7
    with pytest.raises(FormatError):
        EnclaveReportBody.parse(sgx.body.serialize() + b"\x00")
    tdx = parse_quote(intel_samples["tdx_quote"].quote)
    assert isinstance(tdx.body, TdReport10)
    assert tdx.body.tdx_module_svn == 6 and tdx.body.tdx_module_major_version == 1 and not tdx.body.debug
    assert TdxSignatureData.parse(tdx.signature_data.serialize()) == tdx.signature_data
