"""Key generation and validation rules, and the RNG bounds."""

from __future__ import annotations

import pytest

from kms.crypto.errors import BadParameters
from kms.crypto.keys import digest_sha256, generate_secret, generate_symmetric_key, validate_symmetric_key
from kms.crypto.rng import MAX_RANDOM_BYTES, random_bytes
from kms.kmip.enums import CryptographicAlgorithm as A


@pytest.mark.parametrize(
    ("algorithm", "bits"),
    [
        (A.AES, 128),
        (A.AES, 192),
        (A.AES, 256),
        (A.AES, 512),
        (A.ChaCha20, 256),
        (A.ChaCha20Poly1305, 256),
        (A.HMACSHA256, 128),
        (A.HMACSHA256, 136),
        (A.HMACSHA512, 1024),
        (A.HMACSHA3_256, 256),
        (A.HMACSHA1, 160),
    ],
)
def test_generate_valid_lengths(algorithm: A, bits: int) -> None:
    key = generate_symmetric_key(algorithm, bits)
    assert len(key) * 8 == bits
    validate_symmetric_key(algorithm, key, bits)
    assert generate_symmetric_key(algorithm, bits) != key


@pytest.mark.parametrize(
    ("algorithm", "bits"),
    [
        (A.AES, 64),
        (A.AES, 100),
        (A.AES, 384),
        (A.ChaCha20, 128),
        (A.ChaCha20Poly1305, 512),
        (A.HMACSHA256, 120),
        (A.HMACSHA256, 130),
        (A.RSA, 2048),
        (A.DES3, 128),
        (A.HMACMD5, 128),
        (A.AES, True),
    ],
)
def test_generate_refused(algorithm: A, bits: int) -> None:
    with pytest.raises(BadParameters):
        generate_symmetric_key(algorithm, bits)


@pytest.mark.parametrize(
    ("algorithm", "key", "bits", "fragment"),
    [
        (A.AES, bytes(17), None, "16, 24 or 32"),
        (A.AES, bytes(16), 256, "declared length"),
        (A.ChaCha20, bytes(16), None, "32 bytes"),
        (A.HMACSHA256, b"", None, "empty"),
        (A.RSA, bytes(16), None, "unsupported"),
    ],
)
def test_validate_refused(algorithm: A, key: bytes, bits: int | None, fragment: str) -> None:
    with pytest.raises(BadParameters, match=fragment):
        validate_symmetric_key(algorithm, key, bits)


def test_des3_keys_have_odd_parity() -> None:
    key = generate_symmetric_key(A.DES3, 168)
    assert len(key) == 24
    assert all(bin(b).count("1") % 2 == 1 for b in key)
    validate_symmetric_key(A.DES3, key, 168)


def test_validate_accepts_short_imported_hmac_keys() -> None:
    validate_symmetric_key(A.HMACSHA256, b"Jefe", 32)


def test_generate_secret() -> None:
    assert len(generate_secret(33)) == 33
    for bad in (0, -1):
        with pytest.raises(BadParameters):
            generate_secret(bad)


def test_digest_sha256() -> None:
    assert digest_sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_random_bytes_bounds() -> None:
    assert random_bytes(0) == b""
    assert len(random_bytes(MAX_RANDOM_BYTES)) == MAX_RANDOM_BYTES
    assert random_bytes(32) != random_bytes(32)
    for bad in (-1, MAX_RANDOM_BYTES + 1, 1.5, True):
        with pytest.raises(BadParameters):
            random_bytes(bad)  # type: ignore[arg-type]
