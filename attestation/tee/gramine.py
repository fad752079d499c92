"""Intel SGX evidence and sealing key inside a Gramine enclave, through Gramine's `/dev/attestation` pseudo-files.

Interface used (Gramine documentation, "Attestation and Secret Provisioning" and manifest-syntax.rst; the keys
directory since Gramine commit cd6a9cca "[LibOS] Expose SGX sealing keys under /dev/attestation/keys/", 2023):

- `/dev/attestation/attestation_type` (read, text): "none", "epid" or "dcap", from the manifest's
  `sgx.remote_attestation`. We produce evidence only for "dcap" (DCAP ECDSA quote v3), as Cosmian did.
- `/dev/attestation/user_report_data` (write): the 64 bytes placed in the enclave report's REPORTDATA. We always
  write all 64 bytes (zero-padded), so no byte of an earlier value can survive (whether Gramine pads a shorter write
  is an open point, spec/attestation.md §10).
- `/dev/attestation/quote` (read): the quote for the last user_report_data written.
- `/dev/attestation/keys/_sgx_mrenclave` (read): Gramine's 16-byte SGX sealing key with the MRENCLAVE key policy
  (EGETKEY, KEYPOLICY.MRENCLAVE): only an enclave with the same MRENCLAVE (the measurement of the enclave's code
  and initial data) on the same CPU gets it. We never use `_sgx_mrsigner`: that key is shared by every enclave
  signed with the same key (MRSIGNER), so another image from the same signer could unseal our data.

The write-then-read pair is not atomic in Gramine, so a process-wide lock serialises quotes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from attestation.tee import Evidence
from attestation.tee.providers import (
    FileOps,
    OsFileOps,
    SealingKeyUnavailableError,
    TeeDeviceError,
    TeeUnavailableError,
    derive_sealing_key,
    pad_report_data,
)

ATTESTATION_DIR = "dev/attestation"
MRENCLAVE_KEY = "keys/_sgx_mrenclave"
SGX_SEAL_KEY_SIZE = 16

_quote_lock = threading.Lock()


def gramine_present(root: Path, fs: FileOps) -> bool:
    return fs.exists(root / ATTESTATION_DIR / "attestation_type")


class GramineSgx:
    """SGX provider inside Gramine."""

    kind = "sgx"

    def __init__(self, root: Path = Path("/"), *, fs: FileOps | None = None) -> None:
        self.dir = root / ATTESTATION_DIR
        self._fs: FileOps = fs or OsFileOps()
        if not gramine_present(root, self._fs):
            raise TeeUnavailableError(f"{self.dir}/attestation_type not found: not running inside Gramine")

    def attestation_type(self) -> str:
        return self._read("attestation_type").decode("ascii", "replace").strip().rstrip("\0")

    def quote(self, report_data: bytes) -> Evidence:
        data = pad_report_data(report_data)
        kind = self.attestation_type()
        if kind != "dcap":
            raise TeeUnavailableError(
                f'Gramine attestation type is {kind!r}; DCAP quotes need sgx.remote_attestation = "dcap" '
                "in the manifest"
            )
        with _quote_lock:
            self._write("user_report_data", data)
            quote = self._read("quote")
        if not quote:
            raise TeeDeviceError(f"{self.dir}/quote: Gramine returned an empty quote")
        return Evidence(kind=self.kind, data=quote)

    def sealing_key(self, label: bytes) -> bytes:
        path = self.dir / MRENCLAVE_KEY
        if not self._fs.exists(path):
            raise SealingKeyUnavailableError(
                f"{path} not found: this Gramine does not expose its MRENCLAVE sealing key "
                "(it needs a release with commit cd6a9cca, 2023)"
            )
        key = self._read(MRENCLAVE_KEY)
        if len(key) != SGX_SEAL_KEY_SIZE:
            raise TeeDeviceError(f"{path}: {len(key)} bytes, expected the {SGX_SEAL_KEY_SIZE}-byte SGX seal key")
        return derive_sealing_key(key, label)

    def _read(self, name: str) -> bytes:
        path = self.dir / name
        try:
            return self._fs.read(path)
        except FileNotFoundError as exc:
            raise TeeUnavailableError(f"{path} not found") from exc
        except OSError as exc:
            raise TeeDeviceError(f"read {path}: {exc.strerror or exc}") from exc

    def _write(self, name: str, data: bytes) -> None:
        path = self.dir / name
        try:
            self._fs.write(path, data)
        except OSError as exc:
            raise TeeDeviceError(f"write {path}: {exc.strerror or exc}") from exc
