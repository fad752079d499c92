"""SEV-SNP report and certificate-table parsing/serialising, byte for byte, and FormatError on bad input."""

from __future__ import annotations

import dataclasses
import uuid
import warnings
from pathlib import Path

import pytest
from cryptography import x509

from attestation.errors import FormatError
from attestation.formats import snp
from attestation.formats.snp import (
    GUID_ARK,
    GUID_ASK,
    GUID_VCEK,
    REPORT_SIZE,
    CertTable,
    TcbVersion,
    parse_cert_table,
    parse_evidence,
    parse_report,
    product_from_cpuid,
)
from attestation.tee.sim_amd import SimAmdPki
from attestation.verify.amd import amd_extensions, certificate_kind

from .conftest import Sample


def _cert(path: Path) -> x509.Certificate:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AMD VCEKs have serial number 0
        return x509.load_der_x509_certificate(path.read_bytes())


# -- real reports ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["virtee-milan", "trustee-milan"])
def test_real_reports_round_trip_byte_for_byte(snp_samples: dict[str, Sample], name: str) -> None:
    raw = snp_samples[name].report
    report = parse_report(raw)
    assert report.to_bytes() == raw
    assert report.signed_bytes() == raw[:0x2A0]
    # the generation-specific decoding does not change the bytes either
    assert report.with_product("Turin").to_bytes() == raw
    assert parse_evidence(raw) == (report, None)


def test_virtee_report_fields(snp_samples: dict[str, Sample]) -> None:
    report = parse_report(snp_samples["virtee-milan"].report)
    assert report.version == 2
    assert report.cpuid is None and report.product is None
    assert report.policy.value == 0x30000 and report.policy.smt and report.policy.reserved_must_be_one
    assert not report.policy.debug and report.policy.mbz == 0
    assert report.vmpl == 0 and report.signature_algo == 1
    assert report.signer_info.signing_key_name == "vcek" and not report.signer_info.mask_chip_key
    assert report.platform_info.smt_en and not report.platform_info.tsme_en
    assert report.reported_tcb == TcbVersion(bootloader=3, tee=0, snp=8, microcode=0x73, reserved=bytes(4))
    assert report.reported_tcb.components() == (("bootloader", 3), ("tee", 0), ("snp", 8), ("microcode", 0x73))
    assert report.measurement.hex().startswith("7a1e5c266c0108db")
    assert report.report_id_ma == b"\xff" * 32
    assert report.chip_id.hex().startswith("d49554ec717f4e5b")
    assert (report.current_major, report.current_minor, report.current_build) == (1, 52, 4)
    assert report.launch_mit_vector is None and len(report.reserved_1f8) == 168
    assert report.r.bit_length() <= 384 and report.s.bit_length() <= 384


def test_trustee_report_fields(snp_samples: dict[str, Sample]) -> None:
    report = parse_report(snp_samples["trustee-milan"].report)
    assert report.guest_svn == 4
    assert report.policy.value == 0x3001F and report.policy.abi_minor == 0x1F and report.policy.abi_major == 0
    assert report.image_id == b"\x02" + bytes(15)
    assert report.current_tcb.microcode == 0xCE and report.reported_tcb.microcode == 0x73
    assert report.id_key_digest.hex().startswith("0356215882a82527")


def test_turin_decoding_of_the_same_bytes() -> None:
    raw = bytes.fromhex("0102030400000009")
    legacy = TcbVersion.from_bytes(raw, turin=False)
    turin = TcbVersion.from_bytes(raw, turin=True)
    assert (legacy.bootloader, legacy.tee, legacy.snp, legacy.microcode, legacy.fmc) == (1, 2, 0, 9, None)
    assert (turin.fmc, turin.bootloader, turin.tee, turin.snp, turin.microcode) == (1, 2, 3, 4, 9)
    assert legacy.to_bytes() == turin.to_bytes() == raw
    assert turin.components()[0] == ("fmc", 1)
    with pytest.raises(FormatError) as err:
        TcbVersion.from_bytes(raw[:7], turin=False, field="reported_tcb")
    assert err.value.field == "reported_tcb"
    with pytest.raises(FormatError, match=r"tcb\.snp"):
        TcbVersion(bootloader=0, tee=0, snp=256, microcode=0).to_bytes()


