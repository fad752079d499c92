"""/dev/sev-guest: request layouts from the uapi header, the derived sealing key, reports, the certificate table."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from attestation.tee.providers import SEALING_SALT, SealingKeyUnavailableError, TeeDeviceError, TeeUnavailableError
from attestation.tee.sev_guest import (
    SNP_GET_DERIVED_KEY,
    SNP_GET_EXT_REPORT,
    SNP_GET_REPORT,
    GuestField,
    SevGuest,
    SevGuestError,
    build_derived_key_request,
    build_ext_report_request,
    build_report_request,
    kernel_guest_request,
    pack_guest_request_ioctl,
    parse_certificate_table,
    parse_derived_key_response,
    parse_report_response,
)
from tests.attestation.tee.fakes import (
    SNP_REPORT_SIZE,
    SNP_REPORTDATA_OFFSET,
    SNP_VMPL_OFFSET,
    FakeSnpFirmware,
    cert_table,
)

VCEK = "63da758d-e664-4564-adc5-f4b93be8accd"
ASK = "4ab7b379-bbac-4fe4-a02f-05aef327c782"
ARK = "c0b406a4-a803-4952-9743-3fb6014cd0ae"
LABEL = b"kms-bootstrap/v1"


def test_ioctl_numbers() -> None:
    # _IOWR('S', nr, struct snp_guest_request_ioctl): dir 3 << 30 | sizeof 32 << 16 | 'S' << 8 | nr
    assert (SNP_GET_REPORT, SNP_GET_DERIVED_KEY, SNP_GET_EXT_REPORT) == (0xC0205300, 0xC0205301, 0xC0205302)


def test_guest_request_ioctl_layout() -> None:
    arg = pack_guest_request_ioctl(0x1122334455667788, 0x99AABBCCDDEEFF00)
    assert arg == (
        b"\x01" + bytes(7) + bytes.fromhex("8877665544332211") + bytes.fromhex("00ffeeddccbbaa99") + bytes(8)
    )


def test_default_derived_key_request_selects_policy_measurement_and_svn() -> None:
    request = build_derived_key_request()
    assert request == bytes.fromhex(
        "00000000"  # root_key_select: VCEK
        "00000000"  # rsvd
        "1900000000000000"  # guest_field_select: GUEST_POLICY | MEASUREMENT | GUEST_SVN = 0x19
        "00000000"  # vmpl
        "00000000"  # guest_svn
        "0000000000000000"  # tcb_version
    )
    fields = struct.unpack_from("<Q", request, 8)[0]
    assert fields & GuestField.MEASUREMENT and fields & GuestField.GUEST_POLICY
    assert not fields & GuestField.FAMILY_ID  # Cosmian's 4 alone bound nothing of the image


def test_derived_key_request_fields_at_their_offsets() -> None:
    request = build_derived_key_request(
        guest_field_select=0x3F, root_key_select=1, vmpl=3, guest_svn=0x01020304, tcb_version=0x0807060504030201
    )
    assert struct.unpack("<IIQIIQ", request) == (1, 0, 0x3F, 3, 0x01020304, 0x0807060504030201)
    with pytest.raises(ValueError, match="bits beyond"):
        build_derived_key_request(guest_field_select=0x40)
    with pytest.raises(ValueError, match="vmpl"):
        build_derived_key_request(vmpl=4)


def test_report_request_layouts() -> None:
    request = build_report_request(b"abc", vmpl=1)
    assert len(request) == 96
    assert request[:64] == b"abc" + bytes(61)
    assert request[64:68] == b"\x01\x00\x00\x00" and request[68:] == bytes(28)
    ext = build_ext_report_request(b"abc", 1, 0xDEADBEEF, 0x4000)
    assert len(ext) == 112
    assert ext[:96] == request
    assert struct.unpack_from("<QI", ext, 96) == (0xDEADBEEF, 0x4000)
    with pytest.raises(ValueError):
        build_report_request(bytes(65))


def test_sealing_key_is_hkdf_of_the_firmware_key(tmp_path: Path) -> None:
    firmware = FakeSnpFirmware(tmp_path)
    guest = SevGuest(tmp_path, ioctl=firmware)

    key = guest.sealing_key(LABEL)

    firmware_key = firmware._derive(build_derived_key_request())
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=SEALING_SALT, info=LABEL).derive(firmware_key)
    assert key == expected
    assert firmware.calls == [(SNP_GET_DERIVED_KEY, build_derived_key_request())]


def test_sealing_key_stable_per_label_and_bound_to_measurement_policy_and_chip(tmp_path: Path) -> None:
    def key(name: str, label: bytes = LABEL, **firmware_args: object) -> bytes:
        root = tmp_path / name
        return SevGuest(root, ioctl=FakeSnpFirmware(root, **firmware_args)).sealing_key(label)  # type: ignore[arg-type]

    base = key("base")
    assert base == key("same-again")
    assert len(base) == 32
    assert key("label", b"config-seal") != base
    assert key("measurement", measurement=b"\x22" * 48) != base  # another image
    assert key("debug", policy=0x30000 | (1 << 19)) != base  # the same image launched with DEBUG
    assert key("chip", chip_secret=b"chip-2") != base  # another machine
    # Not selected, so not mixed in: another FAMILY_ID (ID block) does not change the key.
    assert key("family", family_id=b"\x01" * 16) == base


def test_sealing_key_refuses_a_selection_without_measurement(tmp_path: Path) -> None:
    FakeSnpFirmware(tmp_path)
    with pytest.raises(ValueError, match="MEASUREMENT"):
        SevGuest(tmp_path, guest_fields=GuestField.FAMILY_ID)


def test_sealing_key_firmware_error_names_the_codes(tmp_path: Path) -> None:
    firmware = FakeSnpFirmware(tmp_path, current_vmpl=1)  # we ask for VMPL 0 from VMPL 1: refused
    with pytest.raises(SevGuestError, match=r"EIO, fw_error=0x16, vmm_error=0x0") as info:
        SevGuest(tmp_path, ioctl=firmware).sealing_key(LABEL)
    assert info.value.fw_error == 0x16
    assert isinstance(info.value, TeeDeviceError)


def test_sealing_key_label_rules(tmp_path: Path) -> None:
    guest = SevGuest(tmp_path, ioctl=FakeSnpFirmware(tmp_path))
    with pytest.raises(ValueError, match="empty"):
        guest.sealing_key(b"")
    with pytest.raises(TypeError):
        guest.sealing_key("kms-bootstrap/v1")  # type: ignore[arg-type]


def test_derived_key_response_checks() -> None:
    key = bytes(range(1, 33))
    assert parse_derived_key_response(bytes(32) + key) == key
    with pytest.raises(TeeDeviceError, match="status 0x16"):
        parse_derived_key_response(struct.pack("<I", 0x16).ljust(32, b"\0") + key)
    with pytest.raises(TeeDeviceError, match="all-zero"):
        parse_derived_key_response(bytes(64))
    with pytest.raises(TeeDeviceError, match="expected 64"):
        parse_derived_key_response(bytes(40))


def test_report_response_checks() -> None:
    report = b"\x07" * SNP_REPORT_SIZE
    response = struct.pack("<II", 0, SNP_REPORT_SIZE).ljust(32, b"\0") + report
    assert parse_report_response(response.ljust(4000, b"\0")) == report
    with pytest.raises(TeeDeviceError, match="status 0x1"):
        parse_report_response(struct.pack("<II", 1, SNP_REPORT_SIZE).ljust(4000, b"\0"))
    with pytest.raises(TeeDeviceError, match="does not fit"):
        parse_report_response(struct.pack("<II", 0, 4000).ljust(4000, b"\0"))


def test_report_without_certificates(tmp_path: Path) -> None:
    firmware = FakeSnpFirmware(tmp_path)
    guest = SevGuest(tmp_path, ioctl=firmware, vmpl=1)

    report = guest.report(b"nonce")
    assert len(report) == SNP_REPORT_SIZE
    assert report[SNP_REPORTDATA_OFFSET : SNP_REPORTDATA_OFFSET + 64] == b"nonce" + bytes(59)
    assert report[SNP_VMPL_OFFSET] == 1

    evidence = guest.quote(b"nonce")
    assert evidence.kind == "sev-snp"
    assert evidence.data == report
    assert evidence.certificates is None  # the host supplied no certificates
    assert [command for command, _ in firmware.calls] == [SNP_GET_REPORT, SNP_GET_EXT_REPORT]


def test_extended_report_returns_the_certificate_table(tmp_path: Path) -> None:
    table = cert_table([(VCEK, b"V" * 1200), (ASK, b"A" * 1500), (ARK, b"R" * 1500)])
    firmware = FakeSnpFirmware(tmp_path, certs=table)

    evidence = SevGuest(tmp_path, ioctl=firmware).quote(b"rd")

    assert evidence.certificates == table  # trimmed to the table's extent, not the 16 KiB buffer
    entries, length = parse_certificate_table(evidence.certificates)
    assert [(e.name, e.data[:1], len(e.data)) for e in entries] == [
        ("vcek", b"V", 1200),
        ("ask", b"A", 1500),
        ("ark", b"R", 1500),
    ]
    assert length == len(table)
    assert evidence.data[SNP_REPORTDATA_OFFSET : SNP_REPORTDATA_OFFSET + 2] == b"rd"


def test_extended_report_grows_the_buffer_when_the_host_asks(tmp_path: Path) -> None:
    table = cert_table([(VCEK, b"V" * 20000)])  # needs 5 pages, more than the first 16 KiB buffer
    firmware = FakeSnpFirmware(tmp_path, certs=table)

    evidence = SevGuest(tmp_path, ioctl=firmware).quote(b"rd")

    assert evidence.certificates == table
    lengths = [struct.unpack_from("<I", request, 104)[0] for _, request in firmware.calls]
    assert lengths == [0x4000, 0x5000]


def test_certificate_table_errors() -> None:
    with pytest.raises(TeeDeviceError, match="terminating"):
        parse_certificate_table(b"\x01" * 30)
    bad = bytearray(cert_table([(VCEK, b"V" * 10)]))
    struct.pack_into("<I", bad, 16, 4)  # offset inside the table itself
    with pytest.raises(TeeDeviceError, match="outside"):
        parse_certificate_table(bytes(bad))
    assert parse_certificate_table(bytes(48)) == ([], 0)


def test_report_data_longer_than_64_bytes_is_refused(tmp_path: Path) -> None:
    firmware = FakeSnpFirmware(tmp_path)
    with pytest.raises(ValueError, match="at most 64"):
        SevGuest(tmp_path, ioctl=firmware).quote(bytes(65))
    assert firmware.calls == []


def test_missing_device(tmp_path: Path) -> None:
    with pytest.raises(TeeUnavailableError, match="dev/sev-guest not found"):
        SevGuest(tmp_path)


def test_device_vanishing_makes_sealing_key_unavailable(tmp_path: Path) -> None:
    firmware = FakeSnpFirmware(tmp_path)
    guest = SevGuest(tmp_path, ioctl=firmware)
    firmware.device.unlink()
    with pytest.raises(SealingKeyUnavailableError, match="not found"):
        guest.sealing_key(LABEL)


def test_real_ioctl_path_reports_errors_from_the_kernel(tmp_path: Path) -> None:
    # The real transport on a regular file: the kernel answers ENOTTY, which must come back as SevGuestError.
    path = tmp_path / "not-a-device"
    path.write_bytes(b"")
    request = bytearray(build_derived_key_request())
    with path.open("rb+") as handle, pytest.raises(SevGuestError) as info:
        kernel_guest_request(handle.fileno(), SNP_GET_DERIVED_KEY, request, 64)
    assert info.value.errno == errno.ENOTTY
    assert request == build_derived_key_request()  # copied back unchanged
