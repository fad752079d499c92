"""Unit tests of kms.crypto.symmetric beyond the OASIS vectors: defaults, tampering, lengths, streaming, other modes.

Known-answer values come from the published standards (NIST SP 800-38A, IEEE 1619, RFC 3394, RFC 5649, RFC 8452).
"""

from __future__ import annotations

import pytest

from kms.crypto import symmetric
from kms.crypto.errors import BadParameters, CryptoError, MissingIV
from kms.crypto.symmetric import CipherMode, decrypt, encrypt, resolve_mode, start_decrypt, start_encrypt
from kms.kmip.attributes import CryptographicParameters as P
from kms.kmip.enums import BlockCipherMode as M
from kms.kmip.enums import CryptographicAlgorithm as A
from kms.kmip.enums import PaddingMethod

AES = A.AES
KEY128 = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")  # SP 800-38A
PT_BLOCK = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
SECRET_TEXT = b"attack at dawn, bring the secret plans" * 3


def _chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for n in sizes:
        out.append(data[i : i + n])
        i += n
    out.append(data[i:])
    return out


# -- defaults -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [None, P(), P(padding_method=PaddingMethod.None_), P(cryptographic_algorithm=AES)])
def test_aes_default_is_gcm_with_12_byte_iv_and_16_byte_tag(params: P | None) -> None:
    key = bytes(range(32))
    result = encrypt(key, AES, params, SECRET_TEXT)
    assert len(result.iv) == 12
    assert len(result.tag) == 16
    assert len(result.data) == len(SECRET_TEXT)
    assert decrypt(key, AES, params, result.data, result.iv, None, result.tag) == SECRET_TEXT
    # Explicit GCM gives the same ciphertext: the default really is GCM.
    again = encrypt(key, AES, P(block_cipher_mode=M.GCM), SECRET_TEXT, iv=result.iv)
    assert (again.data, again.tag) == (result.data, result.tag)


def test_padding_is_ignored_outside_cbc_and_ecb() -> None:
    key, iv = bytes(16), bytes(12)
    plain = encrypt(key, AES, P(block_cipher_mode=M.GCM), b"abc", iv)
    padded = encrypt(key, AES, P(block_cipher_mode=M.GCM, padding_method=PaddingMethod.PKCS5), b"abc", iv)
    assert padded == plain


def test_random_ivs_differ() -> None:
    key = bytes(16)
    assert encrypt(key, AES, None, b"x").iv != encrypt(key, AES, None, b"x").iv


def test_resolve_mode_choices() -> None:
    assert resolve_mode(AES, None).mode is CipherMode.AES_GCM
    assert resolve_mode(A.ChaCha20, None).mode is CipherMode.CHACHA20
    assert resolve_mode(A.ChaCha20, P(block_cipher_mode=M.AEAD)).mode is CipherMode.CHACHA20_POLY1305
    assert resolve_mode(A.ChaCha20, P(cryptographic_algorithm=A.ChaCha20Poly1305)).mode is CipherMode.CHACHA20_POLY1305
    assert resolve_mode(A.ChaCha20Poly1305, None).mode is CipherMode.CHACHA20_POLY1305
    assert resolve_mode(AES, P(block_cipher_mode=M.GCMSIV)).mode is CipherMode.AES_GCM_SIV
    spec = resolve_mode(AES, P(block_cipher_mode=M.CBC, padding_method=PaddingMethod.PKCS5))
    assert spec.mode is CipherMode.AES_CBC and spec.padding
    assert not resolve_mode(AES, P(block_cipher_mode=M.ECB)).padding


