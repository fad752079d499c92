"""Streamed Encrypt/Decrypt (InitIndicator / CorrelationValue / FinalIndicator) over bare /kmip/2_1 operations:
the same bytes as one-shot calls, the tag checked at the end, correlation values that are unknown, finished or
for another operation refused."""

from __future__ import annotations

import hashlib
import itertools
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.server.kmip_http import (
    JsonItem,
    Kmip,
    boolean,
    byte_string,
    child,
    enum,
    has,
    struct,
    text,
    uid,
    unique_tag,
    value,
)
from tests.support.server import ServerProcess

# A deterministic plaintext of a few KiB, cut in uneven chunks (not multiples of the AES block).
PLAINTEXT = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(200))[:6001]
CHUNKS = [PLAINTEXT[:1], PLAINTEXT[1:1000], PLAINTEXT[1000:1017], PLAINTEXT[1017:5000], PLAINTEXT[5000:]]
GCM = struct("CryptographicParameters", enum("CryptographicAlgorithm", "AES"), enum("BlockCipherMode", "GCM"))


@pytest.fixture(scope="module")
def kmip(kms_server: ServerProcess) -> Kmip:
    return Kmip(kms_server.url)


@pytest.fixture
def key(kmip: Kmip) -> str:
    return kmip.create_bare(unique_tag("stream"))


def _data(resp: JsonItem) -> bytes:
    return bytes.fromhex(value(resp, "Data")) if has(resp, "Data") else b""


def _key_material(kmip: Kmip, key: str) -> bytes:
    got = kmip.call(struct("Get", uid(key)))
    return bytes.fromhex(value(child(child(child(got, "Object"), "KeyBlock"), "KeyValue"), "KeyMaterial"))


def _stream_encrypt(
    kmip: Kmip, key: str, chunks: list[bytes], iv: bytes | None, *extra: JsonItem
) -> tuple[bytes, bytes, bytes | None]:
    """(ciphertext, tag, server-chosen IV) of a streamed encryption."""
    first = kmip.call(
        struct(
            "Encrypt",
            uid(key),
            *extra,
            byte_string("Data", chunks[0]),
            byte_string("IvCounterNonce", iv) if iv is not None else None,
            boolean("InitIndicator", True),
        )
    )
    assert value(first, "UniqueIdentifier") == key
    assert not has(first, "AuthenticatedEncryptionTag")
    correlation = bytes.fromhex(value(first, "CorrelationValue"))
    assert correlation
    chosen_iv = bytes.fromhex(value(first, "IvCounterNonce")) if has(first, "IvCounterNonce") else None
    out = _data(first)
    for i, chunk in enumerate(chunks[1:], start=1):
        final = i == len(chunks) - 1
        resp = kmip.call(
            struct(
                "Encrypt",
                uid(key),
                byte_string("Data", chunk),
                byte_string("CorrelationValue", correlation),
                boolean("FinalIndicator", True) if final else None,
            )
        )
        out += _data(resp)
        if not final:
            assert bytes.fromhex(value(resp, "CorrelationValue")) == correlation
            assert not has(resp, "AuthenticatedEncryptionTag")
    assert not has(resp, "CorrelationValue")
    return out, bytes.fromhex(value(resp, "AuthenticatedEncryptionTag")), chosen_iv


def _start_decrypt(kmip: Kmip, key: str, chunk: bytes, iv: bytes, *extra: JsonItem) -> tuple[bytes, bytes]:
    first = kmip.call(
        struct(
            "Decrypt",
            uid(key),
            *extra,
            byte_string("Data", chunk),
            byte_string("IvCounterNonce", iv),
            boolean("InitIndicator", True),
        )
    )
    return _data(first), bytes.fromhex(value(first, "CorrelationValue"))


def _continue_decrypt(kmip: Kmip, key: str, correlation: bytes, chunk: bytes) -> bytes:
    resp = kmip.call(
        struct("Decrypt", uid(key), byte_string("Data", chunk), byte_string("CorrelationValue", correlation))
    )
    assert bytes.fromhex(value(resp, "CorrelationValue")) == correlation
    return _data(resp)


def _final_decrypt(key: str, correlation: bytes, chunk: bytes, tag: bytes) -> JsonItem:
    return struct(
        "Decrypt",
        uid(key),
        byte_string("Data", chunk),
        byte_string("CorrelationValue", correlation),
        boolean("FinalIndicator", True),
        byte_string("AuthenticatedEncryptionTag", tag),
    )


def _stream_decrypt(kmip: Kmip, key: str, chunks: list[bytes], iv: bytes, tag: bytes, *extra: JsonItem) -> bytes:
    out, correlation = _start_decrypt(kmip, key, chunks[0], iv, *extra)
    for chunk in chunks[1:-1]:
        out += _continue_decrypt(kmip, key, correlation, chunk)
    return out + _data(kmip.call(_final_decrypt(key, correlation, chunks[-1], tag)))


def _split(data: bytes) -> list[bytes]:
    cuts = [0, 7, 700, 701, 4096, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(cuts)]


