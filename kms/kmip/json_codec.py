"""JSON TTLV codec: the OASIS JSON profile, plus the Cosmian dialect that `ckms` and the Cosmian clients speak.

Parsing accepts every form either side writes (any key order, optional Structure type, hex tags, mask names
joined by '|', hex Booleans and DateTimes, both enum spellings, `IvCounterNonce`). Emitting writes
`tag`, `type`, `value` in that order with OASIS names, upper-case hex ByteStrings and whole-second UTC times.
The Cosmian dialect differs where its clients insist (see spec/kmip.md §6): the managed object in Get and Export
responses sits under the tag "Object", the nonce is spelt "IvCounterNonce", and enumeration values use the
spellings their parser matches exactly (SHA256, PKCS1, Item_Not_Found; table COSMIAN_NAMES in kms.kmip.enums).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from kms.kmip import registry
from kms.kmip.enums import ObjectType, Operation
from kms.kmip.errors import invalid_message
from kms.kmip.tags import Tag
from kms.kmip.ttlv import DATETIME_MAX, DATETIME_MIN, PSEUDO_BASE_RESPONSE, PSEUDO_OBJECT, TTLV, ItemType

MAX_DEPTH = 32

_TYPE_BY_NAME = {t.name: t for t in ItemType}
_I32 = (-(2**31), 2**31 - 1)
_U32 = (0, 2**32 - 1)
_I64 = (-(2**63), 2**63 - 1)


class Dialect(Enum):
    OASIS = "oasis"
    COSMIAN = "cosmian"


# Responses whose managed object the Cosmian clients read under the tag "Object".
_OBJECT_PARENTS = {PSEUDO_BASE_RESPONSE + Operation.Get, PSEUDO_BASE_RESPONSE + Operation.Export}
_OBJECT_TAG_BY_TYPE = {
    ObjectType.Certificate: Tag.Certificate,
    ObjectType.SymmetricKey: Tag.SymmetricKey,
    ObjectType.PublicKey: Tag.PublicKey,
    ObjectType.PrivateKey: Tag.PrivateKey,
    ObjectType.SplitKey: Tag.SplitKey,
    ObjectType.SecretData: Tag.SecretData,
    ObjectType.OpaqueObject: Tag.OpaqueObject,
    ObjectType.PGPKey: Tag.PGPKey,
    ObjectType.CertificateRequest: Tag.CertificateRequest,
}
_OBJECT_TAGS = {
    Tag.Certificate,
    Tag.SymmetricKey,
    Tag.PublicKey,
    Tag.PrivateKey,
    Tag.SplitKey,
    Tag.SecretData,
    Tag.OpaqueObject,
    Tag.PGPKey,
    Tag.CertificateRequest,
}


# --------------------------------------------------------------------------------------------------- parsing


def parse_json(text: str | bytes) -> Any:
    """The JSON document, or InvalidMessage (what the server answers when the body is not JSON at all)."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_message(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise invalid_message("malformed JSON: nested too deeply") from None


def loads(text: str | bytes) -> TTLV:
    return from_json(parse_json(text))


def from_json(obj: Any, depth: int = 0) -> TTLV:
    if not isinstance(obj, dict):
        raise invalid_message(f"a TTLV item must be a JSON object, got {type(obj).__name__}")
    name = obj.get("tag")
    if not isinstance(name, str):
        raise invalid_message("a TTLV item needs a string 'tag'")
    tag = registry.tag_from_name(name)
    type_name = obj.get("type", "Structure")
    item_type = _TYPE_BY_NAME.get(type_name) if isinstance(type_name, str) else None
    if item_type is None:
        raise invalid_message(f"{name}: unknown type {str(type_name)[:32]!r}")
    if "value" not in obj:
        raise invalid_message(f"{name}: missing 'value'")
    value = obj["value"]
    if item_type is ItemType.Structure:
        if depth >= MAX_DEPTH:
            raise invalid_message(f"{name}: structures nested deeper than {MAX_DEPTH}")
        if value is None:
            return TTLV(tag, item_type, [])
        if not isinstance(value, list):
            raise invalid_message(f"{name}: a Structure value must be a list")
        return TTLV(tag, item_type, [from_json(child, depth + 1) for child in value])
    return TTLV(tag, item_type, _parse_scalar(tag, name, item_type, value))


