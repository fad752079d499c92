"""Server-side file encryption in Cosmian's file format: `nonce || ciphertext || tag`, no header.

The key never leaves the KMS: the file travels to the server and back. Small files take one Encrypt/Decrypt
call. Larger ones use KMIP streaming (InitIndicator, CorrelationValue, FinalIndicator) so memory stays bounded
by `CHUNK_SIZE` whatever the file size, and the layout on disk is the same either way, so a file encrypted in
one mode decrypts in the other.

Decryption writes to a temporary file next to the output and renames it only after the server has checked the
tag: with streaming the server hands back plaintext before it can authenticate it, and that plaintext must
never appear under the name the user asked for (a tampered file leaves nothing behind).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ckms.errors import ClientError, CliError
from ckms.output import quoted
from kms.kmip.attributes import CryptographicParameters
from kms.kmip.enums import BlockCipherMode, CryptographicAlgorithm
from kms.kmip.payloads import DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse

CHUNK_SIZE = 1024 * 1024
"""Plaintext bytes per streaming call; files up to this size go in a single call."""

Progress = Callable[[int], None]


def _no_progress(_n: int) -> None:
    return None


@dataclass(frozen=True)
class DataEncryption:
    """One `--data-encryption-algorithm` choice: what to ask the server for and how the file is laid out."""

    name: str
    nonce_size: int
    tag_size: int
    # GCM and ChaCha20-Poly1305 can be computed incrementally. GCM-SIV needs the whole message before it can
    # produce its IV, and XTS works on one data unit, so those two always go in a single call.
    streamable: bool
    algorithm: CryptographicAlgorithm | None = None
    mode: BlockCipherMode | None = None

    def parameters(self) -> CryptographicParameters | None:
        """None for AES-GCM: the server's default, and what Cosmian's own client sends."""
        if self.algorithm is None and self.mode is None:
            return None
        return CryptographicParameters(block_cipher_mode=self.mode, cryptographic_algorithm=self.algorithm)


ALGORITHMS: dict[str, DataEncryption] = {
    "aes-gcm": DataEncryption("aes-gcm", 12, 16, True),
    "chacha20-poly1305": DataEncryption(
        "chacha20-poly1305", 12, 16, True, algorithm=CryptographicAlgorithm.ChaCha20Poly1305
    ),
    "aes-xts": DataEncryption("aes-xts", 16, 0, False, mode=BlockCipherMode.XTS),
    "aes-gcm-siv": DataEncryption("aes-gcm-siv", 12, 16, False, mode=BlockCipherMode.GCMSIV),
}


class CryptoClient(Protocol):
    """The two calls this module needs (a `KmsClient`, or an in-process fake in tests)."""

    def encrypt(self, request: EncryptRequest) -> EncryptResponse: ...

    def decrypt(self, request: DecryptRequest) -> DecryptResponse: ...


def default_output(source: Path, extension: str) -> Path:
    """`image.png` -> `image.<extension>`; like Rust's `with_extension`, only the last suffix is replaced."""
    return source.with_suffix("." + extension)