@pytest.mark.parametrize(
    ("algorithm", "params", "fragment"),
    [
        (A.HMACSHA256, None, "cannot be used for symmetric encryption"),
        (A.RSA, None, "cannot be used"),
        (AES, P(block_cipher_mode=M.CCM), "not supported"),
        (AES, P(cryptographic_algorithm=A.ChaCha20), "the key is AES"),
        (AES, P(block_cipher_mode=M.CBC, padding_method=PaddingMethod.ISO10126), "not supported"),
        (A.ChaCha20, P(block_cipher_mode=M.CBC), "does not apply"),
        (A.ChaCha20Poly1305, P(cryptographic_algorithm=A.ChaCha20), "Poly1305"),
        (AES, P(block_cipher_mode=M.GCM, tag_length=11), "between 12 and 16"),
        (AES, P(block_cipher_mode=M.GCM, tag_length=17), "between 12 and 16"),
        (AES, P(block_cipher_mode=M.GCMSIV, tag_length=12), "16 bytes"),
        (AES, P(block_cipher_mode=M.GCM, iv_length=60), "multiple of 8"),
        (AES, P(block_cipher_mode=M.CBC, iv_length=96), "16 bytes"),
        (AES, P(block_cipher_mode=M.CTR, counter_length=32), "CounterLength"),
        (AES, P(block_cipher_mode=M.GCM, initial_counter_value=1), "initial counter"),
    ],
)
def test_resolve_mode_refusals(algorithm: A, params: P | None, fragment: str) -> None:
    with pytest.raises(BadParameters, match=fragment):
        resolve_mode(algorithm, params)


# -- GCM ----------------------------------------------------------------------------------------------------------


def _gcm() -> tuple[bytes, bytes, symmetric.CipherResult]:
    key, aad = bytes(range(16)), b"header"
    return key, aad, encrypt(key, AES, P(block_cipher_mode=M.GCM), SECRET_TEXT, None, aad)


def test_gcm_tampering_fails_without_leaking() -> None:
    key, aad, r = _gcm()
    params = P(block_cipher_mode=M.GCM)
    flip = bytes([r.data[0] ^ 1]) + r.data[1:]
    cases = [
        (r.data, r.iv, aad, bytes([r.tag[0] ^ 1]) + r.tag[1:]),  # tag
        (flip, r.iv, aad, r.tag),  # ciphertext
        (r.data, r.iv, b"headex", r.tag),  # AAD
        (r.data, r.iv, None, r.tag),  # AAD dropped
        (r.data, bytes([r.iv[0] ^ 1]) + r.iv[1:], aad, r.tag),  # IV
    ]
    for data, iv, a, tag in cases:
        with pytest.raises(CryptoError, match="authentication failed") as info:
            decrypt(key, AES, params, data, iv, a, tag)
        text = str(info.value)
        assert key.hex() not in text and SECRET_TEXT.decode()[:10] not in text


def test_gcm_tag_length_truncates_and_verifies() -> None:
    key = bytes(16)
    full = encrypt(key, AES, P(block_cipher_mode=M.GCM), b"data", iv=bytes(12))
    short = encrypt(key, AES, P(block_cipher_mode=M.GCM, tag_length=12), b"data", iv=bytes(12))
    assert short.tag == full.tag[:12]
    assert decrypt(key, AES, P(block_cipher_mode=M.GCM, tag_length=12), short.data, short.iv, None, short.tag)
    # Without TagLength any tag of 12..16 bytes is accepted as given.
    assert decrypt(key, AES, None, short.data, short.iv, None, full.tag[:13]) == b"data"
    with pytest.raises(BadParameters, match="TagLength"):
        decrypt(key, AES, P(block_cipher_mode=M.GCM, tag_length=16), short.data, short.iv, None, short.tag)
    with pytest.raises(BadParameters, match="between 12 and 16"):
        decrypt(key, AES, None, short.data, short.iv, None, full.tag[:8])
    with pytest.raises(BadParameters, match="tag"):
        decrypt(key, AES, None, short.data, short.iv, None, None)


@pytest.mark.parametrize("n", [7, 129])
def test_gcm_iv_length_bounds(n: int) -> None:
    with pytest.raises(BadParameters, match="between 8 and 128"):
        encrypt(bytes(16), AES, None, b"x", iv=bytes(n))


