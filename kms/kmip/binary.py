"""Binary TTLV codec (KMIP 1.0-2.1 wire encoding).

Decoding is defensive: every length is checked against the bytes actually present before anything is read,
fixed-width types must carry their exact length, structures must be 8-byte aligned and nesting is bounded, so a
truncated, oversized or hostile message raises KmipError(InvalidMessage) naming the offending item.
"""

from __future__ import annotations

import struct

from kms.kmip.errors import invalid_message
from kms.kmip.registry import tag_name
from kms.kmip.ttlv import DATETIME_MAX, DATETIME_MIN, TTLV, ItemType

MAX_DEPTH = 32

_HEADER = struct.Struct(">I I")  # tag(3)+type(1) as one u32, then length
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_FIXED_LEN = {
    ItemType.Integer: 4,
    ItemType.Enumeration: 4,
    ItemType.Interval: 4,
    ItemType.LongInteger: 8,
    ItemType.Boolean: 8,
    ItemType.DateTime: 8,
    ItemType.DateTimeExtended: 8,
}
_TYPES = {t.value: t for t in ItemType}


def decode(data: bytes | bytearray | memoryview) -> TTLV:
    """Decode exactly one top-level item; trailing bytes are an error."""
    view = memoryview(data)
    if len(view) < 8:
        raise invalid_message(f"truncated TTLV: {len(view)} bytes, a header needs 8")
    item, end = _decode_item(view, 0, len(view), 0)
    if end != len(view):
        raise invalid_message(f"{len(view) - end} unexpected bytes after the top-level {tag_name(item.tag)}")
    return item


def message_length(header: bytes) -> int:
    """Total length (header + padded value) of the message whose first 8 bytes are given (socket framing)."""
    if len(header) < 8:
        raise invalid_message("truncated TTLV header")
    _, length = _HEADER.unpack_from(header, 0)
    return 8 + length + (-length % 8)


def _decode_item(view: memoryview, pos: int, limit: int, depth: int) -> tuple[TTLV, int]:
    if limit - pos < 8:
        raise invalid_message(f"truncated TTLV at offset {pos}: {limit - pos} bytes left, a header needs 8")
    tag_type, length = _HEADER.unpack_from(view, pos)
    tag = tag_type >> 8
    type_code = tag_type & 0xFF
    item_type = _TYPES.get(type_code)
    if item_type is None:
        raise invalid_message(f"{tag_name(tag)} at offset {pos}: unknown item type 0x{type_code:02X}")
    start = pos + 8
    padded = length + (-length % 8)
    if padded > limit - start:
        raise invalid_message(
            f"{tag_name(tag)} at offset {pos}: length {length} exceeds the {limit - start} bytes available"
        )
    end = start + padded
    fixed = _FIXED_LEN.get(item_type)
    if fixed is not None and length != fixed:
        raise invalid_message(f"{tag_name(tag)}: {item_type.name} must have length {fixed}, got {length}")
    if item_type is ItemType.Structure:
        if depth >= MAX_DEPTH:
            raise invalid_message(f"{tag_name(tag)}: structures nested deeper than {MAX_DEPTH}")
        if length % 8:
            raise invalid_message(f"{tag_name(tag)}: structure length {length} is not a multiple of 8")
        children = []
        p = start
        stop = start + length
        while p < stop:
            child, p = _decode_item(view, p, stop, depth + 1)
            children.append(child)
        return TTLV(tag, item_type, children), end
    if item_type is ItemType.Integer:
        value: object = _I32.unpack_from(view, start)[0]
    elif item_type is ItemType.Enumeration or item_type is ItemType.Interval:
        value = _U32.unpack_from(view, start)[0]
    elif item_type is ItemType.LongInteger or item_type is ItemType.DateTimeExtended:
        value = _I64.unpack_from(view, start)[0]
    elif item_type is ItemType.DateTime:
        value = _I64.unpack_from(view, start)[0]
        if not DATETIME_MIN <= value <= DATETIME_MAX:
            raise invalid_message(f"{tag_name(tag)}: DateTime {value} is outside the years 1-9999")
    elif item_type is ItemType.Boolean:
        raw = _I64.unpack_from(view, start)[0]
        if raw not in (0, 1):
            raise invalid_message(f"{tag_name(tag)}: Boolean must be 0 or 1, got {raw}")
        value = raw == 1
    elif item_type is ItemType.TextString:
        try:
            value = bytes(view[start : start + length]).decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_message(f"{tag_name(tag)}: TextString is not valid UTF-8") from None
    elif item_type is ItemType.ByteString:
        value = bytes(view[start : start + length])
    else:  # BigInteger
        if length % 8:
            raise invalid_message(f"{tag_name(tag)}: BigInteger length {length} is not a multiple of 8")
        value = int.from_bytes(view[start : start + length], "big", signed=True)
    return TTLV(tag, item_type, value), end


def encode(item: TTLV) -> bytes:
    out = bytearray()
    _encode_into(item, out)
    return bytes(out)


def encoded_length(item: TTLV) -> int:
    """Length of the binary encoding without building it (used for MaximumResponseSize on any encoding)."""
    t = item.type
    if t is ItemType.Structure:
        return 8 + sum(encoded_length(c) for c in item.value or ())
    if t is ItemType.TextString:
        n = len(item.value.encode("utf-8"))
    elif t is ItemType.ByteString:
        n = len(item.value)
    elif t is ItemType.BigInteger:
        n = _big_len(item.value)
    else:
        n = _FIXED_LEN[t]
    return 8 + n + (-n % 8)


def _big_len(value: int) -> int:
    n = (value.bit_length() + 8) // 8  # room for the sign bit
    return max(8, n + (-n % 8))


_PAD = bytes(8)


def _encode_into(item: TTLV, out: bytearray) -> None:
    tag = item.tag
    if not 0 <= tag <= 0xFFFFFF:
        raise invalid_message(f"{tag_name(tag)} has no binary TTLV tag number")
    t = item.type
    head = (tag << 8) | t
    if t is ItemType.Structure:
        pos = len(out)
        out += _HEADER.pack(head, 0)
        for child in item.value or ():
            _encode_into(child, out)
        _HEADER.pack_into(out, pos, head, len(out) - pos - 8)
        return
    v = item.value
    if t is ItemType.Integer:
        out += _HEADER.pack(head, 4) + _I32.pack(v) + _PAD[:4]
    elif t is ItemType.Enumeration or t is ItemType.Interval:
        out += _HEADER.pack(head, 4) + _U32.pack(v) + _PAD[:4]
    elif t is ItemType.LongInteger or t is ItemType.DateTime or t is ItemType.DateTimeExtended:
        out += _HEADER.pack(head, 8) + _I64.pack(v)
    elif t is ItemType.Boolean:
        out += _HEADER.pack(head, 8) + _I64.pack(1 if v else 0)
    elif t is ItemType.TextString or t is ItemType.ByteString:
        raw = v.encode("utf-8") if t is ItemType.TextString else v
        n = len(raw)
        out += _HEADER.pack(head, n)
        out += raw
        out += _PAD[: -n % 8]
    else:  # BigInteger
        n = _big_len(v)
        out += _HEADER.pack(head, n) + v.to_bytes(n, "big", signed=True)