@pytest.mark.parametrize("params", [(), (GCM,)], ids=["default-parameters", "explicit-GCM"])
def test_streamed_encrypt_equals_one_shot(kmip: Kmip, key: str, params: tuple[JsonItem, ...]) -> None:
    iv = os.urandom(12)
    streamed, tag, chosen = _stream_encrypt(kmip, key, CHUNKS, iv, *params)
    assert chosen is None  # the caller gave the IV, the server returns none
    one_shot = kmip.call(
        struct("Encrypt", uid(key), *params, byte_string("Data", PLAINTEXT), byte_string("IvCounterNonce", iv))
    )
    assert streamed == _data(one_shot)
    assert tag == bytes.fromhex(value(one_shot, "AuthenticatedEncryptionTag"))
    assert len(streamed) == len(PLAINTEXT) and len(tag) == 16
    assert AESGCM(_key_material(kmip, key)).decrypt(iv, streamed + tag, None) == PLAINTEXT


def test_streamed_decrypt_equals_one_shot(kmip: Kmip, key: str) -> None:
    iv = os.urandom(12)
    one_shot = kmip.call(struct("Encrypt", uid(key), byte_string("Data", PLAINTEXT), byte_string("IvCounterNonce", iv)))
    ciphertext, tag = _data(one_shot), bytes.fromhex(value(one_shot, "AuthenticatedEncryptionTag"))
    assert _stream_decrypt(kmip, key, _split(ciphertext), iv, tag) == PLAINTEXT
    single = kmip.call(
        struct(
            "Decrypt",
            uid(key),
            byte_string("Data", ciphertext),
            byte_string("IvCounterNonce", iv),
            byte_string("AuthenticatedEncryptionTag", tag),
        )
    )
    assert _data(single) == PLAINTEXT


def test_stream_round_trip_with_additional_data_and_server_chosen_iv(kmip: Kmip, key: str) -> None:
    aad = byte_string("AuthenticatedEncryptionAdditionalData", b"header v1")
    streamed, tag, chosen = _stream_encrypt(kmip, key, CHUNKS, None, aad)
    assert chosen is not None and len(chosen) == 12
    assert AESGCM(_key_material(kmip, key)).decrypt(chosen, streamed + tag, b"header v1") == PLAINTEXT
    assert _stream_decrypt(kmip, key, _split(streamed), chosen, tag, aad) == PLAINTEXT
    # Other additional data: the tag check at the end fails.
    wrong_aad = byte_string("AuthenticatedEncryptionAdditionalData", b"header v2")
    _, correlation = _start_decrypt(kmip, key, streamed[:100], chosen, wrong_aad)
    message = kmip.fail(_final_decrypt(key, correlation, streamed[100:], tag))
    assert "CryptographicFailure" in message


def test_streamed_encrypt_by_tag(kmip: Kmip) -> None:
    tag = unique_tag("stream")
    key = kmip.create_bare(tag)
    iv = os.urandom(12)
    first = kmip.call(
        struct(
            "Encrypt",
            uid(f'["{tag}"]'),
            byte_string("Data", CHUNKS[0]),
            byte_string("IvCounterNonce", iv),
            boolean("InitIndicator", True),
        )
    )
    assert value(first, "UniqueIdentifier") == key
    correlation = bytes.fromhex(value(first, "CorrelationValue"))
    last = kmip.call(
        struct(
            "Encrypt",
            uid(f'["{tag}"]'),
            byte_string("Data", b"".join(CHUNKS[1:])),
            byte_string("CorrelationValue", correlation),
            boolean("FinalIndicator", True),
        )
    )
    sealed = _data(first) + _data(last) + bytes.fromhex(value(last, "AuthenticatedEncryptionTag"))
    assert AESGCM(_key_material(kmip, key)).decrypt(iv, sealed, None) == PLAINTEXT


def test_wrong_tag_at_the_final_decrypt_fails(kmip: Kmip, key: str) -> None:
    iv = os.urandom(12)
    ciphertext, tag, _ = _stream_encrypt(kmip, key, CHUNKS, iv)
    bad_tag = tag[:-1] + bytes([tag[-1] ^ 0x01])
    _, correlation = _start_decrypt(kmip, key, ciphertext[:3000], iv)
    _continue_decrypt(kmip, key, correlation, ciphertext[3000:5000])
    message = kmip.fail(_final_decrypt(key, correlation, ciphertext[5000:], bad_tag))
    assert "CryptographicFailure" in message
    # The failed stream is closed: its correlation value is no longer valid.
    assert "InvalidCorrelationValue" in kmip.fail(_final_decrypt(key, correlation, b"", tag))
    # The right tag still works on a new stream.
    assert _stream_decrypt(kmip, key, _split(ciphertext), iv, tag) == PLAINTEXT