def test_gcm_iv_length_param_and_random_iv() -> None:
    r = encrypt(bytes(16), AES, P(block_cipher_mode=M.GCM, iv_length=128), b"x")
    assert len(r.iv) == 16
    with pytest.raises(BadParameters, match="IVLength"):
        encrypt(bytes(16), AES, P(block_cipher_mode=M.GCM, iv_length=128), b"x", iv=bytes(12))
    r = encrypt(bytes(16), AES, P(block_cipher_mode=M.GCM, random_iv=True), b"x")
    assert len(r.iv) == 12
    with pytest.raises(BadParameters, match="RandomIV"):
        encrypt(bytes(16), AES, P(block_cipher_mode=M.GCM, random_iv=True), b"x", iv=bytes(12))
    with pytest.raises(MissingIV):
        encrypt(bytes(16), AES, P(block_cipher_mode=M.GCM, random_iv=False), b"x")


def test_missing_iv_on_decrypt_is_a_parameter_error() -> None:
    for params in (None, P(block_cipher_mode=M.CBC), P(block_cipher_mode=M.CTR), P(block_cipher_mode=M.XTS)):
        key = bytes(range(32)) if params and params.block_cipher_mode == M.XTS else bytes(16)
        with pytest.raises(MissingIV):
            decrypt(key, AES, params, bytes(32), None, None, bytes(16) if params is None else None)
    assert issubclass(MissingIV, BadParameters)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        (None, bytes(17)),
        (P(block_cipher_mode=M.CBC), bytes(64)),
        (P(block_cipher_mode=M.XTS), bytes(16)),
        (P(block_cipher_mode=M.XTS), bytes(24)),
        (P(block_cipher_mode=M.GCMSIV), bytes(24)),
        (P(block_cipher_mode=M.NISTKeyWrap), bytes(8)),
    ],
)
def test_wrong_aes_key_length(params: P | None, key: bytes) -> None:
    with pytest.raises(BadParameters, match="key must be"):
        encrypt(key, AES, params, bytes(32))


def test_wrong_chacha_key_length() -> None:
    with pytest.raises(BadParameters, match="32 bytes"):
        encrypt(bytes(16), A.ChaCha20, None, b"x")
    with pytest.raises(BadParameters, match="32 bytes"):
        decrypt(bytes(31), A.ChaCha20Poly1305, None, b"x", bytes(12), None, bytes(16))


def test_iv_aad_tag_where_they_do_not_belong() -> None:
    with pytest.raises(BadParameters, match="takes no IV"):
        encrypt(bytes(16), AES, P(block_cipher_mode=M.ECB), bytes(16), iv=bytes(16))
    with pytest.raises(BadParameters, match="AEAD"):
        encrypt(bytes(16), AES, P(block_cipher_mode=M.CBC), bytes(16), iv=bytes(16), aad=b"a")
    with pytest.raises(BadParameters, match="no authentication tag"):
        decrypt(bytes(16), AES, P(block_cipher_mode=M.ECB), bytes(16), tag=bytes(16))


# -- streaming ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[], [1], [5, 16, 0, 33], [16, 16, 16], [100, 2]])
def test_streaming_gcm_equals_one_shot(sizes: list[int]) -> None:
    key, iv, aad = bytes(range(16)), bytes(range(12)), b"aad"
    params = P(block_cipher_mode=M.GCM, tag_length=14)
    one = encrypt(key, AES, params, SECRET_TEXT, iv, aad)

    stream, used_iv = start_encrypt(key, AES, params, iv, aad)
    assert used_iv == iv
    out = b"".join(stream.update(c) for c in _chunks(SECRET_TEXT, sizes))
    last, tag = stream.finalize()
    assert (out + last, tag) == (one.data, one.tag)

    dec = start_decrypt(key, AES, params, iv, aad)
    held = b"".join(dec.update(c) for c in _chunks(one.data, sizes))
    assert held == b""  # nothing released before the tag is checked
    plain, none = dec.finalize(one.tag)
    assert (plain, none) == (SECRET_TEXT, None)

    bad = start_decrypt(key, AES, params, iv, aad)
    bad.update(one.data)
    with pytest.raises(CryptoError):
        bad.finalize(bytes([one.tag[0] ^ 0x80]) + one.tag[1:])


