"""Message digests for the KMIP Hash operation, named either by HashingAlgorithm or by CryptographicAlgorithm.

KMIP names SHA-3 in both enumerations (HashingAlgorithm.SHA3_256 and CryptographicAlgorithm.SHA3_256, with
different numeric values), so the enum class decides the meaning of a value; bare integers are refused.
Broken digests (MD2/MD4/MD5) are refused: nothing in the server needs them and offering them invites misuse.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

from kms.crypto.errors import BadParameters
from kms.kmip.enums import CryptographicAlgorithm, HashingAlgorithm

_BY_HASHING_ALGORITHM: dict[HashingAlgorithm, type[hashes.HashAlgorithm]] = {
    HashingAlgorithm.SHA_1: hashes.SHA1,
    HashingAlgorithm.SHA_224: hashes.SHA224,
    HashingAlgorithm.SHA_256: hashes.SHA256,
    HashingAlgorithm.SHA_384: hashes.SHA384,
    HashingAlgorithm.SHA_512: hashes.SHA512,
    HashingAlgorithm.SHA_512_224: hashes.SHA512_224,
    HashingAlgorithm.SHA_512_256: hashes.SHA512_256,
    HashingAlgorithm.SHA3_224: hashes.SHA3_224,
    HashingAlgorithm.SHA3_256: hashes.SHA3_256,
    HashingAlgorithm.SHA3_384: hashes.SHA3_384,
    HashingAlgorithm.SHA3_512: hashes.SHA3_512,
}

_BY_CRYPTOGRAPHIC_ALGORITHM: dict[CryptographicAlgorithm, type[hashes.HashAlgorithm]] = {
    CryptographicAlgorithm.SHA3_224: hashes.SHA3_224,
    CryptographicAlgorithm.SHA3_256: hashes.SHA3_256,
    CryptographicAlgorithm.SHA3_384: hashes.SHA3_384,
    CryptographicAlgorithm.SHA3_512: hashes.SHA3_512,
}


def hash_algorithm(algorithm: HashingAlgorithm | CryptographicAlgorithm) -> hashes.HashAlgorithm:
    """The `cryptography` hash for a KMIP name; shared with HMAC and signatures so all agree on what is supported."""
    if isinstance(algorithm, HashingAlgorithm):
        cls = _BY_HASHING_ALGORITHM.get(algorithm)
    elif isinstance(algorithm, CryptographicAlgorithm):
        cls = _BY_CRYPTOGRAPHIC_ALGORITHM.get(algorithm)
    else:
        raise BadParameters("hashing algorithm must be a HashingAlgorithm or CryptographicAlgorithm")
    if cls is None:
        raise BadParameters(f"unsupported hashing algorithm {algorithm.name}")
    return cls()


def digest(algorithm: HashingAlgorithm | CryptographicAlgorithm, data: bytes) -> bytes:
    """One-shot digest of `data`."""
    h = hashes.Hash(hash_algorithm(algorithm))
    h.update(data)
    return h.finalize()


class HashStream:
    """A digest fed over several KMIP requests (InitIndicator / FinalIndicator) without holding all the data."""

    __slots__ = ("_hash",)

    def __init__(self, algorithm: HashingAlgorithm | CryptographicAlgorithm) -> None:
        self._hash: hashes.Hash | None = hashes.Hash(hash_algorithm(algorithm))

    def update(self, data: bytes) -> None:
        if self._hash is None:
            raise BadParameters("hash stream already finalized")
        self._hash.update(data)

    def finalize(self) -> bytes:
        if self._hash is None:
            raise BadParameters("hash stream already finalized")
        h, self._hash = self._hash, None
        return h.finalize()


def start_hash(algorithm: HashingAlgorithm | CryptographicAlgorithm) -> HashStream:
    """Begin a streaming digest; the algorithm is checked now so the first request already fails if unsupported."""
    return HashStream(algorithm)
