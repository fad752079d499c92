"""AMD SEV-SNP through `/dev/sev-guest`: the measurement-bound derived key, and reports on kernels without configfs-tsm.

ABI implemented (Linux include/uapi/linux/sev-guest.h; Documentation/virt/coco/sev-guest.rst; AMD SEV-SNP firmware
ABI spec, MSG_KEY_REQ/MSG_KEY_RSP and MSG_REPORT_REQ/MSG_REPORT_RSP; GHCB spec for the certificate table). All
integers little-endian, x86-64 alignment:

    struct snp_guest_request_ioctl {      /* the ioctl argument, 32 bytes */
        u8  msg_version;                  /* 0: 1; 7 bytes padding */
        u64 req_data;                     /* 8: user address of the request struct */
        u64 resp_data;                    /* 16: user address of the response struct */
        u64 exitinfo2;                    /* 24: out, bits 31:0 fw_error, 63:32 vmm_error */
    };
    struct snp_derived_key_req {          /* 32 bytes = MSG_KEY_REQ */
        u32 root_key_select;              /* 0: 0 = VCEK (chip- and TCB-unique), 1 = VMRK */
        u32 rsvd;                         /* 4 */
        u64 guest_field_select;           /* 8: bit 0 GUEST_POLICY, 1 IMAGE_ID, 2 FAMILY_ID, 3 MEASUREMENT,
                                                4 GUEST_SVN, 5 TCB_VERSION */
        u32 vmpl;                         /* 16: VMPL mixed in, >= the caller's VMPL */
        u32 guest_svn;                    /* 20: mixed in when bit 4, <= the guest's SVN */
        u64 tcb_version;                  /* 24: mixed in when bit 5, <= the committed TCB */
    };
    struct snp_derived_key_resp { u8 data[64]; }   /* MSG_KEY_RSP: status u32 @0, reserved, key[32] @0x20 */
    struct snp_report_req { u8 user_data[64]; u32 vmpl; u8 rsvd[28]; }        /* 96 bytes */
    struct snp_report_resp { u8 data[4000]; }  /* MSG_REPORT_RSP: status u32 @0, report_size u32 @4, report @0x20 */
    struct snp_ext_report_req { struct snp_report_req data; u64 certs_address; u32 certs_len; }  /* 112 bytes */

    SNP_GET_REPORT      = _IOWR('S', 0, struct snp_guest_request_ioctl) = 0xC0205300
    SNP_GET_DERIVED_KEY = _IOWR('S', 1, ...)                            = 0xC0205301
    SNP_GET_EXT_REPORT  = _IOWR('S', 2, ...)                            = 0xC0205302
    (_IOWR: direction 3 in bits 31:30, size in bits 29:16, type in 15:8, number in 7:0; asm-generic/ioctl.h)

SNP_GET_EXT_REPORT: certs_len must be a multiple of the page size; when the host's certificates do not fit, the
ioctl fails with vmm_error SNP_GUEST_VMM_ERR_INVALID_LEN (1) and the kernel writes the needed length back into
certs_len. The certificate blob is the GHCB table: 24-byte entries {GUID (RFC 4122 byte order), offset u32,
length u32} ended by an all-zero entry, offsets relative to the start of the blob.

Sealing key: SNP_GET_DERIVED_KEY with root VCEK and GUEST_FIELD_SELECT = GUEST_POLICY | MEASUREMENT | GUEST_SVN
(spec/bootstrap.md §1). MEASUREMENT binds the key to the launch digest (a changed image gets another key, which
Cosmian's FAMILY_ID-only selection, value 4, did not do); GUEST_POLICY keeps a debug-enabled launch of the same
image from deriving the key; GUEST_SVN (0 by default) lets an ID-block author roll keys forward. TCB_VERSION is
not selected: the VCEK root already changes with the platform TCB, and the verifier checks the TCB in the report.
The 32-byte firmware key goes through HKDF-SHA256 with our salt and the caller's label
(attestation.tee.providers.derive_sealing_key).

The ioctl is reached through `GuestRequestFn` (fd, command, request, response_size) -> response: the default,
`kernel_guest_request`, copies the request into C memory, passes the addresses to fcntl.ioctl and copies back the
request (the kernel may update it) and the response. Tests pass a fake firmware with the same contract.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import errno
import fcntl
import os
import struct
import uuid
from collections.abc import Callable
from pathlib import Path

from attestation.tee import Evidence
from attestation.tee.providers import (
    SealingKeyUnavailableError,
    TeeDeviceError,
    TeeUnavailableError,
    derive_sealing_key,
    pad_report_data,
)

SEV_GUEST_DEVICE = "dev/sev-guest"

MSG_VERSION = 1
GUEST_REQUEST_IOCTL_SIZE = 32
REPORT_REQ_SIZE = 96
EXT_REPORT_REQ_SIZE = 112
DERIVED_KEY_REQ_SIZE = 32
REPORT_RESP_SIZE = 4000
DERIVED_KEY_RESP_SIZE = 64
MSG_RSP_HEADER_SIZE = 0x20
DERIVED_KEY_SIZE = 32
PAGE_SIZE = 4096
CERTS_BUFFER_SIZE = 4 * PAGE_SIZE  # the kernel's SEV_FW_BLOB_MAX_SIZE (16 KiB)
CERT_TABLE_ENTRY_SIZE = 24
VMM_ERR_INVALID_LEN = 1
VMM_ERR_BUSY = 2


def _iowr(ioc_type: str, number: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord(ioc_type) << 8) | number


SNP_GET_REPORT = _iowr("S", 0, GUEST_REQUEST_IOCTL_SIZE)
SNP_GET_DERIVED_KEY = _iowr("S", 1, GUEST_REQUEST_IOCTL_SIZE)
SNP_GET_EXT_REPORT = _iowr("S", 2, GUEST_REQUEST_IOCTL_SIZE)


class GuestField(enum.IntFlag):
    """GUEST_FIELD_SELECT bits of MSG_KEY_REQ."""

    GUEST_POLICY = 1 << 0
    IMAGE_ID = 1 << 1
    FAMILY_ID = 1 << 2
    MEASUREMENT = 1 << 3
    GUEST_SVN = 1 << 4
    TCB_VERSION = 1 << 5


class RootKey(enum.IntEnum):
    VCEK = 0
    VMRK = 1


DEFAULT_GUEST_FIELDS = GuestField.GUEST_POLICY | GuestField.MEASUREMENT | GuestField.GUEST_SVN

# Certificate table GUIDs (spec/attestation.md §3.5).
CERT_GUIDS = {
    uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"): "vcek",
    uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"): "vlek",
    uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"): "ask",
    uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"): "ark",
}


class SevGuestError(TeeDeviceError):
    """An SNP guest request failed; `fw_error` / `vmm_error` come from exitinfo2 (fw_error 0xFFFFFFFF: none)."""

    def __init__(self, command: int, errno_: int, fw_error: int, vmm_error: int, detail: str = "") -> None:
        name = errno.errorcode.get(errno_, str(errno_))
        super().__init__(
            f"/dev/sev-guest ioctl {command:#x} failed: {name}, fw_error={fw_error:#x}, vmm_error={vmm_error:#x}"
            + (f" ({detail})" if detail else "")
        )
        self.command = command
        self.errno = errno_
        self.fw_error = fw_error
        self.vmm_error = vmm_error


GuestRequestFn = Callable[[int, int, bytearray, int], bytes]
"""(fd, ioctl command, request bytes (updated in place by the call), response size) -> response bytes.
Raises SevGuestError when the ioctl fails."""


def pack_guest_request_ioctl(req_address: int, resp_address: int) -> bytes:
    """struct snp_guest_request_ioctl with exitinfo2 = 0."""
    return struct.pack("<B7xQQQ", MSG_VERSION, req_address, resp_address, 0)


def kernel_guest_request(fd: int, command: int, request: bytearray, response_size: int) -> bytes:
    """The real ioctl on an open /dev/sev-guest."""
    req_buf = ctypes.create_string_buffer(bytes(request), len(request))
    resp_buf = ctypes.create_string_buffer(response_size)
    arg = bytearray(pack_guest_request_ioctl(ctypes.addressof(req_buf), ctypes.addressof(resp_buf)))
    try:
        fcntl.ioctl(fd, command, arg, True)
    except OSError as exc:
        fw_error, vmm_error = struct.unpack_from("<II", arg, 24)
        raise SevGuestError(command, exc.errno or 0, fw_error, vmm_error, exc.strerror or "") from exc
    finally:
        request[:] = req_buf.raw  # the kernel may have written into the request (certs_len)
    return resp_buf.raw


def build_derived_key_request(
    *,
    guest_field_select: int = DEFAULT_GUEST_FIELDS,
    root_key_select: int = RootKey.VCEK,
    vmpl: int = 0,
    guest_svn: int = 0,
    tcb_version: int = 0,
) -> bytes:
    """struct snp_derived_key_req (32 bytes)."""
    if guest_field_select & ~0x3F:
        raise ValueError(f"guest_field_select {guest_field_select:#x} has bits beyond TCB_VERSION (bit 5)")
    if not 0 <= vmpl <= 3:
        raise ValueError(f"vmpl {vmpl} outside 0..3")
    return struct.pack("<IIQIIQ", int(root_key_select), 0, int(guest_field_select), vmpl, guest_svn, tcb_version)


def build_report_request(report_data: bytes, vmpl: int = 0) -> bytes:
    """struct snp_report_req (96 bytes)."""
    if not 0 <= vmpl <= 3:
        raise ValueError(f"vmpl {vmpl} outside 0..3")
    return pad_report_data(report_data) + struct.pack("<I28x", vmpl)


def build_ext_report_request(report_data: bytes, vmpl: int, certs_address: int, certs_len: int) -> bytes:
    """struct snp_ext_report_req (112 bytes: 96 + u64 + u32 + 4 bytes tail padding)."""
    return build_report_request(report_data, vmpl) + struct.pack("<QI4x", certs_address, certs_len)


def parse_derived_key_response(response: bytes) -> bytes:
    if len(response) < MSG_RSP_HEADER_SIZE + DERIVED_KEY_SIZE:
        raise TeeDeviceError(f"derived key response is {len(response)} bytes, expected 64")
    (status,) = struct.unpack_from("<I", response, 0)
    if status != 0:
        raise TeeDeviceError(f"SNP firmware refused the key request: MSG_KEY_RSP status {status:#x}")
    key = response[MSG_RSP_HEADER_SIZE : MSG_RSP_HEADER_SIZE + DERIVED_KEY_SIZE]
    if key == bytes(DERIVED_KEY_SIZE):
        raise TeeDeviceError("SNP firmware returned an all-zero derived key")
    return key


def parse_report_response(response: bytes) -> bytes:
    if len(response) < MSG_RSP_HEADER_SIZE:
        raise TeeDeviceError(f"report response is {len(response)} bytes")
    status, size = struct.unpack_from("<II", response, 0)
    if status != 0:
        raise TeeDeviceError(f"SNP firmware refused the report request: MSG_REPORT_RSP status {status:#x}")
    if size == 0 or MSG_RSP_HEADER_SIZE + size > len(response):
        raise TeeDeviceError(f"MSG_REPORT_RSP report_size {size} does not fit the {len(response)}-byte response")
    return response[MSG_RSP_HEADER_SIZE : MSG_RSP_HEADER_SIZE + size]


@dataclasses.dataclass(frozen=True)
class CertTableEntry:
    guid: uuid.UUID
    data: bytes

    @property
    def name(self) -> str | None:
        """'vcek' | 'vlek' | 'ask' | 'ark', or None for a GUID we do not know."""
        return CERT_GUIDS.get(self.guid)


def parse_certificate_table(blob: bytes) -> tuple[list[CertTableEntry], int]:
    """The entries of a GHCB certificate table and the length of the blob they span (0 when empty)."""
    raw_entries: list[tuple[uuid.UUID, int, int]] = []
    pos = 0
    while True:
        if pos + CERT_TABLE_ENTRY_SIZE > len(blob):
            raise TeeDeviceError("certificate table: no terminating all-zero entry")
        raw = blob[pos : pos + CERT_TABLE_ENTRY_SIZE]
        pos += CERT_TABLE_ENTRY_SIZE
        if raw == bytes(CERT_TABLE_ENTRY_SIZE):
            break
        offset, length = struct.unpack_from("<II", raw, 16)
        raw_entries.append((uuid.UUID(bytes=raw[:16]), offset, length))
    entries: list[CertTableEntry] = []
    end = pos
    for guid, offset, length in raw_entries:
        if offset < pos or offset + length > len(blob):
            raise TeeDeviceError(f"certificate table: entry {guid} [{offset}, +{length}) outside the data area")
        entries.append(CertTableEntry(guid, blob[offset : offset + length]))
        end = max(end, offset + length)
    return entries, (end if entries else 0)


def sev_guest_present(root: Path) -> bool:
    return (root / SEV_GUEST_DEVICE).exists()


class SevGuest:
    """SEV-SNP provider over /dev/sev-guest: `quote` via SNP_GET_EXT_REPORT, `sealing_key` via SNP_GET_DERIVED_KEY.

    vmpl: VMPL requested in reports and mixed into derived keys (must be >= the VMPL the guest runs at).
    guest_fields / guest_svn / tcb_version / root_key: the MSG_KEY_REQ inputs (defaults in the module docstring).
    """

    kind = "sev-snp"

    def __init__(
        self,
        root: Path = Path("/"),
        *,
        ioctl: GuestRequestFn | None = None,
        vmpl: int = 0,
        guest_fields: int = DEFAULT_GUEST_FIELDS,
        guest_svn: int = 0,
        tcb_version: int = 0,
        root_key: RootKey = RootKey.VCEK,
    ) -> None:
        self.device = root / SEV_GUEST_DEVICE
        if not self.device.exists():
            raise TeeUnavailableError(f"{self.device} not found (SEV-SNP guest driver sev-guest not loaded?)")
        if not guest_fields & GuestField.MEASUREMENT:
            raise ValueError("guest_fields must include MEASUREMENT: a sealing key must be bound to the image")
        self._ioctl: GuestRequestFn = ioctl or kernel_guest_request
        self.vmpl = vmpl
        self._key_request = build_derived_key_request(
            guest_field_select=guest_fields,
            root_key_select=root_key,
            vmpl=vmpl,
            guest_svn=guest_svn,
            tcb_version=tcb_version,
        )

    # -- TeeProvider ---------------------------------------------------------------------------------------------

    def quote(self, report_data: bytes) -> Evidence:
        report, certs = self.extended_report(report_data)
        return Evidence(kind=self.kind, data=report, certificates=certs)

    def sealing_key(self, label: bytes) -> bytes:
        try:
            firmware_key = self.derived_key()
        except TeeUnavailableError as exc:
            raise SealingKeyUnavailableError(str(exc)) from exc
        return derive_sealing_key(firmware_key, label)

    # -- guest requests ------------------------------------------------------------------------------------------

    def derived_key(self) -> bytes:
        """The raw 32-byte firmware key (MSG_KEY_RSP); callers want `sealing_key`."""
        request = bytearray(self._key_request)
        return parse_derived_key_response(self._request(SNP_GET_DERIVED_KEY, request, DERIVED_KEY_RESP_SIZE))

    def report(self, report_data: bytes) -> bytes:
        """SNP_GET_REPORT: the attestation report alone."""
        request = bytearray(build_report_request(report_data, self.vmpl))
        return parse_report_response(self._request(SNP_GET_REPORT, request, REPORT_RESP_SIZE))

    def extended_report(self, report_data: bytes) -> tuple[bytes, bytes | None]:
        """SNP_GET_EXT_REPORT: the report and the host's certificate table (None when the host supplies none)."""
        pad_report_data(report_data)  # refuse > 64 bytes before touching the device
        size = CERTS_BUFFER_SIZE
        for _ in range(2):
            certs = ctypes.create_string_buffer(size)
            request = bytearray(build_ext_report_request(report_data, self.vmpl, ctypes.addressof(certs), size))
            try:
                response = self._request(SNP_GET_EXT_REPORT, request, REPORT_RESP_SIZE)
            except SevGuestError as exc:
                needed = struct.unpack_from("<I", request, 104)[0]
                if exc.vmm_error == VMM_ERR_INVALID_LEN and needed > size:
                    size = needed
                    continue
                raise
            report = parse_report_response(response)
            blob = certs.raw
            entries, length = parse_certificate_table(blob)
            return report, (blob[:length] if entries else None)
        raise TeeDeviceError(f"SNP_GET_EXT_REPORT: the host asked twice for a larger certificate buffer ({size})")

    def _request(self, command: int, request: bytearray, response_size: int) -> bytes:
        try:
            fd = os.open(self.device, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise TeeUnavailableError(f"{self.device} not found") from exc
        except PermissionError as exc:
            raise TeeUnavailableError(f"{self.device}: not allowed to open ({exc.strerror})") from exc
        except OSError as exc:
            raise TeeDeviceError(f"open {self.device}: {exc.strerror or exc}") from exc
        try:
            response = self._ioctl(fd, command, request, response_size)
        finally:
            os.close(fd)
        if len(response) != response_size:
            raise TeeDeviceError(f"ioctl {command:#x}: {len(response)}-byte response, expected {response_size}")
        return response
