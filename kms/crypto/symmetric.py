"""Symmetric encryption for the KMIP Encrypt and Decrypt operations, one-shot and streaming.

KMIP leaves most choices to the server, so the rules live here in one place (`resolve_mode`):
- an AES key with no BlockCipherMode means AES-GCM with a 12-byte random IV and a 16-byte tag: the Cosmian
  clients send Encrypt without parameters and expect exactly that;
- a missing PaddingMethod means no padding for CBC and ECB, as in the OASIS vectors CS-BC-M-4..7 (16 bytes in,
  16 bytes out); PKCS5 is applied as PKCS#7 over 16-byte blocks; other modes ignore PaddingMethod;
- TagLength is in bytes, IVLength in bits (KMIP definitions); an AEAD tag may be truncated to 12..16 bytes;
- a ChaCha20 key encrypts with the bare stream cipher unless ChaCha20-Poly1305 (algorithm or BlockCipherMode AEAD)
  is asked for; a ChaCha20Poly1305 key is always used with its authenticator;
- ChaCha20 nonces of 8 bytes (original Bernstein layout, 64-bit counter, as in the OASIS CS-BC-M-CHACHA20
  vectors), 12 bytes (RFC 8439, 32-bit counter) or 16 bytes (counter and nonce as one block, `cryptography`'s own
  layout) are accepted; the counter starts at InitialCounterValue, default 0.

Authenticated decryption never hands out plaintext before the tag has been checked: streaming AEAD decryptors
hold their output until `finalize` verifies the tag.
"""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import keywrap, padding
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV, ChaCha20Poly1305
from cryptography.hazmat.primitives.poly1305 import Poly1305

from kms.crypto.errors import BadParameters, CryptoError, MissingIV
from kms.crypto.rng import random_bytes
from kms.kmip.attributes import CryptographicParameters
from kms.kmip.enums import BlockCipherMode, CryptographicAlgorithm, PaddingMethod

BLOCK = 16
DEFAULT_TAG_LENGTH = 16
MIN_TAG_LENGTH = 12
GCM_IV_MIN, GCM_IV_MAX = 8, 128


class CipherMode(Enum):
    """The concrete constructions this module performs (the value is the name used in error messages)."""

    AES_GCM = "AES-GCM"
    AES_GCM_SIV = "AES-GCM-SIV"
    AES_XTS = "AES-XTS"
    AES_CBC = "AES-CBC"
    AES_ECB = "AES-ECB"
    AES_CTR = "AES-CTR"
    AES_KEY_WRAP = "AES key wrap (RFC 3394)"
    AES_KEY_WRAP_PAD = "AES key wrap with padding (RFC 5649)"
    CHACHA20 = "ChaCha20"
    CHACHA20_POLY1305 = "ChaCha20-Poly1305"


_AEAD = frozenset({CipherMode.AES_GCM, CipherMode.AES_GCM_SIV, CipherMode.CHACHA20_POLY1305})
_STREAMABLE = frozenset(
    {
        CipherMode.AES_GCM,
        CipherMode.AES_CBC,
        CipherMode.AES_ECB,
        CipherMode.AES_CTR,
        CipherMode.CHACHA20,
        CipherMode.CHACHA20_POLY1305,
    }
)
# IV / nonce length a mode generates, in bytes; modes absent here take no IV.
_DEFAULT_IV = {
    CipherMode.AES_GCM: 12,
    CipherMode.AES_GCM_SIV: 12,
    CipherMode.AES_XTS: 16,
    CipherMode.AES_CBC: 16,
    CipherMode.AES_CTR: 16,
    CipherMode.CHACHA20: 12,
    CipherMode.CHACHA20_POLY1305: 12,
}
_AES_MODES = {
    BlockCipherMode.GCM: CipherMode.AES_GCM,
    BlockCipherMode.GCMSIV: CipherMode.AES_GCM_SIV,
    BlockCipherMode.XTS: CipherMode.AES_XTS,
    BlockCipherMode.CBC: CipherMode.AES_CBC,
    BlockCipherMode.ECB: CipherMode.AES_ECB,
    BlockCipherMode.CTR: CipherMode.AES_CTR,
    BlockCipherMode.NISTKeyWrap: CipherMode.AES_KEY_WRAP,
    BlockCipherMode.AESKeyWrapPadding: CipherMode.AES_KEY_WRAP_PAD,
}
_AES_KEY_SIZES = {
    CipherMode.AES_XTS: ((32, 64), "AES-XTS key must be 32 or 64 bytes (two AES keys)"),
    CipherMode.AES_GCM_SIV: ((16, 32), "AES-GCM-SIV key must be 16 or 32 bytes"),
}


