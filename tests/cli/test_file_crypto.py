"""File encryption layout and the streaming protocol, against an in-process stand-in for the server's crypto.

The stand-in implements KMIP streaming the way the protocol defines it (InitIndicator, CorrelationValue,
FinalIndicator) with AES-GCM from `cryptography`, so these tests pin the client's side: call sequence, chunk
bounds, file layout, and that unauthenticated plaintext never survives under the output name.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ckms import file_crypto
from ckms.errors import ClientError, CliError
from ckms.file_crypto import ALGORITHMS, CHUNK_SIZE, decrypt_file, default_output, encrypt_file
from kms.kmip.payloads import DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse

GCM = ALGORITHMS["aes-gcm"]


class InProcessKms:
    """AES-GCM with one key, one-shot or streamed; records every request."""

    def __init__(self) -> None:
        self.key = AESGCM.generate_key(256)
        self.encrypts: list[EncryptRequest] = []
        self.decrypts: list[DecryptRequest] = []
        self._streams: dict[bytes, object] = {}

    def encrypt(self, req: EncryptRequest) -> EncryptResponse:
        self.encrypts.append(req)
        data = req.data or b""
        if req.correlation_value is None and not req.init_indicator:
            nonce = os.urandom(12)
            sealed = AESGCM(self.key).encrypt(nonce, data, req.authenticated_encryption_additional_data)
            return EncryptResponse("key-1", sealed[:-16], nonce, None, sealed[-16:])
        if req.init_indicator:
            nonce = os.urandom(12)
            enc = Cipher(algorithms.AES(self.key), modes.GCM(nonce)).encryptor()
            if req.authenticated_encryption_additional_data:
                enc.authenticate_additional_data(req.authenticated_encryption_additional_data)
            token = os.urandom(16)
            self._streams[token] = enc
            return EncryptResponse("key-1", enc.update(data), nonce, token, None)
        enc = self._streams[req.correlation_value]  # type: ignore[index]
        out = enc.update(data)  # type: ignore[attr-defined]
        if req.final_indicator:
            out += enc.finalize()  # type: ignore[attr-defined]
            return EncryptResponse("key-1", out, None, None, enc.tag)  # type: ignore[attr-defined]
        return EncryptResponse("key-1", out, None, req.correlation_value, None)

    def decrypt(self, req: DecryptRequest) -> DecryptResponse:
        self.decrypts.append(req)
        data = req.data or b""
        try:
            if req.correlation_value is None and not req.init_indicator:
                plain = AESGCM(self.key).decrypt(
                    req.iv_counter_nonce,  # type: ignore[arg-type]
                    data + (req.authenticated_encryption_tag or b""),
                    req.authenticated_encryption_additional_data,
                )
                return DecryptResponse("key-1", plain)
            if req.init_indicator:
                dec = Cipher(algorithms.AES(self.key), modes.GCM(req.iv_counter_nonce)).decryptor()  # type: ignore[arg-type]
                if req.authenticated_encryption_additional_data:
                    dec.authenticate_additional_data(req.authenticated_encryption_additional_data)
                token = os.urandom(16)
                self._streams[token] = dec
                return DecryptResponse("key-1", dec.update(data), token)
            dec = self._streams[req.correlation_value]  # type: ignore[index]
            out = dec.update(data)  # type: ignore[attr-defined]
            if req.final_indicator:
                out += dec.finalize_with_tag(req.authenticated_encryption_tag)  # type: ignore[attr-defined]
                return DecryptResponse("key-1", out)
            return DecryptResponse("key-1", out, req.correlation_value)
        except InvalidTag:
            raise ClientError("Cryptographic failure: authentication failed", 422) from None


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_default_output_names() -> None:
    assert default_output(Path("image.png"), "enc") == Path("image.enc")
    assert default_output(Path("dir/archive.tar.gz"), "enc") == Path("dir/archive.tar.enc")
    assert default_output(Path("noext"), "enc") == Path("noext.enc")
    assert default_output(Path("image.enc"), "plain") == Path("image.plain")


def test_small_file_single_call_layout(tmp_path: Path) -> None:
    kms = InProcessKms()
    src = tmp_path / "small.bin"
    src.write_bytes(os.urandom(1000))
    enc = tmp_path / "small.enc"
    encrypt_file(kms, '["t"]', GCM, src, enc, aad=b"ctx")
    assert len(kms.encrypts) == 1
    req = kms.encrypts[0]
    assert req.unique_identifier == '["t"]' and not req.init_indicator and req.cryptographic_parameters is None
    blob = enc.read_bytes()
    assert len(blob) == 12 + 1000 + 16
    # nonce || ciphertext || tag: decryptable with the key alone, no header
    assert AESGCM(kms.key).decrypt(blob[:12], blob[12:], b"ctx") == src.read_bytes()
    out = tmp_path / "small.out"
    decrypt_file(kms, "key-1", GCM, enc, out, aad=b"ctx")
    assert out.read_bytes() == src.read_bytes()
    assert len(kms.decrypts) == 1


def test_large_file_is_streamed_in_bounded_chunks(tmp_path: Path) -> None:
    kms = InProcessKms()
    size = 3 * CHUNK_SIZE + 12345
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(size))
    enc = tmp_path / "big.enc"
    seen: list[int] = []
    encrypt_file(kms, '["t"]', GCM, src, enc, aad=b"aad", progress=seen.append)
    assert sum(seen) == size
    calls = kms.encrypts
    assert len(calls) == 4
    assert all(len(c.data or b"") <= CHUNK_SIZE for c in calls)
    assert calls[0].init_indicator and calls[0].authenticated_encryption_additional_data == b"aad"
    assert calls[0].unique_identifier == '["t"]'
    assert all(c.unique_identifier == "key-1" for c in calls[1:])  # the resolved id, not the tag list again
    assert all(c.correlation_value is not None for c in calls[1:])
    assert [bool(c.final_indicator) for c in calls] == [False, False, False, True]
    blob = enc.read_bytes()
    assert len(blob) == 12 + size + 16
    assert AESGCM(kms.key).decrypt(blob[:12], blob[12:], b"aad") == src.read_bytes()

    out = tmp_path / "big.out"
    decrypt_file(kms, "key-1", GCM, enc, out, aad=b"aad")
    assert out.read_bytes() == src.read_bytes()
    dcalls = kms.decrypts
    assert len(dcalls) == 4
    assert dcalls[0].init_indicator and dcalls[0].iv_counter_nonce == blob[:12]
    assert dcalls[-1].final_indicator and dcalls[-1].authenticated_encryption_tag == blob[-16:]
    assert all(d.authenticated_encryption_tag is None for d in dcalls[:-1])
    assert _leftovers(tmp_path) == []


def test_exact_multiple_of_chunk_size(tmp_path: Path) -> None:
    kms = InProcessKms()
    src = tmp_path / "two.bin"
    src.write_bytes(os.urandom(2 * CHUNK_SIZE))
    enc = tmp_path / "two.enc"
    encrypt_file(kms, "key-1", GCM, src, enc)
    assert len(kms.encrypts) == 2 and kms.encrypts[1].final_indicator and kms.encrypts[1].data
    out = tmp_path / "two.out"
    decrypt_file(kms, "key-1", GCM, enc, out)
    assert out.read_bytes() == src.read_bytes()


def test_empty_file(tmp_path: Path) -> None:
    kms = InProcessKms()
    src = tmp_path / "empty"
    src.write_bytes(b"")
    enc = tmp_path / "empty.enc"
    encrypt_file(kms, "key-1", GCM, src, enc)
    assert len(enc.read_bytes()) == 28
    out = tmp_path / "empty.out"
    decrypt_file(kms, "key-1", GCM, enc, out)
    assert out.read_bytes() == b""


@pytest.mark.parametrize("size", [5000, 3 * CHUNK_SIZE])
def test_tampered_file_leaves_no_output(tmp_path: Path, size: int) -> None:
    kms = InProcessKms()
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(size))
    enc = tmp_path / "f.enc"
    encrypt_file(kms, "key-1", GCM, src, enc)
    blob = bytearray(enc.read_bytes())
    blob[12 + size // 2] ^= 1
    enc.write_bytes(bytes(blob))
    out = tmp_path / "f.out"
    with pytest.raises(ClientError, match="authentication failed"):
        decrypt_file(kms, "key-1", GCM, enc, out)
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_failure_keeps_an_existing_output_untouched(tmp_path: Path) -> None:
    kms = InProcessKms()
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(2 * CHUNK_SIZE + 1))
    enc = tmp_path / "f.enc"
    encrypt_file(kms, "key-1", GCM, src, enc)
    blob = bytearray(enc.read_bytes())
    blob[-1] ^= 0x80  # the tag
    enc.write_bytes(bytes(blob))
    out = tmp_path / "previous.txt"
    out.write_text("keep me")
    with pytest.raises(ClientError):
        decrypt_file(kms, "key-1", GCM, enc, out)
    assert out.read_text() == "keep me"


def test_too_short_file(tmp_path: Path) -> None:
    enc = tmp_path / "short.enc"
    enc.write_bytes(b"x" * 27)
    with pytest.raises(CliError, match="too short"):
        decrypt_file(InProcessKms(), "key-1", GCM, enc, tmp_path / "o")


def test_output_must_differ_from_input(tmp_path: Path) -> None:
    src = tmp_path / "same.bin"
    src.write_bytes(b"abc")
    with pytest.raises(CliError, match="is the input file"):
        encrypt_file(InProcessKms(), "key-1", GCM, src, src)
    assert src.read_bytes() == b"abc"


def test_non_streamable_modes_use_one_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_crypto, "CHUNK_SIZE", 10)
    sent: list[EncryptRequest] = []

    class SivServer:
        def encrypt(self, req: EncryptRequest) -> EncryptResponse:
            sent.append(req)
            return EncryptResponse("k", req.data, b"n" * 12, None, b"t" * 16)

        def decrypt(self, req: DecryptRequest) -> DecryptResponse:
            raise AssertionError("unused")

    src = tmp_path / "f"
    src.write_bytes(b"0123456789" * 5)
    encrypt_file(SivServer(), "k", ALGORITHMS["aes-gcm-siv"], src, tmp_path / "f.enc")
    assert len(sent) == 1 and sent[0].cryptographic_parameters is not None
    assert sent[0].cryptographic_parameters.block_cipher_mode is not None


def test_wrong_nonce_size_from_server_is_refused(tmp_path: Path) -> None:
    class OddServer:
        def encrypt(self, req: EncryptRequest) -> EncryptResponse:
            return EncryptResponse("k", req.data, b"n" * 16, None, b"t" * 16)

        def decrypt(self, req: DecryptRequest) -> DecryptResponse:
            raise AssertionError("unused")

    src = tmp_path / "f"
    src.write_bytes(b"abc")
    with pytest.raises(ClientError, match="16-byte nonce"):
        encrypt_file(OddServer(), "k", GCM, src, tmp_path / "f.enc")
    assert not (tmp_path / "f.enc").exists()