@pytest.mark.parametrize(
    ("family", "model", "product"),
    [(0x19, 0x01, "Milan"), (0x19, 0x11, "Genoa"), (0x19, 0xA0, "Genoa"), (0x1A, 0x02, "Turin"),
     (0x1A, 0x11, "Turin"), (0x19, 0x21, None), (0x17, 0x31, None), (0, 0, None)],
)
def test_product_from_cpuid(family: int, model: int, product: str | None) -> None:
    assert product_from_cpuid(family, model) == product


# -- truncated and inconsistent input ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 4, 0x2A0, REPORT_SIZE - 1])
def test_truncated_report_is_a_format_error(snp_samples: dict[str, Sample], length: int) -> None:
    raw = snp_samples["virtee-milan"].report[:length]
    with pytest.raises(FormatError) as err:
        parse_report(raw)
    assert err.value.field == "report"
    with pytest.raises(FormatError):
        parse_evidence(raw)


def test_parse_report_refuses_extra_bytes(snp_samples: dict[str, Sample]) -> None:
    with pytest.raises(FormatError, match="parse_evidence"):
        parse_report(snp_samples["virtee-milan"].report + b"\0")


@pytest.mark.parametrize("version", [0, 1, 6, 0xFFFFFFFF])
def test_unsupported_version(snp_samples: dict[str, Sample], version: int) -> None:
    raw = version.to_bytes(4, "little") + snp_samples["virtee-milan"].report[4:]
    with pytest.raises(FormatError) as err:
        parse_report(raw)
    assert err.value.field == "version"


def test_serialise_checks_every_field(snp_samples: dict[str, Sample]) -> None:
    report = parse_report(snp_samples["virtee-milan"].report)
    bad = [
        ("measurement", dataclasses.replace(report, measurement=bytes(47))),
        ("vmpl", dataclasses.replace(report, vmpl=1 << 32)),
        ("cpuid", dataclasses.replace(report, version=3)),
        ("cpuid", dataclasses.replace(report, cpuid=snp.Cpuid(0x19, 1, 1))),
        ("launch_mit_vector", dataclasses.replace(report, version=5, cpuid=snp.Cpuid(0x19, 1, 1),
                                                  reserved_188=bytes(21))),
        ("reserved_1f8", dataclasses.replace(report, reserved_1f8=bytes(152))),
        ("signature_r", dataclasses.replace(report, signature_r=bytes(48))),
        ("reported_tcb", dataclasses.replace(report, reported_tcb=TcbVersion(0, 0, 0, 0, fmc=0))),
        ("version", dataclasses.replace(report, version=7)),
    ]
    for field, value in bad:
        with pytest.raises(FormatError) as err:
            value.to_bytes()
        assert err.value.field == field


# -- v3 and v5 layouts (simulated, there is no real v3/v5 sample) ------------------------------------------------


@pytest.mark.parametrize("version", [2, 3, 4, 5])
def test_layouts_round_trip(sim_milan: SimAmdPki, version: int) -> None:
    raw = sim_milan.report(b"data", bytes(range(48)), version=version)
    report = parse_report(raw)
    assert report.to_bytes() == raw
    assert report.version == version
    if version >= 3:
        assert report.cpuid == snp.Cpuid(0x19, 0x01, 0x01) and report.product == "Milan"
        assert raw[0x188:0x18B] == b"\x19\x01\x01" and len(report.reserved_188) == 21
    else:
        assert report.cpuid is None and len(report.reserved_188) == 24
    if version == 5:
        assert report.launch_mit_vector == 0 and report.current_mit_vector == 0 and len(report.reserved_1f8) == 152
    else:
        assert report.launch_mit_vector is None and len(report.reserved_1f8) == 168