def _name(value: object) -> str:
    return str(getattr(value, "name", None) or value)


@dataclass(frozen=True, slots=True)
class CipherResult:
    data: bytes
    iv: bytes | None
    tag: bytes | None


@dataclass(frozen=True, slots=True)
class CipherSpec:
    """The cipher a request resolves to; computed once so one-shot and streaming paths apply the same rules."""

    mode: CipherMode
    padding: bool = False
    tag_length: int | None = None  # bytes, AEAD only
    tag_length_given: bool = False  # the caller fixed TagLength, so a decryption tag must have exactly that length
    iv_length: int | None = None  # bytes generated when no IV is given; None: the mode takes no IV
    iv_length_given: bool = False
    random_iv: bool | None = None
    initial_counter: int | None = None

    @property
    def aead(self) -> bool:
        return self.mode in _AEAD

    @property
    def takes_iv(self) -> bool:
        return self.iv_length is not None

    @property
    def streamable(self) -> bool:
        return self.mode in _STREAMABLE


def resolve_mode(algorithm: CryptographicAlgorithm, params: CryptographicParameters | None) -> CipherSpec:
    """Turn a key's algorithm and the request's CryptographicParameters into one cipher, or refuse clearly."""
    p = params if params is not None else CryptographicParameters()
    requested = p.cryptographic_algorithm
    mode = p.block_cipher_mode

    if algorithm == CryptographicAlgorithm.AES:
        if requested not in (None, CryptographicAlgorithm.AES):
            raise BadParameters(f"the parameters ask for {_name(requested)} but the key is AES")
        if mode is None:
            cipher = CipherMode.AES_GCM
        elif mode in _AES_MODES:
            cipher = _AES_MODES[mode]
        else:
            raise BadParameters(f"block cipher mode {_name(mode)} is not supported with AES")
    elif algorithm in (CryptographicAlgorithm.ChaCha20, CryptographicAlgorithm.ChaCha20Poly1305):
        if requested not in (None, CryptographicAlgorithm.ChaCha20, CryptographicAlgorithm.ChaCha20Poly1305):
            raise BadParameters(f"the parameters ask for {_name(requested)} but the key is {_name(algorithm)}")
        if mode not in (None, BlockCipherMode.AEAD):
            raise BadParameters(f"block cipher mode {_name(mode)} does not apply to ChaCha20")
        if algorithm == CryptographicAlgorithm.ChaCha20Poly1305 and requested == CryptographicAlgorithm.ChaCha20:
            raise BadParameters("a ChaCha20Poly1305 key is only used with its Poly1305 authenticator")
        aead = (
            algorithm == CryptographicAlgorithm.ChaCha20Poly1305
            or requested == CryptographicAlgorithm.ChaCha20Poly1305
            or mode == BlockCipherMode.AEAD
        )
        cipher = CipherMode.CHACHA20_POLY1305 if aead else CipherMode.CHACHA20
    else:
        raise BadParameters(f"a {_name(algorithm)} key cannot be used for symmetric encryption")

    # Padding only means something for CBC and ECB. Elsewhere it is ignored rather than refused, because the
    # parameters are often the request's merged over those registered with the key (e.g. CBC/PKCS5 + GCM).
    pad = False
    if cipher in (CipherMode.AES_CBC, CipherMode.AES_ECB) and p.padding_method not in (None, PaddingMethod.None_):
        if p.padding_method != PaddingMethod.PKCS5:
            raise BadParameters(f"padding method {_name(p.padding_method)} is not supported; use PKCS5 or None")
        pad = True

    tag_length: int | None = None
    if cipher in _AEAD:
        tag_length = DEFAULT_TAG_LENGTH if p.tag_length is None else p.tag_length
        if cipher == CipherMode.AES_GCM_SIV:
            if tag_length != DEFAULT_TAG_LENGTH:
                raise BadParameters("AES-GCM-SIV tag length must be 16 bytes")
        elif not MIN_TAG_LENGTH <= tag_length <= DEFAULT_TAG_LENGTH:
            label = "GCM" if cipher == CipherMode.AES_GCM else "ChaCha20-Poly1305"
            raise BadParameters(f"{label} tag length must be between 12 and 16 bytes")

    iv_length = _DEFAULT_IV.get(cipher)
    iv_length_given = False
    if iv_length is not None and p.iv_length is not None:
        bits = p.iv_length
        if bits <= 0 or bits % 8:
            raise BadParameters("IV length must be a positive multiple of 8 bits")
        n = bits // 8
        if cipher == CipherMode.AES_GCM:
            if not GCM_IV_MIN <= n <= GCM_IV_MAX:
                raise BadParameters("GCM IV must be between 8 and 128 bytes")
        elif cipher == CipherMode.CHACHA20:
            if n not in (8, 12, 16):
                raise BadParameters("ChaCha20 nonce must be 8, 12 or 16 bytes")
        elif n != iv_length:
            raise BadParameters(f"{cipher.value} IV must be {iv_length} bytes")
        iv_length, iv_length_given = n, True

    counter = p.initial_counter_value
    if counter is not None and cipher != CipherMode.CHACHA20:
        raise BadParameters(f"an initial counter value is not supported with {cipher.value}")
    if counter is not None and counter < 0:
        raise BadParameters("initial counter value must not be negative")
    if cipher == CipherMode.AES_CTR and p.counter_length not in (None, 128):
        raise BadParameters("AES-CTR uses the whole 16-byte IV as its counter: CounterLength must be 128")

    return CipherSpec(
        mode=cipher,
        padding=pad,
        tag_length=tag_length,
        tag_length_given=cipher in _AEAD and p.tag_length is not None,
        iv_length=iv_length,
        iv_length_given=iv_length_given,
        random_iv=p.random_iv,
        initial_counter=counter,
    )


