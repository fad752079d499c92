"""AWS Nitro Enclaves attestation document: COSE_Sign1 around a CBOR payload (spec/attestation.md §4).

Outer: `[protected: bstr, unprotected: map, payload: bstr, signature: bstr]`, untagged (as every real document)
or wrapped in CBOR tag 18. The protected header must be exactly `{1: -35}` (ES384) and the signature 96 bytes
(r || s, big-endian). The payload is a CBOR map with text keys, in AWS order: module_id, digest, timestamp
(milliseconds since the epoch), pcrs (index -> digest), certificate (DER), cabundle (DER list, root first),
public_key, user_data, nonce (each a bstr, null, or absent).

Byte-exact both ways: the parser keeps the original payload bytes (the signature covers them) and accepts only
input that its own serialiser reproduces exactly, i.e. CBOR in preferred serialisation (shortest heads, definite
lengths, no duplicate keys). `NitroDocument.from_bytes(b).to_bytes() == b` and
`NitroPayload.from_bytes(p).to_bytes() == p` for every accepted input. The payload's key order (AWS order in real
documents) and unknown payload keys are kept so that this holds; nulls and absent optional fields are told apart.

Limits (AWS nsm-api CDDL / validation rules): pcrs 1..32 entries, indices 0..31, each value as long as the digest
(SHA256 32, SHA384 48, SHA512 64 bytes); certificate and every cabundle entry 1..1024 bytes; cabundle non-empty;
public_key 1..1024 bytes; user_data and nonce 0..1024 bytes (the CDDL bound; the validation text says 512, the
NSM itself refuses more than 512, so a real document never exceeds either).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import cbor2

from attestation.errors import FormatError

COSE_SIGN1_TAG = 18
ALG_ES384 = -35
PROTECTED_ES384 = b"\xa1\x01\x38\x22"  # {1: -35}
SIGNATURE_SIZE = 96
MAX_DOCUMENT_SIZE = 256 * 1024
DIGEST_SIZES = {"SHA256": 32, "SHA384": 48, "SHA512": 64}
MAX_PCRS = 32
MAX_CERT_SIZE = 1024
MAX_PUBLIC_KEY_SIZE = 1024
MAX_USER_DATA_SIZE = 1024
MAX_NONCE_SIZE = 1024

REQUIRED_FIELDS = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
OPTIONAL_FIELDS = ("public_key", "user_data", "nonce")
AWS_KEY_ORDER = REQUIRED_FIELDS + OPTIONAL_FIELDS


def cbor_loads_exact(data: bytes, field: str) -> Any:
    """One CBOR item that spans all of `data` (cbor2.loads alone ignores trailing bytes)."""
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(fp).decode()
    except Exception as exc:  # cbor2 raises CBORDecodeError, but also ValueError/TypeError/RecursionError...
        raise FormatError(field, f"not valid CBOR ({type(exc).__name__}: {exc})") from None
    if fp.tell() != len(data):
        raise FormatError(field, f"{len(data) - fp.tell()} trailing bytes after the CBOR item")
    return value


def _dumps(value: Any, field: str) -> bytes:
    try:
        return cbor2.dumps(value)
    except Exception as exc:
        raise FormatError(field, f"cannot be encoded as CBOR ({type(exc).__name__}: {exc})") from None


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes a COSE_Sign1 signature covers: `["Signature1", protected, b"", payload]` (RFC 9052 §4.4)."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bstr(v: object, field: str, lo: int, hi: int) -> bytes:
    if not isinstance(v, bytes):
        raise FormatError(field, f"must be a byte string, not {type(v).__name__}")
    if not lo <= len(v) <= hi:
        raise FormatError(field, f"{len(v)} bytes, must be {lo}..{hi}")
    return v


def _optional_bstr(payload: dict[str, Any], name: str, lo: int, hi: int) -> bytes | None:
    v = payload.get(name)
    return None if v is None else _bstr(v, name, lo, hi)


@dataclasses.dataclass(frozen=True)
class NitroPayload:
    """The signed attestation payload.

    absent: names of optional fields missing from the map (as opposed to present with value null).
    key_order: the map's keys in their encoded order. extra: unknown keys with their decoded values.
    """

    module_id: str
    digest: str
    timestamp: int  # milliseconds since the Unix epoch
    pcrs: tuple[tuple[int, bytes], ...]
    certificate: bytes
    cabundle: tuple[bytes, ...]  # root first
    public_key: bytes | None = None
    user_data: bytes | None = None
    nonce: bytes | None = None
    absent: frozenset[str] = frozenset()
    key_order: tuple[str, ...] = AWS_KEY_ORDER
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def time(self) -> datetime:
        """The document timestamp as an aware UTC datetime (millisecond precision)."""
        seconds, millis = divmod(self.timestamp, 1000)
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000)

    def pcr(self, index: int) -> bytes | None:
        for i, value in self.pcrs:
            if i == index:
                return value
        return None

    def as_map(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "module_id": self.module_id,
            "digest": self.digest,
            "timestamp": self.timestamp,
            "pcrs": dict(self.pcrs),
            "certificate": self.certificate,
            "cabundle": list(self.cabundle),
            "public_key": self.public_key,
            "user_data": self.user_data,
            "nonce": self.nonce,
            **dict(self.extra),
        }
        order = list(self.key_order)
        order += [k for k in values if k not in order and k not in self.absent]
        return {k: values[k] for k in order if k not in self.absent}

    def to_bytes(self) -> bytes:
        return _dumps(self.as_map(), "payload")

    @classmethod
    def from_bytes(cls, data: bytes) -> NitroPayload:
        payload = cbor_loads_exact(data, "payload")
        out = cls.from_map(payload)
        if out.to_bytes() != data:
            raise FormatError("payload", "not in preferred CBOR serialisation (duplicate keys, long heads, ...)")
        return out

    @classmethod
    def from_map(cls, payload: object) -> NitroPayload:
        if not isinstance(payload, Mapping):
            raise FormatError("payload", f"must be a CBOR map, not {type(payload).__name__}")
        for key in payload:
            if not isinstance(key, str):
                raise FormatError("payload", f"map key {key!r} is not a text string")
        for name in REQUIRED_FIELDS:
            if name not in payload:
                raise FormatError(name, "missing")

        module_id = payload["module_id"]
        if not isinstance(module_id, str) or not module_id:
            raise FormatError("module_id", "must be a non-empty text string")
        digest = payload["digest"]
        if not isinstance(digest, str) or digest not in DIGEST_SIZES:
            raise FormatError("digest", f"{digest!r} is not one of {', '.join(DIGEST_SIZES)}")
        timestamp = payload["timestamp"]
        if not _is_int(timestamp) or not 0 < timestamp < 2**64:
            raise FormatError("timestamp", f"must be a positive integer (milliseconds), not {timestamp!r}")

        raw_pcrs = payload["pcrs"]
        if not isinstance(raw_pcrs, Mapping):
            raise FormatError("pcrs", f"must be a map, not {type(raw_pcrs).__name__}")
        if not 1 <= len(raw_pcrs) <= MAX_PCRS:
            raise FormatError("pcrs", f"{len(raw_pcrs)} entries, must be 1..{MAX_PCRS}")
        pcrs = []
        for index, value in raw_pcrs.items():
            if not _is_int(index) or not 0 <= index < MAX_PCRS:
                raise FormatError("pcrs", f"index {index!r} is not an integer 0..{MAX_PCRS - 1}")
            size = DIGEST_SIZES[digest]
            pcrs.append((index, _bstr(value, f"pcrs[{index}]", size, size)))

        certificate = _bstr(payload["certificate"], "certificate", 1, MAX_CERT_SIZE)
        raw_bundle = payload["cabundle"]
        if not isinstance(raw_bundle, list | tuple) or not raw_bundle:
            raise FormatError("cabundle", "must be a non-empty array")
        cabundle = tuple(_bstr(c, f"cabundle[{i}]", 1, MAX_CERT_SIZE) for i, c in enumerate(raw_bundle))

        known = set(AWS_KEY_ORDER)
        return cls(
            module_id=module_id,
            digest=digest,
            timestamp=timestamp,
            pcrs=tuple(pcrs),
            certificate=certificate,
            cabundle=cabundle,
            public_key=_optional_bstr(payload, "public_key", 1, MAX_PUBLIC_KEY_SIZE),
            user_data=_optional_bstr(payload, "user_data", 0, MAX_USER_DATA_SIZE),
            nonce=_optional_bstr(payload, "nonce", 0, MAX_NONCE_SIZE),
            absent=frozenset(name for name in OPTIONAL_FIELDS if name not in payload),
            key_order=tuple(payload),
            extra=tuple((k, v) for k, v in payload.items() if k not in known),
        )


@dataclasses.dataclass(frozen=True)
class NitroDocument:
    """A parsed attestation document. `payload_bytes` are the exact signed bytes; `payload` their decoding."""

    protected: bytes
    unprotected: Mapping[Any, Any]
    payload_bytes: bytes
    signature: bytes
    payload: NitroPayload
    tagged: bool = False

    def signed_bytes(self) -> bytes:
        return sig_structure(self.protected, self.payload_bytes)

    def to_bytes(self) -> bytes:
        body = [self.protected, dict(self.unprotected), self.payload_bytes, self.signature]
        return _dumps(cbor2.CBORTag(COSE_SIGN1_TAG, body) if self.tagged else body, "document")

    @classmethod
    def from_bytes(cls, data: bytes) -> NitroDocument:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise FormatError("document", f"must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if len(data) > MAX_DOCUMENT_SIZE:
            raise FormatError("document", f"{len(data)} bytes, more than {MAX_DOCUMENT_SIZE}")
        outer = cbor_loads_exact(data, "document")
        tagged = False
        if isinstance(outer, cbor2.CBORTag):
            if outer.tag != COSE_SIGN1_TAG:
                raise FormatError("document", f"CBOR tag {outer.tag}, not {COSE_SIGN1_TAG} (COSE_Sign1)")
            tagged, outer = True, outer.value
        if not isinstance(outer, list | tuple) or len(outer) != 4:
            raise FormatError("document", "COSE_Sign1 must be an array of 4 items")
        protected, unprotected, payload_bytes, signature = outer

        if not isinstance(protected, bytes):
            raise FormatError("protected", "must be a byte string")
        header = cbor_loads_exact(protected, "protected")
        if header != {1: ALG_ES384} or protected != PROTECTED_ES384:
            raise FormatError("protected", f"must be {{1: -35}} (ES384) in preferred encoding, not {header!r}")
        if not isinstance(unprotected, Mapping):  # cbor2 gives a frozendict inside a tag
            raise FormatError("unprotected", "must be a map")
        if not isinstance(payload_bytes, bytes):
            raise FormatError("payload", "must be a byte string")
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
            size = len(signature) if isinstance(signature, bytes) else type(signature).__name__
            raise FormatError("signature", f"must be {SIGNATURE_SIZE} bytes (ES384 r || s), not {size}")

        doc = cls(protected, unprotected, payload_bytes, signature, NitroPayload.from_bytes(payload_bytes), tagged)
        if doc.to_bytes() != data:
            raise FormatError("document", "not in preferred CBOR serialisation (re-encoding differs)")
        return doc


def decode_text(text: str | bytes) -> bytes:
    """The document bytes from their base64 text form (whitespace ignored; standard or URL-safe alphabet)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError("document", "base64 text must be ASCII") from None
    compact = "".join(text.split())
    if "-" in compact or "_" in compact:
        compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError("document", f"not base64 ({exc})") from None


def load(data: bytes | str) -> NitroDocument:
    """Parse a document given as raw CBOR bytes or as base64 text (as AWS SDKs and the samples carry it)."""
    if isinstance(data, bytes | bytearray) and data[:1] in (b"\x84", b"\xd2"):
        return NitroDocument.from_bytes(bytes(data))
    return NitroDocument.from_bytes(decode_text(data if isinstance(data, str) else bytes(data)))


def parse(data: bytes) -> NitroDocument:
    return NitroDocument.from_bytes(data)