def _hex_int(name: str, text: str, bits: int, signed: bool) -> int:
    digits = text[2:]
    if not digits or len(digits) > bits // 4 or not _HEX.match(digits):
        raise invalid_message(f"{name}: bad hex value {text[:40]!r}")
    try:
        v = int(digits, 16)
    except ValueError:
        raise invalid_message(f"{name}: bad hex value {text[:40]!r}") from None
    if signed and len(digits) == bits // 4 and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def _ranged(name: str, v: Any, bounds: tuple[int, int], type_name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise invalid_message(f"{name}: {type_name} must be a number or 0x hex string")
    if not bounds[0] <= v <= bounds[1]:
        raise invalid_message(f"{name}: {v} is out of range for {type_name}")
    return v


def _parse_scalar(tag: int, name: str, t: ItemType, v: Any) -> Any:
    if t is ItemType.Integer:
        if isinstance(v, str):
            if v[:2] in ("0x", "0X") and "|" not in v:
                # 8 hex digits per the profile; Cosmian also accepts 16 holding a 32-bit value.
                return _ranged(name, _hex_int(name, v, 64 if len(v) > 10 else 32, True), _I32, "Integer")
            return registry.mask_from_names(tag, v, "|")
        return _ranged(name, v, _I32, "Integer")
    if t is ItemType.Enumeration:
        if isinstance(v, str):
            if v[:2] in ("0x", "0X"):
                return _hex_int(name, v, 32, False)
            return registry.enum_from_name(tag, v)
        return _ranged(name, v, _U32, "Enumeration")
    if t is ItemType.TextString:
        if not isinstance(v, str):
            raise invalid_message(f"{name}: TextString must be a JSON string")
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise invalid_message(f"{name}: TextString is not valid Unicode (lone surrogate)") from None
        return v
    if t is ItemType.ByteString:
        if not isinstance(v, str):
            raise invalid_message(f"{name}: ByteString must be a hex string")
        if v[:2] in ("0x", "0X"):
            v = v[2:]
        try:
            return bytes.fromhex(v)
        except ValueError:
            raise invalid_message(f"{name}: ByteString is not valid hex") from None
    if t is ItemType.Boolean:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v[:2] in ("0x", "0X"):
            n = _hex_int(name, v, 64, False)
            if n in (0, 1):
                return n == 1
        raise invalid_message(f"{name}: Boolean must be true, false or 0x hex 0/1")
    if t is ItemType.LongInteger:
        if isinstance(v, str) and v[:2] in ("0x", "0X"):
            return _hex_int(name, v, 32 if len(v) <= 10 else 64, True)
        return _ranged(name, v, _I64, "LongInteger")
    if t is ItemType.BigInteger:
        if isinstance(v, str) and v[:2] in ("0x", "0X"):
            return big_from_hex(name, v[2:])
        if isinstance(v, bool) or not isinstance(v, int):
            raise invalid_message(f"{name}: BigInteger must be a number or 0x hex string")
        return v
    if t is ItemType.DateTime:
        return parse_datetime(name, v)
    if t is ItemType.Interval:
        if isinstance(v, str) and v[:2] in ("0x", "0X"):
            return _hex_int(name, v, 32, False)
        return _ranged(name, v, _U32, "Interval")
    # DateTimeExtended
    if isinstance(v, str) and v[:2] in ("0x", "0X"):
        return _hex_int(name, v, 64, True)
    return _ranged(name, v, _I64, "DateTimeExtended")


_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def big_from_hex(name: str, digits: str) -> int:
    """A BigInteger from sign-extended hex digits (no sign, no spaces: two's complement)."""
    if not _HEX.match(digits):
        raise invalid_message(f"{name}: bad BigInteger hex {digits[:40]!r}")
    n = int(digits, 16)
    if int(digits[0], 16) >= 8:  # sign-extended negative
        n -= 1 << (4 * len(digits))
    return n