# ---------------------------------------------------------------------------------------------------------------
# checks shared by every path


def _check_key(spec: CipherSpec, key: bytes) -> None:
    if not isinstance(key, bytes | bytearray | memoryview):
        raise BadParameters("key material must be bytes")
    if spec.mode in (CipherMode.CHACHA20, CipherMode.CHACHA20_POLY1305):
        if len(key) != 32:
            raise BadParameters("ChaCha20 key must be 32 bytes")
        return
    sizes, message = _AES_KEY_SIZES.get(spec.mode, ((16, 24, 32), "AES key must be 16, 24 or 32 bytes"))
    if len(key) not in sizes:
        raise BadParameters(message)


def _check_iv(spec: CipherSpec, iv: bytes) -> None:
    n = len(iv)
    if spec.mode == CipherMode.AES_GCM:
        if not GCM_IV_MIN <= n <= GCM_IV_MAX:
            raise BadParameters("GCM IV must be between 8 and 128 bytes")
    elif spec.mode == CipherMode.CHACHA20:
        if n not in (8, 12, 16):
            raise BadParameters("ChaCha20 nonce must be 8, 12 or 16 bytes")
    elif n != spec.iv_length:
        raise BadParameters(f"{spec.mode.value} IV must be {spec.iv_length} bytes")
    if spec.iv_length_given and n != spec.iv_length:
        raise BadParameters(f"IV is {n * 8} bits but IVLength is {(spec.iv_length or 0) * 8} bits")