def test_streaming_gcm_generates_iv() -> None:
    stream, iv = start_encrypt(bytes(16), AES, None)
    data = stream.update(b"hello")
    last, tag = stream.finalize()
    assert len(iv) == 12 and len(tag) == 16
    assert decrypt(bytes(16), AES, None, data + last, iv, None, tag) == b"hello"


@pytest.mark.parametrize("sizes", [[], [1], [15, 1, 17], [16, 16, 16], [3, 3, 3, 3, 3, 3]])
@pytest.mark.parametrize("mode", [M.CBC, M.ECB])
def test_streaming_padded_block_modes_equal_one_shot(mode: M, sizes: list[int]) -> None:
    key = bytes(range(24))
    iv = bytes(16) if mode == M.CBC else None
    params = P(block_cipher_mode=mode, padding_method=PaddingMethod.PKCS5)
    one = encrypt(key, AES, params, SECRET_TEXT, iv)
    assert len(one.data) % 16 == 0 and len(one.data) > len(SECRET_TEXT)

    stream, _ = start_encrypt(key, AES, params, iv)
    out = b"".join(stream.update(c) for c in _chunks(SECRET_TEXT, sizes))
    last, tag = stream.finalize()
    assert out + last == one.data and tag is None

    dec = start_decrypt(key, AES, params, iv)
    plain = b"".join(dec.update(c) for c in _chunks(one.data, sizes))
    final, _ = dec.finalize()
    assert plain + final == SECRET_TEXT


def test_streaming_ctr_and_chacha20_equal_one_shot() -> None:
    for key, alg, params, iv in [
        (bytes(16), AES, P(block_cipher_mode=M.CTR), bytes(range(16))),
        (bytes(32), A.ChaCha20, None, bytes(12)),
        (bytes(32), A.ChaCha20, P(initial_counter_value=7), bytes(8)),
        (bytes(32), A.ChaCha20Poly1305, P(tag_length=13), bytes(12)),
    ]:
        one = encrypt(key, alg, params, SECRET_TEXT, iv, None)
        stream, _ = start_encrypt(key, alg, params, iv)
        out = b"".join(stream.update(c) for c in _chunks(SECRET_TEXT, [7, 64, 1]))
        last, tag = stream.finalize()
        assert (out + last, tag) == (one.data, one.tag)
        dec = start_decrypt(key, alg, params, iv)
        plain = b"".join(dec.update(c) for c in _chunks(one.data, [64, 7]))
        final, _ = dec.finalize(one.tag)
        assert plain + final == SECRET_TEXT


def test_streaming_refusals() -> None:
    with pytest.raises(BadParameters, match="streaming"):
        start_encrypt(bytes(32), AES, P(block_cipher_mode=M.XTS))
    with pytest.raises(BadParameters, match="streaming"):
        start_decrypt(bytes(16), AES, P(block_cipher_mode=M.AESKeyWrapPadding))
    stream, _ = start_encrypt(bytes(16), AES, None)
    stream.finalize()
    with pytest.raises(BadParameters, match="finalized"):
        stream.update(b"x")
    stream, _ = start_encrypt(bytes(16), AES, P(block_cipher_mode=M.CBC), bytes(16))
    stream.update(bytes(15))
    with pytest.raises(BadParameters, match="multiple of 16"):
        stream.finalize()


# -- block modes ---------------------------------------------------------------------------------------------------


def test_sp800_38a_known_answers() -> None:
    assert encrypt(KEY128, AES, P(block_cipher_mode=M.ECB), PT_BLOCK).data.hex() == "3ad77bb40d7a3660a89ecaf32466ef97"
    cbc = encrypt(KEY128, AES, P(block_cipher_mode=M.CBC), PT_BLOCK, bytes(range(16)))
    assert cbc.data.hex() == "7649abac8119b246cee98e9b12e9197d"
    ctr_iv = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    ctr = encrypt(KEY128, AES, P(block_cipher_mode=M.CTR), PT_BLOCK, ctr_iv)
    assert ctr.data.hex() == "874d6191b620e3261bef6864990db6ce"
    assert decrypt(KEY128, AES, P(block_cipher_mode=M.CTR), ctr.data, ctr_iv) == PT_BLOCK


