"""Pick the real TEE provider of this machine, or one by name; what every real provider shares.

Detection (`detect_provider(root)`), first match wins:

1. configfs-tsm (`/sys/kernel/config/tsm/report`, Linux >= 6.7) whose registered provider is `tdx_guest` (TDX) or
   `sev_guest` (SEV-SNP): `attestation.tee.configfs_tsm.ConfigFsTsm`. Learning the provider needs a report entry,
   so detection creates one, reads `provider`, and removes it (no report is generated).
2. Gramine's `/dev/attestation` (SGX inside a Gramine enclave): `attestation.tee.gramine.GramineSgx`.
3. `/dev/sev-guest` alone (SEV-SNP kernels without configfs-tsm): `attestation.tee.sev_guest.SevGuest`.
4. Nothing: None. The simulated TEE is never detected; it is only ever chosen explicitly, elsewhere.

A configfs-tsm directory whose provider cannot be read because no TEE driver registered (the kernel answers ENXIO
to mkdir), or whose provider is one we do not know, is skipped. One we may not use (permissions) raises: a TEE that
is present but unusable must not turn silently into "no TEE".

Sealing keys: every provider feeds its measurement-bound hardware secret through `derive_sealing_key`:
HKDF-SHA256(salt = SEALING_SALT, IKM = hardware key, info = label) -> 32 bytes. The fixed salt names this product
and format version, so our keys never coincide with another program's use of the same hardware key, and the
label separates our own uses (Cosmian ran HKDF with no salt; see spec/cosmian-reference.md §1.6).

All paths are resolved under `root` so tests can point a provider at a directory tree reproducing the kernel or
Gramine file interface. File access goes through `FileOps` (default `OsFileOps`, plain system calls); tests pass a
fake that behaves like the kernel (e.g. produces `outblob` from the `inblob` written).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from attestation.errors import AttestationError

if TYPE_CHECKING:
    from attestation.tee import TeeProvider
    from attestation.tee.sev_guest import GuestRequestFn

REPORT_DATA_SIZE = 64
SEALING_KEY_SIZE = 32
SEALING_SALT = b"zt-kms/tee-sealing-key/v1"
PROVIDER_NAMES = ("tdx", "sev-snp", "sgx")


class TeeUnavailableError(AttestationError):
    """The TEE interface is not there (device, directory or driver missing) or cannot be used as found."""


class TeeDeviceError(AttestationError):
    """The interface exists but an operation on it failed (I/O error, firmware status, concurrent writer)."""


class UnsupportedProviderError(TeeUnavailableError):
    """configfs-tsm exists but serves no TEE we support (no driver registered, or an unknown provider)."""


class SealingKeyUnavailableError(TeeUnavailableError):
    """This TEE offers no key bound to the launch measurement through the interface at hand."""


def pad_report_data(report_data: bytes) -> bytes:
    """`report_data` zero-padded to 64 bytes; longer input is refused (ValueError), never truncated."""
    if not isinstance(report_data, bytes | bytearray | memoryview):
        raise TypeError(f"report_data must be bytes, not {type(report_data).__name__}")
    data = bytes(report_data)
    if len(data) > REPORT_DATA_SIZE:
        raise ValueError(f"report_data is {len(data)} bytes; a TEE report carries at most {REPORT_DATA_SIZE}")
    return data.ljust(REPORT_DATA_SIZE, b"\0")


def derive_sealing_key(hardware_key: bytes, label: bytes) -> bytes:
    """HKDF-SHA256(salt=SEALING_SALT, ikm=hardware_key, info=label), 32 bytes."""
    if not isinstance(label, bytes):
        raise TypeError(f"label must be bytes, not {type(label).__name__}")
    if not label:
        raise ValueError("label must not be empty: it is what keeps one use of the sealing key apart from another")
    if len(hardware_key) < 16:
        raise TeeDeviceError(f"hardware key is {len(hardware_key)} bytes; at least 16 expected")
    return HKDF(algorithm=hashes.SHA256(), length=SEALING_KEY_SIZE, salt=SEALING_SALT, info=label).derive(hardware_key)


class FileOps(Protocol):
    """The file operations a provider performs on kernel/Gramine pseudo-files (the test seam)."""

    def exists(self, path: Path) -> bool: ...

    def mkdir(self, path: Path) -> None: ...

    def rmdir(self, path: Path) -> None: ...

    def read(self, path: Path) -> bytes: ...

    def write(self, path: Path, data: bytes) -> None: ...


class OsFileOps:
    """Plain system calls. `write` is one write(2) on an existing file (no O_CREAT, no O_TRUNC): pseudo-file
    attributes take their value from a single write, and a missing attribute must fail rather than be created."""

    def exists(self, path: Path) -> bool:
        return path.exists()

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def read(self, path: Path) -> bytes:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write(self, path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(errno.EIO, f"short write ({written} of {len(data)} bytes)", str(path))


def detect_provider(
    root: Path = Path("/"), *, fs: FileOps | None = None, ioctl: GuestRequestFn | None = None
) -> TeeProvider | None:
    """The real provider whose interface exists under `root` (order in the module docstring), or None."""
    from attestation.tee.configfs_tsm import ConfigFsTsm, configfs_tsm_present
    from attestation.tee.gramine import GramineSgx, gramine_present
    from attestation.tee.sev_guest import SevGuest, sev_guest_present

    ops = fs or OsFileOps()
    if configfs_tsm_present(root, ops):
        try:
            return ConfigFsTsm(root, fs=ops, ioctl=ioctl)
        except UnsupportedProviderError:
            pass
    if gramine_present(root, ops):
        return GramineSgx(root, fs=ops)
    if sev_guest_present(root):
        return SevGuest(root, ioctl=ioctl)
    return None


def provider_by_name(
    name: str, root: Path = Path("/"), *, fs: FileOps | None = None, ioctl: GuestRequestFn | None = None
) -> TeeProvider:
    """The real provider for `name` ('tdx' | 'sev-snp' | 'sgx'); TeeUnavailableError naming what is missing."""
    from attestation.tee.configfs_tsm import TSM_REPORT_DIR, ConfigFsTsm, configfs_tsm_present
    from attestation.tee.gramine import ATTESTATION_DIR, GramineSgx, gramine_present
    from attestation.tee.sev_guest import SEV_GUEST_DEVICE, SevGuest, sev_guest_present

    if name not in PROVIDER_NAMES:
        raise ValueError(f"unknown TEE provider {name!r}; expected one of {', '.join(PROVIDER_NAMES)}")
    ops = fs or OsFileOps()
    tsm_dir = root / TSM_REPORT_DIR
    if name == "sgx":
        if not gramine_present(root, ops):
            raise TeeUnavailableError(
                f"SGX: {root / ATTESTATION_DIR} not found; the SGX provider works inside a Gramine enclave "
                'with remote attestation enabled (sgx.remote_attestation = "dcap")'
            )
        return GramineSgx(root, fs=ops)

    tsm: ConfigFsTsm | None = None
    why = f"{tsm_dir} not found (configfs-tsm needs Linux >= 6.7 and configfs mounted at /sys/kernel/config)"
    if configfs_tsm_present(root, ops):
        try:
            tsm = ConfigFsTsm(root, fs=ops, ioctl=ioctl)
        except UnsupportedProviderError as exc:
            why = str(exc)
    if tsm is not None and tsm.kind == name:
        return tsm
    if tsm is not None:
        why = f"{tsm_dir} serves provider {tsm.provider!r} ({tsm.kind}), not {name}"
    if name == "tdx":
        raise TeeUnavailableError(f"TDX: {why}; TDX quotes are read only through configfs-tsm")
    if sev_guest_present(root):
        return SevGuest(root, ioctl=ioctl)
    raise TeeUnavailableError(f"SEV-SNP: {why}, and {root / SEV_GUEST_DEVICE} not found either")