def _encrypt_iv(spec: CipherSpec, iv: bytes | None) -> bytes | None:
    """The IV to encrypt with: the caller's (checked), or a fresh random one, never both (KMIP RandomIV)."""
    if not spec.takes_iv:
        if iv:
            raise BadParameters(f"{spec.mode.value} takes no IV")
        return None
    if not iv:
        if spec.random_iv is False:
            raise MissingIV(f"{spec.mode.value} needs an IV when RandomIV is false")
        assert spec.iv_length is not None
        return random_bytes(spec.iv_length)
    if spec.random_iv:
        raise BadParameters("an IV must not be given when RandomIV is set")
    iv = bytes(iv)
    _check_iv(spec, iv)
    return iv


def _decrypt_iv(spec: CipherSpec, iv: bytes | None) -> bytes | None:
    if not spec.takes_iv:
        if iv:
            raise BadParameters(f"{spec.mode.value} takes no IV")
        return None
    if not iv:
        raise MissingIV(f"{spec.mode.value} decryption needs the IV, counter or nonce used to encrypt")
    iv = bytes(iv)
    _check_iv(spec, iv)
    return iv


def _check_aad(spec: CipherSpec, aad: bytes | None) -> bytes | None:
    if not aad:
        return None
    if not spec.aead:
        raise BadParameters(f"{spec.mode.value} is not an AEAD mode: additional authenticated data cannot be used")
    return bytes(aad)


def _check_tag(spec: CipherSpec, tag: bytes | None) -> bytes:
    if not spec.aead:
        if tag:
            raise BadParameters(f"{spec.mode.value} takes no authentication tag")
        return b""
    if not tag:
        raise BadParameters(f"{spec.mode.value} decryption needs the authentication tag")
    tag = bytes(tag)
    if spec.tag_length_given:
        if len(tag) != spec.tag_length:
            raise BadParameters(f"authentication tag is {len(tag)} bytes but TagLength is {spec.tag_length}")
    elif spec.mode == CipherMode.AES_GCM_SIV:
        if len(tag) != DEFAULT_TAG_LENGTH:
            raise BadParameters("AES-GCM-SIV tag length must be 16 bytes")
    elif not MIN_TAG_LENGTH <= len(tag) <= DEFAULT_TAG_LENGTH:
        raise BadParameters("authentication tag must be between 12 and 16 bytes")
    return tag


def _chacha_nonce(nonce: bytes, counter: int | None) -> bytes:
    """`cryptography`'s 16-byte ChaCha20 nonce: the little-endian block counter followed by the caller's nonce."""
    c = counter or 0
    if len(nonce) == 16:
        if counter is not None:
            raise BadParameters("a 16-byte ChaCha20 nonce already holds the counter: give no initial counter value")
        return nonce
    width = 16 - len(nonce)  # 8 bytes of counter for a 64-bit nonce, 4 for a 96-bit one
    if c >= 1 << (8 * width):
        raise BadParameters(f"initial counter value does not fit in {width * 8} bits")
    return c.to_bytes(width, "little") + nonce


def _aes_cipher(spec: CipherSpec, key: bytes, iv: bytes | None, decrypt: bool = False) -> Cipher[modes.Mode]:
    mode: modes.Mode
    if spec.mode == CipherMode.AES_GCM:
        assert iv is not None
        mode = modes.GCM(iv, min_tag_length=MIN_TAG_LENGTH) if decrypt else modes.GCM(iv)
    elif spec.mode == CipherMode.AES_CBC:
        assert iv is not None
        mode = modes.CBC(iv)
    elif spec.mode == CipherMode.AES_CTR:
        assert iv is not None
        mode = modes.CTR(iv)
    elif spec.mode == CipherMode.AES_ECB:
        mode = modes.ECB()
    elif spec.mode == CipherMode.AES_XTS:
        assert iv is not None
        mode = modes.XTS(iv)
    else:  # pragma: no cover - guarded by the callers
        raise BadParameters(f"{spec.mode.value} is not a block cipher mode")
    return Cipher(algorithms.AES(key), mode)


