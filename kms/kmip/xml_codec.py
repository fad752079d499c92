"""XML TTLV codec: the encoding of the OASIS KMIP test cases (element = tag, `type` and `value` attributes)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from kms.kmip import registry
from kms.kmip.errors import invalid_message
from kms.kmip.json_codec import big_from_hex, check_datetime, format_datetime, parse_datetime
from kms.kmip.ttlv import TTLV, ItemType

MAX_DEPTH = 32
_TYPE_BY_NAME = {t.name: t for t in ItemType}


def loads(data: str | bytes) -> TTLV:
    raw = data.encode() if isinstance(data, str) else data
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise invalid_message("XML document type declarations are not accepted")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise invalid_message(f"malformed XML: {exc}") from None
    return from_element(root)


def from_element(el: ET.Element, depth: int = 0) -> TTLV:
    name = el.tag
    tag = registry.tag_from_name(name)
    type_name = el.get("type", "Structure")
    t = _TYPE_BY_NAME.get(type_name)
    if t is None:
        raise invalid_message(f"{name}: unknown type {type_name[:32]!r}")
    if t is ItemType.Structure:
        if depth >= MAX_DEPTH:
            raise invalid_message(f"{name}: structures nested deeper than {MAX_DEPTH}")
        return TTLV(tag, t, [from_element(c, depth + 1) for c in el])
    v = el.get("value")
    if v is None:
        raise invalid_message(f"{name}: missing value attribute")
    return TTLV(tag, t, _parse_scalar(tag, name, t, v))


_DEC = re.compile(r"^-?[0-9]+$")
_HEXD = re.compile(r"^[0-9A-Fa-f]+$")
_RANGES = {
    ItemType.Integer: (-(2**31), 2**31 - 1),
    ItemType.Enumeration: (0, 2**32 - 1),
    ItemType.Interval: (0, 2**32 - 1),
    ItemType.LongInteger: (-(2**63), 2**63 - 1),
    ItemType.DateTimeExtended: (-(2**63), 2**63 - 1),
}


def _int(name: str, v: str, t: ItemType) -> int:
    """A decimal or 0x-hex number (hex written full width is two's complement), checked against the type's range."""
    bits = 32 if t in (ItemType.Integer, ItemType.Enumeration, ItemType.Interval) else 64
    if v[:2] in ("0x", "0X") and _HEXD.match(v[2:]):
        n = int(v[2:], 16)
        signed = t in (ItemType.Integer, ItemType.LongInteger, ItemType.DateTimeExtended)
        if signed and len(v) - 2 == bits // 4 and n >= 1 << (bits - 1):
            n -= 1 << bits
    elif _DEC.match(v):
        n = int(v)
    else:
        raise invalid_message(f"{name}: bad number {v[:40]!r}")
    low, high = _RANGES[t]
    if not low <= n <= high:
        raise invalid_message(f"{name}: {v[:40]} is out of range for {t.name}")
    return n


def _parse_scalar(tag: int, name: str, t: ItemType, v: str) -> object:
    if t is ItemType.Integer:
        if v[:2] in ("0x", "0X") or v.lstrip("-").isdigit():
            return _int(name, v, t)
        return registry.mask_from_names(tag, v, " ")
    if t is ItemType.Enumeration:
        if v[:2] in ("0x", "0X") or v.isdigit():
            return _int(name, v, t)
        return registry.enum_from_name(tag, v)
    if t is ItemType.TextString:
        return v
    if t is ItemType.ByteString:
        try:
            return bytes.fromhex(v)
        except ValueError:
            raise invalid_message(f"{name}: ByteString is not valid hex") from None
    if t is ItemType.Boolean:
        low = v.lower()
        if low in ("true", "1", "0x0000000000000001"):
            return True
        if low in ("false", "0", "0x0000000000000000"):
            return False
        raise invalid_message(f"{name}: bad Boolean {v[:40]!r}")
    if t is ItemType.DateTime:
        return check_datetime(name, parse_datetime(name, v))
    if t is ItemType.LongInteger or t is ItemType.DateTimeExtended:
        return _int(name, v, t)
    if t is ItemType.BigInteger:  # hex, sign-extended, with or without 0x
        return big_from_hex(name, v[2:] if v[:2] in ("0x", "0X") else v)
    return _int(name, v, t)  # Interval


def to_element(item: TTLV) -> ET.Element:
    el = ET.Element(registry.tag_name(item.tag))
    t = item.type
    v = item.value
    if t is ItemType.Structure:
        for child in v or ():
            el.append(to_element(child))
        return el
    el.set("type", t.name)
    if t is ItemType.Enumeration:
        text = registry.enum_name(item.tag, v) or f"0x{v:08X}"
    elif t is ItemType.Integer:
        text = (registry.mask_names(item.tag, v, " ") if registry.mask_class(item.tag) and v else None) or str(v)
    elif t is ItemType.ByteString:
        text = v.hex()
    elif t is ItemType.Boolean:
        text = "true" if v else "false"
    elif t is ItemType.DateTime:
        text = format_datetime(v).replace("Z", "+00:00")
    elif t is ItemType.BigInteger:
        n = (v.bit_length() + 64) // 64 * 8
        text = v.to_bytes(n, "big", signed=True).hex()
    else:
        text = str(v)
    el.set("value", text)
    return el


def dumps(item: TTLV) -> str:
    el = to_element(item)
    ET.indent(el)
    return ET.tostring(el, encoding="unicode")