def test_v5_mitigation_vectors_are_read_at_0x1f8(sim_milan: SimAmdPki) -> None:
    raw = bytearray(sim_milan.report(b"", bytes(48), version=5))
    raw[0x1F8:0x200] = (0x1122334455667788).to_bytes(8, "little")
    raw[0x200:0x208] = (5).to_bytes(8, "little")
    report = parse_report(bytes(raw))
    assert report.launch_mit_vector == 0x1122334455667788 and report.current_mit_vector == 5
    assert report.to_bytes() == bytes(raw)
    # the same bytes in a v3 report are reserved, and kept
    raw[0:4] = (3).to_bytes(4, "little")
    v3 = parse_report(bytes(raw))
    assert v3.launch_mit_vector is None and v3.reserved_1f8[:8] == raw[0x1F8:0x200]
    assert v3.to_bytes() == bytes(raw)


def test_turin_report_decodes_fmc_from_cpuid(sim_turin: SimAmdPki) -> None:
    raw = sim_turin.report(b"", bytes(48), version=3)
    report = parse_report(raw)
    assert report.product == "Turin" and report.turin_layout
    assert report.reported_tcb.fmc == 1 and report.reported_tcb.snp == 3
    assert report.to_bytes() == raw
    # a v2 Turin report has no CPUID: legacy unless the product is given
    v2 = sim_turin.report(b"", bytes(48), version=2)
    assert not parse_report(v2).turin_layout
    assert parse_report(v2, product="Turin").reported_tcb.fmc == 1


# -- certificate table -------------------------------------------------------------------------------------------


def test_cert_table_round_trip(sim_milan: SimAmdPki) -> None:
    table = sim_milan.cert_table()
    raw = table.to_bytes()
    assert raw[:16] == GUID_VCEK.bytes
    assert int.from_bytes(raw[16:20], "little") == 4 * 24  # offsets count from the table start
    parsed = parse_cert_table(raw)
    assert parsed == table and parsed.to_bytes() == raw
    assert [e.name for e in parsed.entries] == ["VCEK", "ASK", "ARK"]
    assert parsed.get(GUID_VCEK) == sim_milan.vcek_der()
    assert parsed.get(snp.GUID_VLEK) is None
    # padding after the certificates (a page-sized buffer) is kept
    padded = raw + bytes(4096 - len(raw) % 4096)
    assert parse_cert_table(padded).to_bytes() == padded


def test_extended_report_framing(sim_milan: SimAmdPki) -> None:
    ext = sim_milan.extended_report(b"n", bytes(48))
    report, table = parse_evidence(ext)
    assert table is not None and snp.serialise_evidence(report, table) == ext
    assert table.get(GUID_ARK) is not None and table.get(GUID_ASK) is not None


def test_empty_cert_table() -> None:
    table = parse_cert_table(bytes(24))
    assert table.entries == () and table.to_bytes() == bytes(24)


def test_cert_table_build_layout() -> None:
    table = CertTable.build([(GUID_VCEK, b"abc"), (GUID_ARK, b"defg")])
    raw = table.to_bytes()
    assert len(raw) == 3 * 24 + 7
    assert parse_cert_table(raw).items() == ((GUID_VCEK, b"abc"), (GUID_ARK, b"defg"))


def _entry(guid: uuid.UUID, offset: int, length: int) -> bytes:
    return guid.bytes + offset.to_bytes(4, "little") + length.to_bytes(4, "little")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "cert_table.entries[0]"),
        (bytes(23), "cert_table.entries[0]"),
        (_entry(GUID_VCEK, 48, 3), "cert_table.entries[1]"),  # no terminator
        (_entry(GUID_VCEK, 48, 3) + bytes(24) + b"ab", "cert_table.entries[0]"),  # past the end
        (_entry(GUID_VCEK, 10, 3) + bytes(24) + b"abc", "cert_table.entries[0]"),  # inside the header
        (_entry(GUID_VCEK, 48, 0) + bytes(24), "cert_table.entries[0]"),  # empty certificate
        (_entry(GUID_VCEK, 72, 1) + _entry(GUID_VCEK, 72, 1) + bytes(24) + b"a", "cert_table.entries[1]"),
        (_entry(uuid.UUID(int=0), 0, 5) + b"abcde", "cert_table.entries[0]"),  # dirty terminator
        (_entry(GUID_VCEK, 0xFFFFFFFF, 0xFFFFFFFF) + bytes(24), "cert_table.entries[0]"),
    ],
)
def test_bad_cert_tables(raw: bytes, field: str) -> None:
    with pytest.raises(FormatError) as err:
        parse_cert_table(raw)
    assert err.value.field == field


