"""Stand-ins for the kernel and Gramine behind the providers' seams, over a real directory tree under tmp_path.

- `FakeTsmKernel` behaves like drivers/virt/coco/tsm.c plus a TDX or SNP driver: mkdir in the report group creates
  an entry with its attributes, writes to `inblob`/`privlevel` are validated and bump `generation`, reading
  `outblob` produces a report *from the inblob written* (TDX quote v4 shape or SNP report shape), rmdir deletes
  the entry. It can simulate a concurrent writer (another inblob written between ours and our read).
- `FakeSnpFirmware` answers /dev/sev-guest requests: a derived key = HMAC(chip secret, the selected guest fields),
  so it changes with the MEASUREMENT only when the request selects it; reports carry the request's user data.
- `FakeGramine` produces a quote from the user_report_data written; the other files are plain files.

Every fake checks the request it gets against the ABI (sizes, ranges) and fails like the kernel would.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import hashlib
import hmac
import os
import shutil
import struct
import uuid
from pathlib import Path

from attestation.tee.configfs_tsm import TSM_REPORT_DIR
from attestation.tee.gramine import ATTESTATION_DIR
from attestation.tee.providers import OsFileOps
from attestation.tee.sev_guest import (
    DERIVED_KEY_REQ_SIZE,
    DERIVED_KEY_RESP_SIZE,
    EXT_REPORT_REQ_SIZE,
    PAGE_SIZE,
    REPORT_REQ_SIZE,
    REPORT_RESP_SIZE,
    SEV_GUEST_DEVICE,
    SNP_GET_DERIVED_KEY,
    SNP_GET_EXT_REPORT,
    SNP_GET_REPORT,
    VMM_ERR_INVALID_LEN,
    SevGuestError,
)

TDX_REPORTDATA_OFFSET = 48 + 0x208  # quote header + TD quote body offset of REPORTDATA (spec/attestation.md §2)
SNP_REPORT_SIZE = 0x4A0
SNP_VMPL_OFFSET = 0x30
SNP_REPORTDATA_OFFSET = 0x50
SGX_REPORTDATA_OFFSET = 48 + 320  # quote header + report body offset of REPORTDATA (§1)


def tdx_quote(report_data: bytes) -> bytes:
    header = struct.pack("<HHI", 4, 2, 0x81).ljust(48, b"\0")
    body = bytearray(584)
    body[0x208:0x248] = report_data
    return header + bytes(body) + struct.pack("<I", 0)


def snp_report(report_data: bytes, vmpl: int, measurement: bytes = bytes(48)) -> bytes:
    report = bytearray(SNP_REPORT_SIZE)
    struct.pack_into("<I", report, 0, 2)
    struct.pack_into("<I", report, SNP_VMPL_OFFSET, vmpl)
    report[SNP_REPORTDATA_OFFSET : SNP_REPORTDATA_OFFSET + 64] = report_data
    report[0x90:0xC0] = measurement
    return bytes(report)


def sgx_quote(report_data: bytes) -> bytes:
    header = struct.pack("<HHI", 3, 2, 0).ljust(48, b"\0")
    body = bytearray(384)
    body[320:384] = report_data
    return header + bytes(body) + struct.pack("<I", 0)


def cert_table(certs: list[tuple[str, bytes]]) -> bytes:
    """A GHCB certificate table: entries, the zero terminator, then the certificates."""
    data_start = 24 * (len(certs) + 1)
    table = b""
    blobs = b""
    for guid, cert in certs:
        table += uuid.UUID(guid).bytes + struct.pack("<II", data_start + len(blobs), len(cert))
        blobs += cert
    return table + bytes(24) + blobs


@dataclasses.dataclass
class _Entry:
    generation: int = 0
    inblob: bytes | None = None
    privlevel: int = 0


class FakeTsmKernel(OsFileOps):
    def __init__(
        self,
        root: Path,
        provider: str | None = "tdx_guest",
        *,
        privlevel_floor: int = 0,
        auxblob: bytes = b"",
        interfere: int = 0,
        mkdir_errno: int | None = None,
    ) -> None:
        self.base = root / TSM_REPORT_DIR
        self.base.mkdir(parents=True)
        self.provider = provider  # None: no driver registered (mkdir -> ENXIO)
        self.privlevel_floor = privlevel_floor
        self.auxblob = auxblob
        self.interfere = interfere  # how many outblob reads see another writer's inblob first
        self.mkdir_errno = mkdir_errno
        self.entries: dict[Path, _Entry] = {}
        self.created: list[str] = []
        self.removed: list[str] = []
        self.writes: list[tuple[str, bytes]] = []
        self.reports = 0

    @property
    def snp(self) -> bool:
        return self.provider == "sev_guest"

    def mkdir(self, path: Path) -> None:
        if path.parent != self.base:
            return super().mkdir(path)
        if self.mkdir_errno is not None:
            raise OSError(self.mkdir_errno, os.strerror(self.mkdir_errno), str(path))
        if self.provider is None:
            raise OSError(errno.ENXIO, os.strerror(errno.ENXIO), str(path))
        super().mkdir(path)
        attrs = ["provider", "generation", "inblob", "outblob", "auxblob"]
        if self.snp:
            attrs += ["privlevel", "privlevel_floor"]
        for name in attrs:
            (path / name).touch()
        self.entries[path] = _Entry()
        self.created.append(path.name)

    def rmdir(self, path: Path) -> None:
        if path not in self.entries:
            return super().rmdir(path)
        del self.entries[path]
        shutil.rmtree(path)
        self.removed.append(path.name)

    def write(self, path: Path, data: bytes) -> None:
        entry = self.entries.get(path.parent)
        if entry is None:
            return super().write(path, data)
        self.writes.append((path.name, bytes(data)))
        if path.name == "inblob":
            if len(data) > 64:
                raise OSError(errno.EFBIG, "inblob takes at most 64 bytes", str(path))
            entry.inblob = bytes(data)
        elif path.name == "privlevel" and self.snp:
            value = int(data.decode())
            if not self.privlevel_floor <= value <= 3:
                raise OSError(errno.EINVAL, "privlevel out of range", str(path))
            entry.privlevel = value
        else:
            raise OSError(errno.EACCES, "read-only attribute", str(path))
        entry.generation += 1

    def read(self, path: Path) -> bytes:
        entry = self.entries.get(path.parent)
        if entry is None:
            return super().read(path)
        name = path.name
        if name == "provider":
            return f"{self.provider}\n".encode()
        if name == "generation":
            return f"{entry.generation}\n".encode()
        if name == "privlevel_floor" and self.snp:
            return f"{self.privlevel_floor}\n".encode()
        if name in ("outblob", "auxblob"):
            if entry.inblob is None:
                raise OSError(errno.EINVAL, "no inblob written", str(path))
            if name == "outblob" and self.interfere:
                self.interfere -= 1
                entry.inblob = b"\xee" * 64  # somebody else's report data, written through our entry
                entry.generation += 1
            if name == "auxblob":
                return self.auxblob
            self.reports += 1
            if self.snp:
                return snp_report(entry.inblob.ljust(64, b"\0"), max(entry.privlevel, self.privlevel_floor))
            if len(entry.inblob) != 64:  # tdx_guest refuses anything but 64 bytes
                raise OSError(errno.EINVAL, "TDX inblob must be 64 bytes", str(path))
            return tdx_quote(entry.inblob)
        raise OSError(errno.EACCES, "write-only attribute", str(path))


class FakeSnpFirmware:
    """The /dev/sev-guest ioctl seam: (fd, command, request, response_size) -> response."""

    def __init__(
        self,
        root: Path,
        *,
        chip_secret: bytes = b"chip-1",
        measurement: bytes = b"\x11" * 48,
        policy: int = 0x30000,
        family_id: bytes = bytes(16),
        image_id: bytes = bytes(16),
        guest_svn: int = 0,
        current_vmpl: int = 0,
        certs: bytes | None = None,
        create_device: bool = True,
    ) -> None:
        self.device = root / SEV_GUEST_DEVICE
        if create_device:
            self.device.parent.mkdir(parents=True, exist_ok=True)
            self.device.touch()
        self.chip_secret = chip_secret
        self.measurement = measurement
        self.policy = policy
        self.family_id = family_id
        self.image_id = image_id
        self.guest_svn = guest_svn
        self.current_vmpl = current_vmpl
        self.certs = certs
        self.calls: list[tuple[int, bytes]] = []

    def __call__(self, fd: int, command: int, request: bytearray, response_size: int) -> bytes:
        assert os.fstat(fd).st_ino == self.device.stat().st_ino, "the provider must open /dev/sev-guest"
        self.calls.append((command, bytes(request)))
        if command == SNP_GET_DERIVED_KEY:
            assert len(request) == DERIVED_KEY_REQ_SIZE and response_size == DERIVED_KEY_RESP_SIZE
            return struct.pack("<I28x", 0) + self._derive(bytes(request))
        if command == SNP_GET_REPORT:
            assert len(request) == REPORT_REQ_SIZE and response_size == REPORT_RESP_SIZE
            return self._report_response(bytes(request[:REPORT_REQ_SIZE]))
        if command == SNP_GET_EXT_REPORT:
            assert len(request) == EXT_REPORT_REQ_SIZE and response_size == REPORT_RESP_SIZE
            address, length = struct.unpack_from("<QI", request, REPORT_REQ_SIZE)
            if length % PAGE_SIZE:
                raise SevGuestError(command, errno.EINVAL, 0xFFFFFFFF, 0, "certs_len not page aligned")
            if self.certs is not None:
                needed = -(-len(self.certs) // PAGE_SIZE) * PAGE_SIZE
                if length < needed:
                    struct.pack_into("<I", request, REPORT_REQ_SIZE + 8, needed)
                    raise SevGuestError(command, errno.ENOSPC, 0, VMM_ERR_INVALID_LEN)
                ctypes.memmove(address, self.certs, len(self.certs))  # as the kernel's copy to certs_address
            return self._report_response(bytes(request[:REPORT_REQ_SIZE]))
        raise SevGuestError(command, errno.ENOTTY, 0xFFFFFFFF, 0)

    def _derive(self, request: bytes) -> bytes:
        root_key, reserved, fields, vmpl, guest_svn, tcb = struct.unpack("<IIQIIQ", request)
        if reserved or fields >> 6 or vmpl < self.current_vmpl or vmpl > 3 or guest_svn > self.guest_svn:
            raise SevGuestError(SNP_GET_DERIVED_KEY, errno.EIO, 0x16, 0, "invalid MSG_KEY_REQ")
        mix = struct.pack("<IQI", root_key, fields, vmpl)
        selected = [
            struct.pack("<Q", self.policy),
            self.image_id,
            self.family_id,
            self.measurement,
            struct.pack("<I", guest_svn),
            struct.pack("<Q", tcb),
        ]
        for bit, value in enumerate(selected):
            if fields & (1 << bit):
                mix += value
        return hmac.new(self.chip_secret, mix, hashlib.sha256).digest()

    def _report_response(self, request: bytes) -> bytes:
        (vmpl,) = struct.unpack_from("<I", request, 64)
        if vmpl < self.current_vmpl or vmpl > 3 or request[68:96] != bytes(28):
            raise SevGuestError(SNP_GET_REPORT, errno.EIO, 0x16, 0, "invalid MSG_REPORT_REQ")
        report = snp_report(request[:64], vmpl, self.measurement)
        return struct.pack("<II24x", 0, len(report)).ljust(32, b"\0") + report.ljust(REPORT_RESP_SIZE - 32, b"\0")


class FakeGramine(OsFileOps):
    def __init__(
        self,
        root: Path,
        *,
        attestation_type: str = "dcap",
        mrenclave_key: bytes | None = b"E" * 16,
        mrsigner_key: bytes = b"S" * 16,
    ) -> None:
        self.dir = root / ATTESTATION_DIR
        (self.dir / "keys").mkdir(parents=True)
        (self.dir / "attestation_type").write_text(attestation_type)
        (self.dir / "user_report_data").touch()
        (self.dir / "quote").touch()
        if mrenclave_key is not None:
            (self.dir / "keys" / "_sgx_mrenclave").write_bytes(mrenclave_key)
        (self.dir / "keys" / "_sgx_mrsigner").write_bytes(mrsigner_key)
        self.user_report_data: bytes | None = None
        self.writes: list[bytes] = []

    def write(self, path: Path, data: bytes) -> None:
        if path != self.dir / "user_report_data":
            return super().write(path, data)
        if len(data) != 64:
            raise OSError(errno.EINVAL, "user_report_data takes 64 bytes", str(path))
        self.writes.append(bytes(data))
        self.user_report_data = bytes(data)

    def read(self, path: Path) -> bytes:
        if path == self.dir / "quote":
            if self.user_report_data is None:
                raise OSError(errno.EACCES, "write user_report_data first", str(path))
            return sgx_quote(self.user_report_data)
        return super().read(path)