def check_datetime(name: str, seconds: int) -> int:
    if not DATETIME_MIN <= seconds <= DATETIME_MAX:
        raise invalid_message(f"{name}: DateTime {seconds} is outside the years 1-9999")
    return seconds


def parse_datetime(name: str, v: Any) -> int:
    """POSIX seconds from an ISO-8601 string, 0x hex seconds or a number; fractions are dropped."""
    if isinstance(v, str):
        if v[:2] in ("0x", "0X"):
            return check_datetime(name, _hex_int(name, v, 64, True))
        text = v.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise invalid_message(f"{name}: bad DateTime {v[:40]!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return check_datetime(name, int(dt.timestamp() // 1))
    return check_datetime(name, _ranged(name, v, _I64, "DateTime"))


def restore_object_tags(item: TTLV) -> TTLV:
    """Give each Cosmian "Object" back its KMIP tag, from the ObjectType next to it (in place; returns item).

    The Cosmian dialect names the managed object of Get/Export responses "Object", which has no tag number;
    this makes such a tree encodable in binary again.
    """
    if item.type is not ItemType.Structure:
        return item
    children = item.value
    object_type = next((c.value for c in children if c.tag == Tag.ObjectType), None)
    for child in children:
        if child.tag == PSEUDO_OBJECT and object_type is not None:
            child.tag = _OBJECT_TAG_BY_TYPE.get(object_type, PSEUDO_OBJECT)
        restore_object_tags(child)
    return item


# -------------------------------------------------------------------------------------------------- emitting


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_datetime(seconds: int) -> str:
    """RFC 3339 UTC, whole seconds; the year is always four digits (strftime %Y does not pad years < 1000)."""
    dt = _EPOCH + timedelta(seconds=seconds)
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"


def dumps(item: TTLV, dialect: Dialect = Dialect.COSMIAN) -> str:
    return json.dumps(to_json(item, dialect), separators=(",", ":"))


def to_json(
    item: TTLV, dialect: Dialect = Dialect.COSMIAN, holds_object: bool = False, in_holder: bool = False
) -> dict[str, Any]:
    """JSON form of `item`.

    In the Cosmian dialect the managed object of a Get/Export response is tagged "Object": `holds_object` says
    `item` is such a response payload (its object child gets renamed), `in_holder` that `item` is its child.
    """
    tag = item.tag
    t = item.type
    if dialect is Dialect.COSMIAN:
        if tag == Tag.IVCounterNonce:
            name = "IvCounterNonce"
        elif in_holder and tag in _OBJECT_TAGS:
            name = "Object"
        else:
            name = registry.tag_name(tag)
    elif tag == PSEUDO_OBJECT:
        name = "Object"
    else:
        name = registry.tag_name(tag)
    v = item.value
    if t is ItemType.Structure:
        children = v or ()
        if dialect is Dialect.COSMIAN:
            holder = holds_object or tag in _OBJECT_PARENTS
            if tag == Tag.BatchItem:
                op = next((c.value for c in children if c.tag == Tag.Operation), None)
                get_like = op in (Operation.Get, Operation.Export)
                value: Any = [to_json(c, dialect, get_like and c.tag == Tag.ResponsePayload) for c in children]
            else:
                value = [to_json(c, dialect, False, holder) for c in children]
        else:
            value = [to_json(c, dialect) for c in children]
    elif t is ItemType.Integer or t is ItemType.Interval:
        value = v
    elif t is ItemType.Enumeration:
        value = registry.enum_name(tag, v, dialect is Dialect.COSMIAN) or f"0x{v:08X}"
    elif t is ItemType.TextString:
        value = v
    elif t is ItemType.ByteString:
        value = v.hex().upper()
    elif t is ItemType.Boolean:
        value = bool(v)
    elif t is ItemType.DateTime:
        value = format_datetime(v)
    elif t is ItemType.LongInteger or t is ItemType.DateTimeExtended:
        value = f"0x{v & 0xFFFFFFFFFFFFFFFF:016X}"
    else:  # BigInteger: sign-extended to a multiple of 8 bytes
        n = (v.bit_length() + 64) // 64 * 8
        value = "0x" + v.to_bytes(n, "big", signed=True).hex().upper()
    return {"tag": name, "type": t.name, "value": value}