def test_tampered_ciphertext_fails_at_the_final_decrypt(kmip: Kmip, key: str) -> None:
    iv = os.urandom(12)
    ciphertext, tag, _ = _stream_encrypt(kmip, key, CHUNKS, iv)
    tampered = bytearray(ciphertext)
    tampered[10] ^= 0x80
    _, correlation = _start_decrypt(kmip, key, bytes(tampered[:2000]), iv)
    assert "CryptographicFailure" in kmip.fail(_final_decrypt(key, correlation, bytes(tampered[2000:]), tag))


@pytest.mark.parametrize("operation", ["Encrypt", "Decrypt"])
def test_unknown_correlation_value_fails(kmip: Kmip, key: str, operation: str) -> None:
    body = struct(
        operation,
        uid(key),
        byte_string("Data", b"x" * 16),
        byte_string("CorrelationValue", os.urandom(16)),
        boolean("FinalIndicator", True),
        byte_string("AuthenticatedEncryptionTag", bytes(16)) if operation == "Decrypt" else None,
    )
    assert "InvalidCorrelationValue" in kmip.fail(body)
    body_not_final = struct(
        operation, uid(key), byte_string("Data", b"x"), byte_string("CorrelationValue", b"\x00" * 16)
    )
    assert "InvalidCorrelationValue" in kmip.fail(body_not_final)


def test_finished_stream_cannot_be_continued(kmip: Kmip, key: str) -> None:
    iv = os.urandom(12)
    first = kmip.call(
        struct(
            "Encrypt",
            uid(key),
            byte_string("Data", b"a"),
            byte_string("IvCounterNonce", iv),
            boolean("InitIndicator", True),
        )
    )
    correlation = bytes.fromhex(value(first, "CorrelationValue"))
    final = struct(
        "Encrypt",
        uid(key),
        byte_string("Data", b"b"),
        byte_string("CorrelationValue", correlation),
        boolean("FinalIndicator", True),
    )
    kmip.call(final)
    assert "InvalidCorrelationValue" in kmip.fail(final)


def test_encrypt_correlation_value_is_not_a_decrypt_stream(kmip: Kmip, key: str) -> None:
    iv = os.urandom(12)
    first = kmip.call(
        struct(
            "Encrypt",
            uid(key),
            byte_string("Data", b"a" * 32),
            byte_string("IvCounterNonce", iv),
            boolean("InitIndicator", True),
        )
    )
    correlation = bytes.fromhex(value(first, "CorrelationValue"))
    assert "InvalidCorrelationValue" in kmip.fail(_final_decrypt(key, correlation, b"", bytes(16)))
    # The encryption stream itself is still usable.
    last = kmip.call(
        struct(
            "Encrypt",
            uid(key),
            byte_string("Data", b"b"),
            byte_string("CorrelationValue", correlation),
            boolean("FinalIndicator", True),
        )
    )
    sealed = _data(first) + _data(last) + bytes.fromhex(value(last, "AuthenticatedEncryptionTag"))
    assert AESGCM(_key_material(kmip, key)).decrypt(iv, sealed, None) == b"a" * 32 + b"b"


def test_revoking_the_key_stops_a_running_encryption(kmip: Kmip, key: str) -> None:
    iv = os.urandom(12)
    first = kmip.call(
        struct(
            "Encrypt",
            uid(key),
            byte_string("Data", b"a" * 32),
            byte_string("IvCounterNonce", iv),
            boolean("InitIndicator", True),
        )
    )
    correlation = bytes.fromhex(value(first, "CorrelationValue"))
    kmip.call(struct("Revoke", uid(key), text("RevocationReason", "stop")))
    message = kmip.fail(
        struct(
            "Encrypt",
            uid(key),
            byte_string("Data", b"b"),
            byte_string("CorrelationValue", correlation),
            boolean("FinalIndicator", True),
        )
    )
    assert "WrongKeyLifecycleState" in message


def test_init_and_final_in_one_call_is_a_one_shot(kmip: Kmip, key: str) -> None:
    iv = os.urandom(12)
    both = kmip.call(
        struct(
            "Encrypt",
            uid(key),
            byte_string("Data", PLAINTEXT),
            byte_string("IvCounterNonce", iv),
            boolean("InitIndicator", True),
            boolean("FinalIndicator", True),
        )
    )
    assert not has(both, "CorrelationValue")
    sealed = _data(both) + bytes.fromhex(value(both, "AuthenticatedEncryptionTag"))
    assert AESGCM(_key_material(kmip, key)).decrypt(iv, sealed, None) == PLAINTEXT


def test_continuation_naming_another_key_is_refused(kmip: Kmip, key: str) -> None:
    other = kmip.create_bare(unique_tag("stream"))
    first = kmip.call(
        struct(
            "Encrypt",
            uid(key),
            byte_string("Data", b"a"),
            byte_string("IvCounterNonce", os.urandom(12)),
            boolean("InitIndicator", True),
        )
    )
    correlation = bytes.fromhex(value(first, "CorrelationValue"))
    kmip.fail(
        struct(
            "Encrypt",
            uid(other),
            byte_string("Data", b"b"),
            byte_string("CorrelationValue", correlation),
            boolean("FinalIndicator", True),
        )
    )