def test_cbc_without_padding_needs_whole_blocks() -> None:
    with pytest.raises(BadParameters, match="multiple of 16"):
        encrypt(KEY128, AES, P(block_cipher_mode=M.CBC), b"short", bytes(16))
    with pytest.raises(BadParameters, match="multiple of 16"):
        decrypt(KEY128, AES, P(block_cipher_mode=M.CBC), bytes(17), bytes(16))


def test_cbc_bad_padding_is_a_crypto_error() -> None:
    params = P(block_cipher_mode=M.CBC, padding_method=PaddingMethod.PKCS5)
    # A block whose decryption does not end in valid PKCS#7 padding (under this key and IV).
    raw = encrypt(KEY128, AES, P(block_cipher_mode=M.CBC), bytes(15) + b"\x00", bytes(16)).data
    with pytest.raises(CryptoError, match="bad padding"):
        decrypt(KEY128, AES, params, raw, bytes(16))


def test_random_iv_for_cbc_and_ctr() -> None:
    for mode in (M.CBC, M.CTR):
        r = encrypt(KEY128, AES, P(block_cipher_mode=mode, padding_method=None), bytes(32))
        assert len(r.iv) == 16 and r.tag is None
        assert decrypt(KEY128, AES, P(block_cipher_mode=mode), r.data, r.iv) == bytes(32)


# -- XTS, GCM-SIV, key wrap ----------------------------------------------------------------------------------------


def test_xts_ieee1619_vector_4_and_round_trip() -> None:
    key = bytes.fromhex("2718281828459045235360287471352631415926535897932384626433832795")
    data = bytes(range(256)) * 2
    r = encrypt(key, AES, P(block_cipher_mode=M.XTS), data, bytes(16))
    assert r.data[:32].hex() == "27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c"
    assert decrypt(key, AES, P(block_cipher_mode=M.XTS), r.data, bytes(16)) == data


def test_xts_round_trip_random_tweak_and_limits() -> None:
    key = bytes(range(64))
    params = P(block_cipher_mode=M.XTS)
    r = encrypt(key, AES, params, b"seventeen bytes!!")
    assert len(r.iv) == 16 and r.tag is None and len(r.data) == 17
    assert decrypt(key, AES, params, r.data, r.iv) == b"seventeen bytes!!"
    with pytest.raises(BadParameters, match="at least 16"):
        encrypt(key, AES, params, bytes(15))
    with pytest.raises(BadParameters, match="halves"):
        encrypt(bytes(32), AES, params, bytes(16))
    with pytest.raises(BadParameters, match="16 bytes"):
        encrypt(key, AES, params, bytes(16), iv=bytes(12))


def test_gcm_siv_rfc8452_and_round_trip() -> None:
    key = bytes.fromhex("01000000000000000000000000000000")
    nonce = bytes.fromhex("030000000000000000000000")
    params = P(block_cipher_mode=M.GCMSIV)
    r = encrypt(key, AES, params, bytes.fromhex("0100000000000000"), nonce)
    assert (r.data + r.tag).hex() == "b5d839330ac7b786578782fff6013b815b287c22493a364c"
    assert decrypt(key, AES, params, r.data, nonce, None, r.tag) == bytes.fromhex("0100000000000000")

    key = bytes(range(32))
    r = encrypt(key, AES, params, SECRET_TEXT, aad=b"ctx")
    assert len(r.iv) == 12 and len(r.tag) == 16
    assert decrypt(key, AES, params, r.data, r.iv, b"ctx", r.tag) == SECRET_TEXT
    with pytest.raises(CryptoError):
        decrypt(key, AES, params, r.data, r.iv, b"cty", r.tag)


