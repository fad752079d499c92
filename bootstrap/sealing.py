"""The sealed configuration: what the owner provisioned, encrypted with the key derived from the TEE's `sk`.

File format (one file, `<root-data-path>/bootstrap/sealed-config`, mode 0600 in a 0700 directory):

    MAGIC (8 bytes, b"ZTKSEAL1": names the format, version 1) || nonce (12 bytes) || AES-256-GCM(ciphertext || tag)

with associated data AAD = b"zt-kms/bootstrap/sealed-config/v1", so a blob of another format version, or another
use of the same key, never opens as this one. The nonce is random for every write; a key seals at most a handful of
blobs (one per provisioning), far below GCM's random-nonce limits.

Opening fails with `SealedConfigError`, never another exception: a missing file is `None` (first boot), and a file
that is truncated, of another format, or sealed with another key (another image, measurement or platform) is
refused the same typed way, so the launcher can fall back to bootstrap mode instead of crashing.

The file is written atomically (temporary file in the same directory, fsync, rename), so a crash during /start
leaves either the old sealed configuration or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"ZTKSEAL1"
AAD = b"zt-kms/bootstrap/sealed-config/v1"
NONCE_BYTES = 12
TAG_BYTES = 16
SEALED_DIR = "bootstrap"
SEALED_NAME = "sealed-config"
MAX_SEALED_BYTES = 4 * 1024 * 1024


class SealedConfigError(Exception):
    """The sealed configuration exists but cannot be opened (message says why, never with secret content)."""


def sealed_path(root_data_path: str | Path) -> Path:
    return Path(root_data_path) / SEALED_DIR / SEALED_NAME


def seal(key: bytes, plaintext: bytes) -> bytes:
    """MAGIC || nonce || AES-256-GCM(key, nonce, plaintext, AAD)."""
    if len(key) != 32:
        raise ValueError("the sealing key is 32 bytes (AES-256)")
    nonce = secrets.token_bytes(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, AAD)


def unseal(key: bytes, blob: bytes) -> bytes:
    """The plaintext of `seal`; SealedConfigError for another format or a key that does not open it."""
    if len(blob) < len(MAGIC) + NONCE_BYTES + TAG_BYTES or not blob.startswith(MAGIC):
        raise SealedConfigError("not a sealed configuration of this version (wrong header or truncated)")
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], AAD)
    except InvalidTag:
        raise SealedConfigError("the sealing key does not open it (another image, measurement or platform), or "
                                "the file was altered") from None


def write_sealed(path: Path, key: bytes, plaintext: bytes) -> None:
    """Seal `plaintext` into `path` atomically, mode 0600, creating the directory 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    blob = seal(key, plaintext)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash
    finally:
        os.close(dir_fd)


def read_sealed(path: Path, key: bytes) -> bytes | None:
    """The unsealed plaintext, None when there is no sealed file, SealedConfigError when it does not open."""
    try:
        with path.open("rb") as f:
            blob = f.read(MAX_SEALED_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SealedConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(blob) > MAX_SEALED_BYTES:
        raise SealedConfigError(f"{path} is larger than any sealed configuration")
    return unseal(key, blob)
