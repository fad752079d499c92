"""Message authentication codes for the KMIP MAC and MACVerify operations.

The MAC algorithm is taken from the request's CryptographicParameters when they name one, else from the key's own
CryptographicAlgorithm. The OASIS vectors (CS-AC-M-4..6) register an AES key and ask for HMAC-SHA256 through
its parameters, so an AES key may serve as an HMAC key; an AES key with BlockCipherMode CMAC gives AES-CMAC.
"""

from __future__ import annotations

import hmac as _hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives import hmac as _chmac
from cryptography.hazmat.primitives.ciphers import algorithms

from kms.crypto.errors import BadParameters
from kms.crypto.hashing import hash_algorithm
from kms.crypto.keys import HMAC_ALGORITHMS
from kms.kmip.attributes import CryptographicParameters
from kms.kmip.enums import BlockCipherMode, CryptographicAlgorithm

_HMAC_HASH: dict[CryptographicAlgorithm, type[hashes.HashAlgorithm]] = {
    CryptographicAlgorithm.HMACSHA1: hashes.SHA1,
    CryptographicAlgorithm.HMACSHA224: hashes.SHA224,
    CryptographicAlgorithm.HMACSHA256: hashes.SHA256,
    CryptographicAlgorithm.HMACSHA384: hashes.SHA384,
    CryptographicAlgorithm.HMACSHA512: hashes.SHA512,
    CryptographicAlgorithm.HMACSHA3_224: hashes.SHA3_224,
    CryptographicAlgorithm.HMACSHA3_256: hashes.SHA3_256,
    CryptographicAlgorithm.HMACSHA3_384: hashes.SHA3_384,
    CryptographicAlgorithm.HMACSHA3_512: hashes.SHA3_512,
}
# Keys whose material may be used as a MAC key: dedicated HMAC keys, and AES keys (the OASIS profile does so).
_MAC_KEY_ALGORITHMS = HMAC_ALGORITHMS | {CryptographicAlgorithm.AES}


@dataclass(frozen=True, slots=True)
class MacSpec:
    """What `mac` will compute, resolved once so streaming and one-shot MACs cannot disagree."""

    cmac: bool
    hash: hashes.HashAlgorithm | None

    @property
    def name(self) -> str:
        return "AES-CMAC" if self.cmac else f"HMAC-{self.hash.name.upper() if self.hash else '?'}"


def resolve_mac(algorithm: CryptographicAlgorithm, params: CryptographicParameters | None) -> MacSpec:
    """Pick the MAC from the request parameters first, then the key's algorithm; refuse anything ambiguous."""
    if algorithm not in _MAC_KEY_ALGORITHMS:
        raise BadParameters(f"a {getattr(algorithm, 'name', algorithm)} key cannot be used for MAC")
    requested = params.cryptographic_algorithm if params is not None else None
    mode = params.block_cipher_mode if params is not None else None
    # Only CMAC selects a block-cipher MAC; any other mode (typically merged from the key's registered encryption
    # parameters) says nothing about the MAC and is ignored.
    if mode == BlockCipherMode.CMAC:
        if algorithm != CryptographicAlgorithm.AES or requested not in (None, CryptographicAlgorithm.AES):
            raise BadParameters("CMAC needs an AES key")
        return MacSpec(cmac=True, hash=None)
    if requested is not None:
        if requested not in _HMAC_HASH:
            raise BadParameters(f"{requested.name} is not a MAC algorithm")
        return MacSpec(cmac=False, hash=_HMAC_HASH[requested]())
    if algorithm in _HMAC_HASH:
        return MacSpec(cmac=False, hash=_HMAC_HASH[algorithm]())
    hashing = params.hashing_algorithm if params is not None else None
    if hashing is not None:
        return MacSpec(cmac=False, hash=hash_algorithm(hashing))
    raise BadParameters("no MAC algorithm given: set CryptographicAlgorithm (e.g. HMACSHA256) in the parameters")


class MacStream:
    """A MAC computed over several KMIP requests (InitIndicator / FinalIndicator)."""

    __slots__ = ("_ctx",)

    def __init__(self, key: bytes, spec: MacSpec) -> None:
        if not key:
            raise BadParameters("MAC key must not be empty")
        self._ctx: _chmac.HMAC | cmac.CMAC | None
        if spec.cmac:
            if len(key) not in (16, 24, 32):
                raise BadParameters("AES key must be 16, 24 or 32 bytes")
            self._ctx = cmac.CMAC(algorithms.AES(key))
        else:
            assert spec.hash is not None
            self._ctx = _chmac.HMAC(key, spec.hash)

    def update(self, data: bytes) -> None:
        if self._ctx is None:
            raise BadParameters("MAC stream already finalized")
        self._ctx.update(data)

    def finalize(self) -> bytes:
        if self._ctx is None:
            raise BadParameters("MAC stream already finalized")
        ctx, self._ctx = self._ctx, None
        return ctx.finalize()

    def verify(self, mac_data: bytes) -> bool:
        """Finish and compare in constant time, so a caller cannot learn how many leading bytes matched."""
        return _hmac.compare_digest(self.finalize(), bytes(mac_data))


def start_mac(key: bytes, algorithm: CryptographicAlgorithm, params: CryptographicParameters | None) -> MacStream:
    """Begin a streaming MAC; parameters are checked now so the first request already fails if unsupported."""
    return MacStream(key, resolve_mac(algorithm, params))


def mac(key: bytes, algorithm: CryptographicAlgorithm, params: CryptographicParameters | None, data: bytes) -> bytes:
    """One-shot MAC of `data` with `key`, whose CryptographicAlgorithm is `algorithm`."""
    stream = start_mac(key, algorithm, params)
    stream.update(data)
    return stream.finalize()


def mac_verify(
    key: bytes,
    algorithm: CryptographicAlgorithm,
    params: CryptographicParameters | None,
    data: bytes,
    mac_data: bytes,
) -> bool:
    """True when `mac_data` is the MAC of `data`; constant-time comparison, a wrong length is simply False."""
    stream = start_mac(key, algorithm, params)
    stream.update(data)
    return stream.verify(mac_data)
