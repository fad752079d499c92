"""Symmetric key generation and the length rules every symmetric key must meet before it is stored or used.

Keys are checked here once, at creation or import, so that a key that could never work is refused with a parameter
error up front instead of failing later inside an Encrypt. Whether a valid AES key also suits a given mode (XTS
needs a double-length key, GCM-SIV no 192-bit key) is decided at use time in `kms.crypto.symmetric`.
"""

from __future__ import annotations

import hashlib

from kms.crypto.errors import BadParameters
from kms.crypto.rng import random_bytes
from kms.kmip.enums import CryptographicAlgorithm

# 512 bits is accepted for AES because an AES-256-XTS key is a pair of AES-256 keys stored as one object.
AES_KEY_BITS = (128, 192, 256, 512)
CHACHA_KEY_BITS = 256
# HMAC accepts any key length; generated HMAC keys are at least 128 bits so they resist brute force.
MIN_GENERATED_HMAC_BITS = 128

HMAC_ALGORITHMS = frozenset(
    {
        CryptographicAlgorithm.HMACSHA1,
        CryptographicAlgorithm.HMACSHA224,
        CryptographicAlgorithm.HMACSHA256,
        CryptographicAlgorithm.HMACSHA384,
        CryptographicAlgorithm.HMACSHA512,
        CryptographicAlgorithm.HMACSHA3_224,
        CryptographicAlgorithm.HMACSHA3_256,
        CryptographicAlgorithm.HMACSHA3_384,
        CryptographicAlgorithm.HMACSHA3_512,
    }
)
CHACHA_ALGORITHMS = frozenset({CryptographicAlgorithm.ChaCha20, CryptographicAlgorithm.ChaCha20Poly1305})
ASYMMETRIC_ALGORITHMS = frozenset(
    {
        CryptographicAlgorithm.RSA,
        CryptographicAlgorithm.DSA,
        CryptographicAlgorithm.ECDSA,
        CryptographicAlgorithm.EC,
        CryptographicAlgorithm.ECDH,
        CryptographicAlgorithm.ECMQV,
        CryptographicAlgorithm.DH,
        CryptographicAlgorithm.Ed25519,
        CryptographicAlgorithm.Ed448,
    }
)
# Triple DES keys are 168 effective bits stored as 24 bytes whose low bits are odd parity (legacy interop only).
DES3_BITS = (168, 192)


def _des_parity(key: bytes) -> bytes:
    return bytes((b & 0xFE) | (1 - (bin(b & 0xFE).count("1") & 1)) for b in key)


def _algorithm_name(algorithm: object) -> str:
    return getattr(algorithm, "name", None) or str(algorithm)


def generate_symmetric_key(algorithm: CryptographicAlgorithm, length_bits: int) -> bytes:
    """A fresh key for `algorithm`; lengths outside the algorithm's rules are refused rather than rounded."""
    if isinstance(length_bits, bool) or not isinstance(length_bits, int):
        raise BadParameters("key length must be an integer number of bits")
    if algorithm == CryptographicAlgorithm.AES:
        if length_bits not in AES_KEY_BITS:
            raise BadParameters("AES key length must be 128, 192 or 256 bits (512 for AES-256-XTS)")
    elif algorithm in CHACHA_ALGORITHMS:
        if length_bits != CHACHA_KEY_BITS:
            raise BadParameters(f"{_algorithm_name(algorithm)} key length must be 256 bits")
    elif algorithm in HMAC_ALGORITHMS:
        if length_bits < MIN_GENERATED_HMAC_BITS or length_bits % 8:
            raise BadParameters("HMAC key length must be a multiple of 8 bits and at least 128 bits")
    elif algorithm == CryptographicAlgorithm.DES3:
        if length_bits not in DES3_BITS:
            raise BadParameters("Triple DES key length must be 168 (or 192) bits")
        return _des_parity(random_bytes(24))
    else:
        raise BadParameters(f"cannot generate a symmetric key for algorithm {_algorithm_name(algorithm)}")
    return random_bytes(length_bits // 8)


def generate_secret(length_bytes: int) -> bytes:
    """Random bytes for secret data objects (seeds, passwords) that follow no algorithm's length rule."""
    if isinstance(length_bytes, bool) or not isinstance(length_bytes, int) or length_bytes <= 0:
        raise BadParameters("secret length must be a positive number of bytes")
    return random_bytes(length_bytes)


def validate_symmetric_key(algorithm: CryptographicAlgorithm, key: bytes, length_bits: int | None = None) -> None:
    """Refuse imported or stored key material whose size contradicts its algorithm or its declared length.

    The declared CryptographicLength is checked too, because a mismatch means the client and server disagree
    on what the key is, and silently trusting either side would produce ciphertext the other cannot read.
    """
    if not isinstance(key, bytes | bytearray | memoryview):
        raise BadParameters("key material must be bytes")
    size = len(key)
    if algorithm == CryptographicAlgorithm.DES3:
        if size != 24 or (length_bits is not None and length_bits not in DES3_BITS):
            raise BadParameters("Triple DES key must be 24 bytes (168 bits)")
        return
    if length_bits is not None and length_bits != size * 8:
        raise BadParameters(f"key is {size * 8} bits but its declared length is {length_bits} bits")
    if algorithm == CryptographicAlgorithm.AES:
        if size * 8 not in AES_KEY_BITS:
            raise BadParameters("AES key must be 16, 24 or 32 bytes (64 for AES-256-XTS)")
    elif algorithm in CHACHA_ALGORITHMS:
        if size != CHACHA_KEY_BITS // 8:
            raise BadParameters(f"{_algorithm_name(algorithm)} key must be 32 bytes")
    elif algorithm in HMAC_ALGORITHMS and size == 0:
        raise BadParameters("HMAC key must not be empty")
    elif algorithm in ASYMMETRIC_ALGORITHMS:
        raise BadParameters(f"unsupported symmetric key algorithm {_algorithm_name(algorithm)}")
    # Other symmetric algorithms are stored as given: the server is their key store, not their user.


def digest_sha256(data: bytes) -> bytes:
    """SHA-256 of key material, for the KMIP Digest attribute and cache keys that must not hold the key itself."""
    return hashlib.sha256(data).digest()