def test_rfc3394_vector() -> None:
    kek = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    data = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    params = P(block_cipher_mode=M.NISTKeyWrap)
    r = encrypt(kek, AES, params, data)
    assert r.data.hex() == "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5" and r.iv is None and r.tag is None
    assert decrypt(kek, AES, params, r.data) == data
    with pytest.raises(CryptoError, match="unwrap"):
        decrypt(kek, AES, params, bytes([r.data[0] ^ 1]) + r.data[1:])
    with pytest.raises(BadParameters, match="multiples of 8"):
        encrypt(kek, AES, params, bytes(20))


@pytest.mark.parametrize(
    ("key_hex", "wrapped_hex"),
    [
        (
            "c37b7e6492584340bed12207808941155068f738",
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
        ),
        ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
    ],
)
def test_rfc5649_vectors(key_hex: str, wrapped_hex: str) -> None:
    kek = bytes.fromhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
    params = P(block_cipher_mode=M.AESKeyWrapPadding)
    assert encrypt(kek, AES, params, bytes.fromhex(key_hex)).data.hex() == wrapped_hex
    assert decrypt(kek, AES, params, bytes.fromhex(wrapped_hex)).hex() == key_hex


@pytest.mark.parametrize("size", [1, 8, 9, 16, 31, 32, 64])
def test_rfc5649_round_trip(size: int) -> None:
    kek = bytes(range(32))
    params = P(block_cipher_mode=M.AESKeyWrapPadding)
    secret = bytes(range(100, 100 + size))
    wrapped = encrypt(kek, AES, params, secret).data
    assert len(wrapped) % 8 == 0 and len(wrapped) >= 16
    assert decrypt(kek, AES, params, wrapped) == secret
    with pytest.raises(CryptoError):
        decrypt(bytes(32), AES, params, wrapped)


# -- ChaCha20 ------------------------------------------------------------------------------------------------------


def test_chacha20_counter_layouts_agree_with_the_aead() -> None:
    # RFC 8439: the AEAD encrypts with the ChaCha20 block counter starting at 1.
    key, nonce = bytes(range(32)), bytes(range(12))
    sealed = encrypt(key, A.ChaCha20Poly1305, None, SECRET_TEXT, nonce)
    stream = encrypt(key, A.ChaCha20, P(initial_counter_value=1), SECRET_TEXT, nonce)
    assert stream.data == sealed.data and stream.tag is None
    block16 = encrypt(key, A.ChaCha20, None, SECRET_TEXT, (1).to_bytes(4, "little") + nonce)
    assert block16.data == sealed.data
    with pytest.raises(BadParameters, match="16-byte"):
        encrypt(key, A.ChaCha20, P(initial_counter_value=1), b"x", bytes(16))
    with pytest.raises(BadParameters, match="32 bits"):
        encrypt(key, A.ChaCha20, P(initial_counter_value=1 << 32), b"x", bytes(12))
    with pytest.raises(BadParameters, match="8, 12 or 16"):
        encrypt(key, A.ChaCha20, None, b"x", bytes(10))


def test_chacha20_poly1305_truncated_tag_and_tampering() -> None:
    key, nonce, aad = bytes(range(32)), bytes(12), b"aad"
    full = encrypt(key, A.ChaCha20Poly1305, None, SECRET_TEXT, nonce, aad)
    assert len(full.tag) == 16
    short = encrypt(key, A.ChaCha20Poly1305, P(tag_length=12), SECRET_TEXT, nonce, aad)
    assert short.tag == full.tag[:12]
    assert decrypt(key, A.ChaCha20Poly1305, P(tag_length=12), short.data, nonce, aad, short.tag) == SECRET_TEXT
    for params, tag in ((None, full.tag), (P(tag_length=12), short.tag)):
        with pytest.raises(CryptoError):
            decrypt(key, A.ChaCha20Poly1305, params, short.data, nonce, b"aae", tag)
        with pytest.raises(CryptoError):
            decrypt(key, A.ChaCha20Poly1305, params, b"\x00" + short.data[1:], nonce, aad, tag)
    with pytest.raises(BadParameters, match="12 bytes"):
        encrypt(key, A.ChaCha20Poly1305, None, b"x", bytes(8))
