"""TDX and SEV-SNP evidence through the Linux configfs-tsm report interface.

ABI implemented (Linux Documentation/ABI/testing/configfs-tsm, later renamed configfs-tsm-report, introduced in
v6.7 by "configfs-tsm: Introduce a shared ABI for attestation reports"; drivers/virt/coco/tsm.c):

- `/sys/kernel/config/tsm/report/` is a configfs group; `mkdir $name` creates a report entry holding the attributes
  below, `rmdir $name` deletes it. mkdir fails with ENXIO while no TSM driver is registered.
- `provider` (RO, text + newline): the driver that formats `outblob`: `tdx_guest` (Intel TDX: outblob is a TDX
  quote, v4 or v5) or `sev_guest` (AMD SEV-SNP: outblob is the 1184-byte attestation report).
- `inblob` (WO, binary, at most 64 bytes, TSM_INBLOB_MAX): the user data placed in the report's REPORTDATA. The
  tdx_guest driver requires exactly 64 bytes, so we always write 64, zero-padded, in one write(2).
- `privlevel` (WO, decimal text, only on drivers with privilege levels, i.e. sev_guest): the SNP VMPL to request,
  between `privlevel_floor` (RO, decimal) and TSM_PRIVLEVEL_MAX = 3.
- `outblob` (RO, binary, at most 32 KiB): reading it makes the kernel generate the report for the current inputs
  (or return the cached one when no input changed since).
- `auxblob` (RO, binary, v6.7): optional supplemental data; for `sev_guest` the certificate table of the extended
  guest request (GHCB spec v2.03 §4.1.8.1 MSG_REPORT_REQ: 24-byte entries {GUID, offset u32, length u32} ended by a
  zero entry, then the certificates, VCEK/VLEK, ASK, ARK, as supplied by the host); empty when the host has none.
- `generation` (RO, decimal): incremented by the kernel at every write of `inblob` or of an option. The ABI text:
  userspace detects conflicts by reading it before writing and checking, after reading `outblob`, that the number
  of writes matches. We also avoid conflicts by using a fresh entry with a unique name per report.

Sealing keys: configfs-tsm has none. On SEV-SNP the key comes from `/dev/sev-guest` SNP_GET_DERIVED_KEY
(attestation.tee.sev_guest), with the MEASUREMENT mixed in. On TDX there is no honest source: the TDX module gives a
TD no key-derivation call bound to MRTD/RTMRs, so `sealing_key` raises SealingKeyUnavailableError; the caller must
seal a random secret elsewhere (a vTPM bound to PCRs) or re-provision at each boot (spec/bootstrap.md §1).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from attestation.tee import Evidence
from attestation.tee.providers import (
    FileOps,
    OsFileOps,
    SealingKeyUnavailableError,
    TeeDeviceError,
    TeeUnavailableError,
    UnsupportedProviderError,
    pad_report_data,
)

if TYPE_CHECKING:
    from attestation.tee.sev_guest import GuestRequestFn

TSM_REPORT_DIR = "sys/kernel/config/tsm/report"
PROVIDER_KINDS = {"tdx_guest": "tdx", "sev_guest": "sev-snp"}
PRIVLEVEL_MAX = 3
DEFAULT_ATTEMPTS = 3


def configfs_tsm_present(root: Path, fs: FileOps) -> bool:
    return fs.exists(root / TSM_REPORT_DIR)


class ConfigFsTsm:
    """A TEE provider over configfs-tsm. Constructing it probes the registered provider (mkdir, read, rmdir).

    privlevel: SNP VMPL to request in each report (written to `privlevel`); None leaves the kernel's default.
    attempts: how many fresh entries to try when another writer changed our inputs (generation mismatch).
    ioctl: the /dev/sev-guest request function used for the SNP sealing key (test seam; default: the kernel).
    """

    def __init__(
        self,
        root: Path = Path("/"),
        *,
        fs: FileOps | None = None,
        privlevel: int | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        ioctl: GuestRequestFn | None = None,
    ) -> None:
        self.root = root
        self.base = root / TSM_REPORT_DIR
        self._fs: FileOps = fs or OsFileOps()
        self._ioctl = ioctl
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._attempts = attempts
        if not self._fs.exists(self.base):
            raise TeeUnavailableError(f"{self.base} not found (configfs-tsm needs Linux >= 6.7 and configfs mounted)")
        self.provider, self.privlevel_floor = self._probe()
        self.kind: str = PROVIDER_KINDS[self.provider]
        if privlevel is not None:
            if self.kind != "sev-snp":
                raise ValueError(f"privlevel applies to SEV-SNP only, this provider is {self.provider!r}")
            if not self.privlevel_floor <= privlevel <= PRIVLEVEL_MAX:
                raise ValueError(f"privlevel {privlevel} outside [{self.privlevel_floor}, {PRIVLEVEL_MAX}]")
        self.privlevel = privlevel

    # -- TeeProvider ---------------------------------------------------------------------------------------------

    def quote(self, report_data: bytes) -> Evidence:
        """Generate a report binding `report_data` (<= 64 bytes, zero-padded) in a fresh entry, then remove it."""
        data = pad_report_data(report_data)
        for _ in range(self._attempts):
            entry = self._make_entry()
            try:
                result = self._generate(entry, data)
            except BaseException:
                with contextlib.suppress(OSError):
                    self._fs.rmdir(entry)
                raise
            self._remove(entry)
            if result is not None:
                outblob, auxblob = result
                return Evidence(kind=self.kind, data=outblob, certificates=auxblob or None)
        raise TeeDeviceError(
            f"configfs-tsm: another writer changed the inputs of our report entry in each of {self._attempts} "
            "attempts (generation mismatch); refusing a report that may not carry our report data"
        )

    def sealing_key(self, label: bytes) -> bytes:
        if self.kind == "tdx":
            raise SealingKeyUnavailableError(
                "TDX gives a TD no sealing key: neither configfs-tsm nor the TDX module offers a key derived from "
                "MRTD/RTMRs. Seal a random secret to a vTPM's PCRs, or provision again after each boot"
            )
        from attestation.tee.sev_guest import SEV_GUEST_DEVICE, SevGuest, sev_guest_present

        if not sev_guest_present(self.root):
            raise SealingKeyUnavailableError(
                f"SEV-SNP sealing key: {self.root / SEV_GUEST_DEVICE} not found; configfs-tsm produces reports "
                "only, the measurement-bound key comes from SNP_GET_DERIVED_KEY on that device"
            )
        return SevGuest(self.root, ioctl=self._ioctl, vmpl=self.privlevel_floor).sealing_key(label)

    # -- internals -----------------------------------------------------------------------------------------------

    def _probe(self) -> tuple[str, int]:
        entry = self._make_entry()
        try:
            provider = self._read(entry / "provider").decode("ascii", "replace").strip()
            floor = 0
            if provider == "sev_guest" and self._fs.exists(entry / "privlevel_floor"):
                floor = self._read_int(entry / "privlevel_floor")
        finally:
            self._remove(entry)
        if provider not in PROVIDER_KINDS:
            raise UnsupportedProviderError(f"{self.base}: unsupported TSM provider {provider!r}")
        return provider, floor

    def _make_entry(self) -> Path:
        for _ in range(8):
            entry = self.base / f"zt-kms-{os.getpid()}-{secrets.token_hex(8)}"
            try:
                self._fs.mkdir(entry)
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._mkdir_error(entry, exc) from exc
            return entry
        raise TeeDeviceError(f"{self.base}: could not create a report entry with a unique name")

    def _mkdir_error(self, entry: Path, exc: OSError) -> TeeUnavailableError | TeeDeviceError:
        if exc.errno == errno.ENXIO:
            return UnsupportedProviderError(f"{self.base}: no TSM provider registered (mkdir: ENXIO)")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return TeeUnavailableError(f"{self.base}: not allowed to create report entries ({exc.strerror})")
        return TeeDeviceError(f"mkdir {entry}: {exc.strerror or exc}")

    def _generate(self, entry: Path, data: bytes) -> tuple[bytes, bytes] | None:
        """One report in `entry`; None when the generation count shows a write that was not ours."""
        provider = self._read(entry / "provider").decode("ascii", "replace").strip()
        if provider != self.provider:
            raise TeeDeviceError(f"{self.base}: provider changed from {self.provider!r} to {provider!r}")
        before = self._read_int(entry / "generation")
        writes = 0
        if self.privlevel is not None:
            self._write(entry / "privlevel", f"{self.privlevel}\n".encode())
            writes += 1
        self._write(entry / "inblob", data)
        writes += 1
        outblob = self._read(entry / "outblob")
        auxblob = self._read(entry / "auxblob") if self._fs.exists(entry / "auxblob") else b""
        after = self._read_int(entry / "generation")
        if after != before + writes:
            return None
        if not outblob:
            raise TeeDeviceError(f"{entry / 'outblob'}: the kernel returned an empty report")
        return outblob, auxblob

    def _remove(self, entry: Path) -> None:
        try:
            self._fs.rmdir(entry)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TeeDeviceError(f"rmdir {entry}: {exc.strerror or exc}") from exc

    def _read(self, path: Path) -> bytes:
        try:
            return self._fs.read(path)
        except OSError as exc:
            raise TeeDeviceError(f"read {path}: {exc.strerror or exc}") from exc

    def _read_int(self, path: Path) -> int:
        text = self._read(path).decode("ascii", "replace").strip()
        try:
            return int(text)
        except ValueError:
            raise TeeDeviceError(f"{path}: expected a decimal number, got {text!r}") from None

    def _write(self, path: Path, data: bytes) -> None:
        try:
            self._fs.write(path, data)
        except OSError as exc:
            raise TeeDeviceError(f"write {path}: {exc.strerror or exc}") from exc