def test_bad_cert_table_in_evidence_is_a_format_error(snp_samples: dict[str, Sample]) -> None:
    with pytest.raises(FormatError) as err:
        parse_evidence(snp_samples["virtee-milan"].report + b"\x01")
    assert err.value.field.startswith("cert_table")


# -- VCEK / VLEK extensions --------------------------------------------------------------------------------------


def test_milan_vcek_extensions(att_vectors: Path) -> None:
    cert = _cert(att_vectors / "virtee-sev" / "vcek_milan.der")
    ext = amd_extensions(cert)
    assert ext.struct_version == 0 and ext.product_name == "Milan-B0" and ext.product == "Milan"
    assert (ext.bl_spl, ext.tee_spl, ext.snp_spl, ext.ucode_spl, ext.fmc_spl) == (3, 0, 8, 0x73, None)
    assert ext.hwid is not None and len(ext.hwid) == 64 and ext.hwid.hex().startswith("d49554ec")
    assert ext.csp_id is None and certificate_kind(cert) == "vcek"
    assert ("spl_4", 0) in ext.reserved_spl


def test_turin_vcek_extensions(att_vectors: Path) -> None:
    ext = amd_extensions(_cert(att_vectors / "virtee-sev" / "vcek_turin.der"))
    assert ext.struct_version == 1 and ext.product == "Turin"
    assert (ext.fmc_spl, ext.bl_spl, ext.tee_spl, ext.snp_spl, ext.ucode_spl) == (0, 0, 0, 0, 9)
    assert ext.hwid == bytes.fromhex("1e550a8ee5cf9f4d")
    assert "spl_4" not in dict(ext.reserved_spl)


def test_invalid_vcek_extensions_still_parse(att_vectors: Path) -> None:
    legacy = amd_extensions(_cert(att_vectors / "trustee" / "test-vcek-invalid-legacy.der"))
    assert legacy.ucode_spl == 0xA9 and legacy.snp_spl == 10  # a two-byte DER INTEGER
    new = amd_extensions(_cert(att_vectors / "trustee" / "test-vcek-invalid-new.der"))
    assert new.hwid is not None and len(new.hwid) == 66  # an OCTET STRING wrapped hwID: not a raw chip id


def test_sim_vlek_extensions(sim_milan: SimAmdPki) -> None:
    ext = amd_extensions(sim_milan.vlek)
    assert ext.product_name == "Milan" and ext.csp_id and ext.hwid is None
    assert certificate_kind(sim_milan.vlek) == "vlek" and certificate_kind(sim_milan.vcek) == "vcek"


@pytest.mark.parametrize(
    ("raw", "ok"),
    [(b"\x02\x01\x00", 0), (b"\x02\x02\x00\xa9", 0xA9), (b"\x02\x01\x7f", 0x7F), (b"\x02\x00", None),
     (b"\x02\x01\xff", None), (b"\x04\x01\x00", None), (b"\x02\x02\x00", None), (b"\x02", None),
     (b"\x02\x81\x01\x05", 5), (b"\x02\x85\x01\x05", None)],
)
def test_der_integer(raw: bytes, ok: int | None) -> None:
    if ok is None:
        with pytest.raises(FormatError) as err:
            snp.der_integer_value(raw, "vcek.blSPL")
        assert err.value.field == "vcek.blSPL"
    else:
        assert snp.der_integer_value(raw, "vcek.blSPL") == ok


@pytest.mark.parametrize("value", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 2**64])
def test_der_integer_round_trip(value: int) -> None:
    assert snp.der_integer_value(snp.der_integer(value), "x") == value


def test_der_ia5() -> None:
    assert snp.der_ia5_value(snp.der_ia5("Milan-B0"), "x") == "Milan-B0"
    long = "x" * 200
    assert snp.der_ia5_value(snp.der_ia5(long), "x") == long
    with pytest.raises(FormatError):
        snp.der_ia5_value(b"\x16\x01\xff", "vcek.productName")
