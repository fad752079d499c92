"""HMAC / CMAC and digests with published known answers (RFC 4231, RFC 4493, FIPS 180-4 / 202 examples)."""

from __future__ import annotations

import pytest

from kms.crypto.errors import BadParameters
from kms.crypto.hashing import digest, start_hash
from kms.crypto.mac import mac, mac_verify, start_mac
from kms.kmip.attributes import CryptographicParameters as P
from kms.kmip.enums import BlockCipherMode, HashingAlgorithm
from kms.kmip.enums import CryptographicAlgorithm as A

JEFE = b"Jefe"
QUESTION = b"what do ya want for nothing?"
RFC4231_2_SHA256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
RFC4231_2_SHA512 = (
    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
    "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
)


def test_hmac_from_key_algorithm() -> None:
    assert mac(JEFE, A.HMACSHA256, None, QUESTION).hex() == RFC4231_2_SHA256
    assert mac(JEFE, A.HMACSHA512, P(), QUESTION).hex() == RFC4231_2_SHA512


def test_hmac_from_parameters_overrides_key() -> None:
    assert mac(JEFE, A.HMACSHA256, P(cryptographic_algorithm=A.HMACSHA512), QUESTION).hex() == RFC4231_2_SHA512
    assert mac(JEFE, A.AES, P(cryptographic_algorithm=A.HMACSHA256), QUESTION).hex() == RFC4231_2_SHA256
    assert mac(JEFE, A.AES, P(hashing_algorithm=HashingAlgorithm.SHA_256), QUESTION).hex() == RFC4231_2_SHA256
    # An encryption mode merged in from the key's registered parameters does not change the MAC.
    assert mac(JEFE, A.HMACSHA256, P(block_cipher_mode=BlockCipherMode.GCM), QUESTION).hex() == RFC4231_2_SHA256


@pytest.mark.parametrize(
    ("algorithm", "params", "fragment"),
    [
        (A.AES, None, "no MAC algorithm"),
        (A.RSA, P(cryptographic_algorithm=A.HMACSHA256), "cannot be used for MAC"),
        (A.HMACSHA256, P(cryptographic_algorithm=A.AES), "not a MAC algorithm"),
        (A.HMACSHA256, P(block_cipher_mode=BlockCipherMode.CMAC), "AES key"),
        (A.AES, P(hashing_algorithm=HashingAlgorithm.MD5), "unsupported"),
    ],
)
def test_mac_refusals(algorithm: A, params: P | None, fragment: str) -> None:
    with pytest.raises(BadParameters, match=fragment):
        mac(JEFE, algorithm, params, QUESTION)


def test_empty_mac_key_refused() -> None:
    with pytest.raises(BadParameters, match="empty"):
        mac(b"", A.HMACSHA256, None, QUESTION)


def test_aes_cmac_rfc4493() -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    msg = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    params = P(block_cipher_mode=BlockCipherMode.CMAC)
    assert mac(key, A.AES, params, msg).hex() == "070a16b46b4d4144f79bdd9dd04a287c"
    assert mac(key, A.AES, params, b"").hex() == "bb1d6929e95937287fa37d129b756746"


def test_mac_verify_constant_time_semantics() -> None:
    good = bytes.fromhex(RFC4231_2_SHA256)
    assert mac_verify(JEFE, A.HMACSHA256, None, QUESTION, good)
    assert not mac_verify(JEFE, A.HMACSHA256, None, QUESTION, bytes([good[0] ^ 1]) + good[1:])
    assert not mac_verify(JEFE, A.HMACSHA256, None, QUESTION, good[:16])
    assert not mac_verify(JEFE, A.HMACSHA256, None, QUESTION + b"!", good)


def test_streaming_mac_equals_one_shot() -> None:
    stream = start_mac(JEFE, A.HMACSHA256, None)
    for part in (b"what do ", b"", b"ya want for nothing?"):
        stream.update(part)
    assert stream.finalize().hex() == RFC4231_2_SHA256
    with pytest.raises(BadParameters, match="finalized"):
        stream.update(b"x")
    verifier = start_mac(JEFE, A.HMACSHA256, None)
    verifier.update(QUESTION)
    assert verifier.verify(bytes.fromhex(RFC4231_2_SHA256))


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (HashingAlgorithm.SHA_1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (HashingAlgorithm.SHA_256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (HashingAlgorithm.SHA_512_256, "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"),
        (HashingAlgorithm.SHA3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
        (A.SHA3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
    ],
)
def test_digest_known_answers(algorithm: HashingAlgorithm | A, expected: str) -> None:
    assert digest(algorithm, b"abc").hex() == expected
    stream = start_hash(algorithm)
    stream.update(b"a")
    stream.update(b"bc")
    assert stream.finalize().hex() == expected


@pytest.mark.parametrize(
    "algorithm",
    [
        HashingAlgorithm.SHA_224,
        HashingAlgorithm.SHA_384,
        HashingAlgorithm.SHA_512,
        HashingAlgorithm.SHA_512_224,
        HashingAlgorithm.SHA3_224,
        HashingAlgorithm.SHA3_384,
        HashingAlgorithm.SHA3_512,
        A.SHA3_224,
        A.SHA3_512,
    ],
)
def test_digest_lengths(algorithm: HashingAlgorithm | A) -> None:
    bits = int("".join(ch for ch in algorithm.name.split("_")[-1] if ch.isdigit()))
    assert len(digest(algorithm, b"abc")) * 8 == bits


@pytest.mark.parametrize("algorithm", [HashingAlgorithm.MD5, HashingAlgorithm.RIPEMD_160, A.AES, A.SHAKE_128, 6])
def test_digest_refused(algorithm: object) -> None:
    with pytest.raises(BadParameters):
        digest(algorithm, b"abc")  # type: ignore[arg-type]