def _creation_mode() -> int:
    """The mode `open()` would give a new file, so the renamed temporary file looks like any other output."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A file that appears at `path` only if the block completes; on any error it is deleted."""
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise CliError(f"cannot write in {quoted(directory)}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.chmod(tmp, _creation_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_len(what: str, value: bytes | None, size: int) -> bytes:
    value = value or b""
    if len(value) != size:
        raise ClientError(f"the server returned a {len(value)}-byte {what}; this file format needs {size} bytes")
    return value


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_paths(source: Path, output: Path) -> None:
    if _same_file(source, output):
        raise CliError(f"the output file {quoted(output)} is the input file")


# ------------------------------------------------------------------------------------------------- encrypt


def encrypt_file(
    client: CryptoClient,
    unique_identifier: str,
    alg: DataEncryption,
    source: Path,
    output: Path,
    aad: bytes | None = None,
    progress: Progress = _no_progress,
) -> None:
    _check_paths(source, output)
    size = source.stat().st_size
    if size <= CHUNK_SIZE or not alg.streamable:
        data = source.read_bytes()
        resp = client.encrypt(
            EncryptRequest(
                unique_identifier=unique_identifier,
                cryptographic_parameters=alg.parameters(),
                data=data,
                authenticated_encryption_additional_data=aad,
            )
        )
        nonce = _check_len("nonce", resp.iv_counter_nonce, alg.nonce_size)
        tag = _check_len("authentication tag", resp.authenticated_encryption_tag, alg.tag_size)
        with atomic_output(output) as out:
            out.write(nonce)
            out.write(resp.data or b"")
            out.write(tag)
        progress(size)
        return
    with source.open("rb") as src, atomic_output(output) as out:
        _encrypt_stream(client, unique_identifier, alg, src, out, aad, progress)


def _encrypt_stream(
    client: CryptoClient,
    unique_identifier: str,
    alg: DataEncryption,
    src: BinaryIO,
    out: BinaryIO,
    aad: bytes | None,
    progress: Progress,
) -> None:
    key_id = unique_identifier
    correlation: bytes | None = None
    chunk = src.read(CHUNK_SIZE)
    following = src.read(CHUNK_SIZE)  # read one ahead: the last chunk must carry FinalIndicator
    first = True
    while True:
        last = not following
        req = EncryptRequest(unique_identifier=key_id, cryptographic_parameters=alg.parameters(), data=chunk)
        if first:
            req.init_indicator = True
            req.authenticated_encryption_additional_data = aad
        else:
            req.correlation_value = correlation
        if last:
            req.final_indicator = True
        resp = client.encrypt(req)
        if first:
            out.write(_check_len("nonce", resp.iv_counter_nonce, alg.nonce_size))
            # Later calls name the key resolved by the first one, so a tag list is looked up only once.
            key_id = resp.unique_identifier or key_id
        out.write(resp.data or b"")
        progress(len(chunk))
        if last:
            out.write(_check_len("authentication tag", resp.authenticated_encryption_tag, alg.tag_size))
            return
        correlation = resp.correlation_value or correlation
        if correlation is None:
            raise ClientError("the server did not return a CorrelationValue: it does not support streaming")
        chunk, following = following, src.read(CHUNK_SIZE)
        first = False


# ------------------------------------------------------------------------------------------------- decrypt


def decrypt_file(
    client: CryptoClient,
    unique_identifier: str,
    alg: DataEncryption,
    source: Path,
    output: Path,
    aad: bytes | None = None,
    progress: Progress = _no_progress,
) -> None:
    _check_paths(source, output)
    size = source.stat().st_size
    overhead = alg.nonce_size + alg.tag_size
    if size < overhead:
        raise CliError(f"{quoted(source)} is too short ({size} bytes) to be a file encrypted with {alg.name}")
    ct_len = size - overhead
    with source.open("rb") as src:
        nonce = src.read(alg.nonce_size)
        tag: bytes | None = None
        if alg.tag_size:
            # The tag sits at the end: seek to it rather than reading the file to find it.
            src.seek(-alg.tag_size, os.SEEK_END)
            tag = src.read(alg.tag_size)
            src.seek(alg.nonce_size)
        if ct_len <= CHUNK_SIZE or not alg.streamable:
            data = _read_exactly(src, ct_len)
            resp = client.decrypt(
                DecryptRequest(
                    unique_identifier=unique_identifier,
                    cryptographic_parameters=alg.parameters(),
                    data=data,
                    iv_counter_nonce=nonce,
                    authenticated_encryption_additional_data=aad,
                    authenticated_encryption_tag=tag,
                )
            )
            with atomic_output(output) as out:
                out.write(resp.data or b"")
            progress(size)
            return
        with atomic_output(output) as out:
            _decrypt_stream(client, unique_identifier, alg, src, out, ct_len, nonce, tag, aad, progress)


def _read_exactly(src: BinaryIO, n: int) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise CliError("the input file changed while it was being read")
    return data


def _decrypt_stream(
    client: CryptoClient,
    unique_identifier: str,
    alg: DataEncryption,
    src: BinaryIO,
    out: BinaryIO,
    ct_len: int,
    nonce: bytes,
    tag: bytes | None,
    aad: bytes | None,
    progress: Progress,
) -> None:
    key_id = unique_identifier
    correlation: bytes | None = None
    remaining = ct_len
    first = True
    while remaining > 0:
        chunk = _read_exactly(src, min(CHUNK_SIZE, remaining))
        remaining -= len(chunk)
        last = remaining == 0
        req = DecryptRequest(unique_identifier=key_id, cryptographic_parameters=alg.parameters(), data=chunk)
        if first:
            req.init_indicator = True
            req.iv_counter_nonce = nonce
            req.authenticated_encryption_additional_data = aad
        else:
            req.correlation_value = correlation
        if last:
            req.final_indicator = True
            req.authenticated_encryption_tag = tag
        resp = client.decrypt(req)
        if first:
            key_id = resp.unique_identifier or key_id
        out.write(resp.data or b"")
        progress(len(chunk))
        if not last:
            correlation = resp.correlation_value or correlation
            if correlation is None:
                raise ClientError("the server did not return a CorrelationValue: it does not support streaming")
        first = False