# ---------------------------------------------------------------------------------------------------------------
# streaming


class CipherStream(ABC):
    """Common shape of the streaming contexts: `update` as data arrives, `finalize` once at the end."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = False

    def _check_open(self) -> None:
        if self._done:
            raise BadParameters("cipher stream already finalized")

    @abstractmethod
    def update(self, data: bytes) -> bytes:
        """Process the next chunk; returns whatever output is ready (possibly nothing)."""

    @abstractmethod
    def finalize(self, tag: bytes | None = None) -> tuple[bytes, bytes | None]:
        """Finish; returns the last output and, when encrypting with an AEAD, the tag."""


class StreamingEncryptor(CipherStream):
    """Encryption over several KMIP requests (InitIndicator ... FinalIndicator)."""

    __slots__ = ()


class StreamingDecryptor(CipherStream):
    """Decryption over several KMIP requests; AEAD output is held back until the tag has been verified."""

    __slots__ = ()


class _LibraryEncryptor(StreamingEncryptor):
    __slots__ = ("_ctx", "_padder", "_tag_length")

    def __init__(self, ctx: CipherContext, padder: padding.PaddingContext | None, tag_length: int | None) -> None:
        super().__init__()
        self._ctx = ctx
        self._padder = padder
        self._tag_length = tag_length

    def update(self, data: bytes) -> bytes:
        self._check_open()
        if self._padder is not None:
            data = self._padder.update(data)
        return self._ctx.update(data)

    def finalize(self, tag: bytes | None = None) -> tuple[bytes, bytes | None]:
        self._check_open()
        if tag:
            raise BadParameters("an authentication tag is only given when decrypting")
        self._done = True
        out = b""
        if self._padder is not None:
            out = self._ctx.update(self._padder.finalize())
        try:
            out += self._ctx.finalize()
        except ValueError:
            raise BadParameters("data length must be a multiple of 16 bytes when no padding is used") from None
        if self._tag_length is None:
            return out, None
        return out, self._ctx.tag[: self._tag_length]  # type: ignore[attr-defined]


class _LibraryDecryptor(StreamingDecryptor):
    __slots__ = ("_ctx", "_held", "_release", "_spec", "_unpadder")

    def __init__(self, ctx: CipherContext, spec: CipherSpec, release_unverified: bool = False) -> None:
        super().__init__()
        self._ctx = ctx
        self._spec = spec
        self._unpadder = padding.PKCS7(BLOCK * 8).unpadder() if spec.padding else None
        self._held: list[bytes] | None = [] if spec.aead else None
        self._release = release_unverified

    def update(self, data: bytes) -> bytes:
        self._check_open()
        out = self._ctx.update(data)
        if self._unpadder is not None:
            out = self._unpadder.update(out)
        if self._held is not None and not self._release:
            self._held.append(out)
            return b""
        return out

    def finalize(self, tag: bytes | None = None) -> tuple[bytes, bytes | None]:
        self._check_open()
        checked = _check_tag(self._spec, tag)
        self._done = True
        if self._held is not None:
            try:
                out = self._ctx.finalize_with_tag(checked)  # type: ignore[attr-defined]
            except InvalidTag:
                raise CryptoError("authentication failed") from None
            return b"".join(self._held) + out, None
        try:
            out = self._ctx.finalize()
        except ValueError:
            raise BadParameters("ciphertext length must be a multiple of 16 bytes") from None
        if self._unpadder is not None:
            try:
                out = self._unpadder.update(out) + self._unpadder.finalize()
            except ValueError:
                raise CryptoError("bad padding") from None
        return out, None


def _chacha_poly_contexts(key: bytes, nonce: bytes) -> tuple[Poly1305, Cipher[None]]:
    """RFC 8439 §2.8 built from its parts: Poly1305 keyed by keystream block 0, encryption from block 1.

    Used for streaming and for tags truncated below 16 bytes (OASIS CS-BC-M-CHACHA20POLY1305-1 decrypts with a
    12-byte tag), neither of which `cryptography`'s one-shot ChaCha20Poly1305 offers.
    """
    one_time_key = Cipher(algorithms.ChaCha20(key, bytes(4) + nonce), None).encryptor().update(bytes(32))
    cipher = Cipher(algorithms.ChaCha20(key, (1).to_bytes(4, "little") + nonce), None)
    return Poly1305(one_time_key), cipher


def _pad16(n: int) -> bytes:
    return bytes(-n % 16)


class _ChaChaPolyEncryptor(StreamingEncryptor):
    __slots__ = ("_aad_len", "_ctx", "_n", "_poly", "_tag_length")

    def __init__(self, key: bytes, nonce: bytes, aad: bytes | None, tag_length: int) -> None:
        super().__init__()
        self._poly, cipher = _chacha_poly_contexts(key, nonce)
        self._ctx = cipher.encryptor()
        aad = aad or b""
        self._poly.update(aad + _pad16(len(aad)))
        self._aad_len = len(aad)
        self._n = 0
        self._tag_length = tag_length

    def update(self, data: bytes) -> bytes:
        self._check_open()
        out = self._ctx.update(data)
        self._poly.update(out)
        self._n += len(out)
        return out

    def finalize(self, tag: bytes | None = None) -> tuple[bytes, bytes | None]:
        self._check_open()
        if tag:
            raise BadParameters("an authentication tag is only given when decrypting")
        self._done = True
        out = self._ctx.finalize()
        self._poly.update(_pad16(self._n) + self._aad_len.to_bytes(8, "little") + self._n.to_bytes(8, "little"))
        return out, self._poly.finalize()[: self._tag_length]


class _ChaChaPolyDecryptor(StreamingDecryptor):
    __slots__ = ("_aad_len", "_ctx", "_held", "_n", "_poly", "_release", "_spec")

    def __init__(
        self, key: bytes, nonce: bytes, aad: bytes | None, spec: CipherSpec, release_unverified: bool = False
    ) -> None:
        super().__init__()
        self._poly, cipher = _chacha_poly_contexts(key, nonce)
        self._ctx = cipher.decryptor()
        aad = aad or b""
        self._poly.update(aad + _pad16(len(aad)))
        self._aad_len = len(aad)
        self._n = 0
        self._held: list[bytes] = []
        self._spec = spec
        self._release = release_unverified

    def update(self, data: bytes) -> bytes:
        self._check_open()
        self._poly.update(data)
        self._n += len(data)
        out = self._ctx.update(data)
        if self._release:
            return out
        self._held.append(out)
        return b""

    def finalize(self, tag: bytes | None = None) -> tuple[bytes, bytes | None]:
        self._check_open()
        checked = _check_tag(self._spec, tag)
        self._done = True
        self._poly.update(_pad16(self._n) + self._aad_len.to_bytes(8, "little") + self._n.to_bytes(8, "little"))
        expected = self._poly.finalize()[: len(checked)]
        if not hmac.compare_digest(expected, checked):
            self._held.clear()
            raise CryptoError("authentication failed")
        return b"".join(self._held) + self._ctx.finalize(), None


def _require_streamable(spec: CipherSpec) -> None:
    if not spec.streamable:
        raise BadParameters(f"{spec.mode.value} cannot be used in streaming mode")


def _start_encrypt(
    spec: CipherSpec, key: bytes, iv: bytes | None, aad: bytes | None
) -> tuple[StreamingEncryptor, bytes | None]:
    if spec.mode == CipherMode.CHACHA20_POLY1305:
        assert iv is not None and spec.tag_length is not None
        return _ChaChaPolyEncryptor(key, iv, aad, spec.tag_length), iv
    if spec.mode == CipherMode.CHACHA20:
        assert iv is not None
        ctx = Cipher(algorithms.ChaCha20(key, _chacha_nonce(iv, spec.initial_counter)), None).encryptor()
        return _LibraryEncryptor(ctx, None, None), iv
    ctx = _aes_cipher(spec, key, iv).encryptor()
    if aad is not None:
        ctx.authenticate_additional_data(aad)  # type: ignore[attr-defined]
    padder = padding.PKCS7(BLOCK * 8).padder() if spec.padding else None
    return _LibraryEncryptor(ctx, padder, spec.tag_length), iv


def _start_decrypt(
    spec: CipherSpec, key: bytes, iv: bytes | None, aad: bytes | None, release_unverified: bool = False
) -> StreamingDecryptor:
    if spec.mode == CipherMode.CHACHA20_POLY1305:
        assert iv is not None
        return _ChaChaPolyDecryptor(key, iv, aad, spec, release_unverified)
    if spec.mode == CipherMode.CHACHA20:
        assert iv is not None
        ctx = Cipher(algorithms.ChaCha20(key, _chacha_nonce(iv, spec.initial_counter)), None).decryptor()
        return _LibraryDecryptor(ctx, spec)
    ctx = _aes_cipher(spec, key, iv, decrypt=True).decryptor()
    if aad is not None:
        ctx.authenticate_additional_data(aad)  # type: ignore[attr-defined]
    return _LibraryDecryptor(ctx, spec, release_unverified)


def start_encrypt(
    key: bytes,
    key_algorithm: CryptographicAlgorithm,
    params: CryptographicParameters | None,
    iv: bytes | None = None,
    aad: bytes | None = None,
) -> tuple[StreamingEncryptor, bytes | None]:
    """Begin a streaming encryption; returns the stream and the IV actually used (generated if none was given)."""
    spec = resolve_mode(key_algorithm, params)
    _require_streamable(spec)
    _check_key(spec, key)
    aad = _check_aad(spec, aad)
    return _start_encrypt(spec, bytes(key), _encrypt_iv(spec, iv), aad)


def start_decrypt(
    key: bytes,
    key_algorithm: CryptographicAlgorithm,
    params: CryptographicParameters | None,
    iv: bytes | None = None,
    aad: bytes | None = None,
    release_unverified: bool = False,
) -> StreamingDecryptor:
    """Begin a streaming decryption; the AEAD tag is given to `finalize`.

    By default AEAD plaintext is held until the tag verifies. A server streaming a large file cannot hold it
    all: with `release_unverified` each update returns its plaintext at once and only `finalize` says whether
    it was authentic, so the caller must discard everything it received if `finalize` raises.
    """
    spec = resolve_mode(key_algorithm, params)
    _require_streamable(spec)
    _check_key(spec, key)
    aad = _check_aad(spec, aad)
    return _start_decrypt(spec, bytes(key), _decrypt_iv(spec, iv), aad, release_unverified)


# ---------------------------------------------------------------------------------------------------------------
# one-shot


def encrypt(
    key: bytes,
    key_algorithm: CryptographicAlgorithm,
    params: CryptographicParameters | None,
    data: bytes,
    iv: bytes | None = None,
    aad: bytes | None = None,
) -> CipherResult:
    """Encrypt `data` in one call; the result carries the IV used (to return to the client) and the AEAD tag."""
    spec = resolve_mode(key_algorithm, params)
    _check_key(spec, key)
    key = bytes(key)
    data = bytes(data)
    aad = _check_aad(spec, aad)
    used_iv = _encrypt_iv(spec, iv)

    if spec.streamable:
        stream, used_iv = _start_encrypt(spec, key, used_iv, aad)
        out = stream.update(data)
        last, tag = stream.finalize()
        return CipherResult(out + last, used_iv, tag)

    if spec.mode == CipherMode.AES_GCM_SIV:
        assert used_iv is not None
        sealed = AESGCMSIV(key).encrypt(used_iv, data, aad)
        return CipherResult(sealed[:-DEFAULT_TAG_LENGTH], used_iv, sealed[-DEFAULT_TAG_LENGTH:])
    if spec.mode == CipherMode.AES_XTS:
        if len(data) < BLOCK:
            raise BadParameters("AES-XTS data must be at least 16 bytes")
        ctx = _xts_context(key, used_iv, decrypt=False)
        return CipherResult(ctx.update(data) + ctx.finalize(), used_iv, None)
    if spec.mode == CipherMode.AES_KEY_WRAP:
        if len(data) < 16 or len(data) % 8:
            raise BadParameters("RFC 3394 key wrap needs at least 16 bytes of data, in multiples of 8")
        return CipherResult(keywrap.aes_key_wrap(key, data), None, None)
    if spec.mode == CipherMode.AES_KEY_WRAP_PAD:
        if not data:
            raise BadParameters("RFC 5649 key wrap needs at least one byte of data")
        return CipherResult(keywrap.aes_key_wrap_with_padding(key, data), None, None)
    raise BadParameters(f"{spec.mode.value} is not supported")  # pragma: no cover


def _xts_context(key: bytes, tweak: bytes | None, decrypt: bool) -> CipherContext:
    assert tweak is not None
    cipher = Cipher(algorithms.AES(key), modes.XTS(tweak))
    try:
        return cipher.decryptor() if decrypt else cipher.encryptor()
    except ValueError:
        # The only remaining reason once lengths are checked: both halves of the key are equal, which XTS forbids.
        raise BadParameters("AES-XTS key halves must differ") from None


def decrypt(
    key: bytes,
    key_algorithm: CryptographicAlgorithm,
    params: CryptographicParameters | None,
    data: bytes,
    iv: bytes | None = None,
    aad: bytes | None = None,
    tag: bytes | None = None,
) -> bytes:
    """Decrypt `data` in one call; authentication or padding failures raise CryptoError and reveal nothing."""
    spec = resolve_mode(key_algorithm, params)
    _check_key(spec, key)
    key = bytes(key)
    data = bytes(data)
    aad = _check_aad(spec, aad)
    used_iv = _decrypt_iv(spec, iv)

    if spec.mode == CipherMode.CHACHA20_POLY1305:
        checked = _check_tag(spec, tag)
        assert used_iv is not None
        if len(checked) == DEFAULT_TAG_LENGTH:
            try:
                return ChaCha20Poly1305(key).decrypt(used_iv, data + checked, aad)
            except InvalidTag:
                raise CryptoError("authentication failed") from None
    if spec.streamable:
        stream = _start_decrypt(spec, key, used_iv, aad)
        out = stream.update(data)
        last, _ = stream.finalize(tag)
        return out + last

    if spec.mode == CipherMode.AES_GCM_SIV:
        checked = _check_tag(spec, tag)
        assert used_iv is not None
        try:
            return AESGCMSIV(key).decrypt(used_iv, data + checked, aad)
        except InvalidTag:
            raise CryptoError("authentication failed") from None
    _check_tag(spec, tag)
    if spec.mode == CipherMode.AES_XTS:
        if len(data) < BLOCK:
            raise BadParameters("AES-XTS data must be at least 16 bytes")
        ctx = _xts_context(key, used_iv, decrypt=True)
        return ctx.update(data) + ctx.finalize()
    if spec.mode == CipherMode.AES_KEY_WRAP:
        if len(data) < 24 or len(data) % 8:
            raise BadParameters("RFC 3394 wrapped data must be at least 24 bytes, in multiples of 8")
        try:
            return keywrap.aes_key_unwrap(key, data)
        except keywrap.InvalidUnwrap:
            raise CryptoError("key unwrap failed: integrity check mismatch") from None
    if spec.mode == CipherMode.AES_KEY_WRAP_PAD:
        if len(data) < 16 or len(data) % 8:
            raise BadParameters("RFC 5649 wrapped data must be at least 16 bytes, in multiples of 8")
        try:
            return keywrap.aes_key_unwrap_with_padding(key, data)
        except keywrap.InvalidUnwrap:
            raise CryptoError("key unwrap failed: integrity check mismatch") from None
    raise BadParameters(f"{spec.mode.value} is not supported")  # pragma: no cover
