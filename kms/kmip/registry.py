"""Name <-> number lookups for tags, enumerations and masks, including the spellings real clients use.

Parsing is liberal (hex tags, OASIS and Cosmian enum spellings, case-insensitive fallbacks); emitting is strict
(OASIS names). Every table is built once at import; lookups are dictionary hits.
"""

from __future__ import annotations

import re
from enum import IntEnum, IntFlag
from functools import cache

from kms.kmip.enums import COSMIAN_NAMES, ENUM_FOR_TAG, MASK_FOR_TAG, Operation
from kms.kmip.errors import invalid_message
from kms.kmip.tags import Tag
from kms.kmip.ttlv import (
    PSEUDO_BASE_REQUEST,
    PSEUDO_BASE_RESPONSE,
    PSEUDO_CASCADE,
    PSEUDO_OBJECT,
    PSEUDO_REMOVE,
    PSEUDO_VENDOR_ATTRIBUTES,
)

_TAG_BY_NAME: dict[str, int] = {m.name: int(m) for m in Tag}
_TAG_BY_LOWER: dict[str, int] = {m.name.lower(): int(m) for m in Tag}
_NAME_BY_TAG: dict[int, str] = {int(m): m.name for m in Tag}

# Spellings that name the same tag: the Cosmian 4.x clients send IvCounterNonce; the Cosmian dialect uses
# "Object" for a managed object and operation names as bare payload tags.
_TAG_ALIASES: dict[str, int] = {
    "IvCounterNonce": Tag.IVCounterNonce,
    "Object": PSEUDO_OBJECT,
    "VendorAttributes": PSEUDO_VENDOR_ATTRIBUTES,
    "Remove": PSEUDO_REMOVE,
    "Cascade": PSEUDO_CASCADE,
}
for _op in Operation:
    _TAG_ALIASES[_op.name] = PSEUDO_BASE_REQUEST + _op
    _TAG_ALIASES[_op.name + "Response"] = PSEUDO_BASE_RESPONSE + _op
# Names whose operation spelling differs from the normalised enum name in Cosmian's dialect.
for _alias, _op in (("Rekey", Operation.ReKey), ("RekeyKeyPair", Operation.ReKeyKeyPair)):
    _TAG_ALIASES[_alias] = PSEUDO_BASE_REQUEST + _op
    _TAG_ALIASES[_alias + "Response"] = PSEUDO_BASE_RESPONSE + _op

_PSEUDO_NAMES: dict[int, str] = {
    PSEUDO_OBJECT: "Object",
    PSEUDO_VENDOR_ATTRIBUTES: "VendorAttributes",
    PSEUDO_REMOVE: "Remove",
    PSEUDO_CASCADE: "Cascade",
}
for _op in Operation:
    _PSEUDO_NAMES[PSEUDO_BASE_REQUEST + _op] = _op.name
    _PSEUDO_NAMES[PSEUDO_BASE_RESPONSE + _op] = _op.name + "Response"

_HEX_TAG = re.compile(r"^0x([0-9A-Fa-f]{6})$")


def tag_from_name(name: str) -> int:
    """Tag number for a JSON/XML tag name: normalised name, known alias, or 0x-prefixed 3-byte hex."""
    tag = _TAG_BY_NAME.get(name)
    if tag is not None:
        return tag
    tag = _TAG_ALIASES.get(name)
    if tag is not None:
        return tag
    m = _HEX_TAG.match(name)
    if m:
        return int(m.group(1), 16)
    tag = _TAG_BY_LOWER.get(name.lower())
    if tag is not None:
        return tag
    raise invalid_message(f"unknown tag {name[:64]!r}")


def tag_name(tag: int) -> str:
    name = _NAME_BY_TAG.get(tag)
    if name is not None:
        return name
    pseudo = _PSEUDO_NAMES.get(tag)
    if pseudo is not None:
        return pseudo
    return f"0x{tag:06X}"


def is_known_tag(tag: int) -> bool:
    return tag in _NAME_BY_TAG


def operation_of_pseudo_tag(tag: int) -> tuple[Operation, bool] | None:
    """(operation, is_response) for a bare-payload pseudo tag, else None."""
    if PSEUDO_BASE_REQUEST <= tag < PSEUDO_BASE_REQUEST + 0x1000000:
        code, response = tag - PSEUDO_BASE_REQUEST, False
    elif PSEUDO_BASE_RESPONSE <= tag < PSEUDO_BASE_RESPONSE + 0x1000000:
        code, response = tag - PSEUDO_BASE_RESPONSE, True
    else:
        return None
    try:
        return Operation(code), response
    except ValueError:
        return None


def _squash(name: str) -> str:
    return name.replace("_", "").replace("-", "").replace(" ", "").lower()


def wire_name(member: IntEnum | IntFlag) -> str:
    """The JSON/XML name of an enum member (Python keywords such as None carry a trailing underscore)."""
    name = member.name or ""
    return name[:-1] if name.endswith("_") else name


@cache
def _enum_lookup(cls: type[IntEnum]) -> tuple[dict[str, int], dict[str, int]]:
    exact = {wire_name(m): int(m) for m in cls}
    for m in cls:
        alt = COSMIAN_NAMES.get((cls, int(m)))
        if alt is not None:
            exact.setdefault(alt, int(m))
    squashed: dict[str, int] = {}
    clashes: set[str] = set()
    for m in cls:
        key = _squash(wire_name(m))
        if key in squashed and squashed[key] != int(m):
            clashes.add(key)
        squashed[key] = int(m)
    for key in clashes:
        del squashed[key]
    return exact, squashed


# Cosmian spells some values differently from the OASIS normalisation (e.g. ResultReason Item_Not_Found,
# HashingAlgorithm SHA256); the squashed lookup (no '_', '-', case) resolves those. Others need an alias here.
_ENUM_ALIASES: dict[int, dict[str, int]] = {}


def enum_class(tag: int) -> type[IntEnum] | None:
    return ENUM_FOR_TAG.get(tag)


def enum_from_name(tag: int, name: str) -> int:
    """Value of an Enumeration given by name, for the enumeration attached to `tag`."""
    if tag == Tag.AttributeReference:
        return tag_from_name(name)
    cls = ENUM_FOR_TAG.get(tag)
    if cls is None:
        raise invalid_message(f"{tag_name(tag)} has no enumeration names; give a number or 0x hex")
    exact, squashed = _enum_lookup(cls)
    value = exact.get(name)
    if value is not None:
        return value
    alias = _ENUM_ALIASES.get(tag)
    if alias and name in alias:
        return alias[name]
    value = squashed.get(_squash(name))
    if value is not None:
        return value
    raise invalid_message(f"unknown {cls.__name__} value {name[:64]!r}")


def enum_name(tag: int, value: int, cosmian: bool = False) -> str | None:
    """Name of an Enumeration value (OASIS, or the Cosmian clients' spelling), None if unnamed (emit hex)."""
    if tag == Tag.AttributeReference:
        return _NAME_BY_TAG.get(value)
    cls = ENUM_FOR_TAG.get(tag)
    if cls is None:
        return None
    if cosmian:
        alt = COSMIAN_NAMES.get((cls, value))
        if alt is not None:
            return alt
    try:
        return wire_name(cls(value))
    except ValueError:
        return None


def mask_class(tag: int) -> type[IntFlag] | None:
    return MASK_FOR_TAG.get(tag)


def mask_from_names(tag: int, text: str, separator: str) -> int:
    """Integer mask from names and/or hex joined by `separator` ('|' in JSON, ' ' in XML)."""
    cls = MASK_FOR_TAG.get(tag)
    total = 0
    for part in text.split(separator):
        part = part.strip()
        if not part:
            continue
        if part[:2] in ("0x", "0X"):
            try:
                total |= int(part, 16)
            except ValueError:
                raise invalid_message(f"bad hex {part[:32]!r} in {tag_name(tag)}") from None
            continue
        if cls is None:
            raise invalid_message(f"{tag_name(tag)} is not a mask; {part[:32]!r} is not a number")
        exact, squashed = _enum_lookup(cls)  # type: ignore[arg-type]
        value = exact.get(part)
        if value is None:
            value = squashed.get(_squash(part))
        if value is None:
            raise invalid_message(f"unknown {cls.__name__} bit {part[:32]!r}")
        total |= value
    return total


def mask_names(tag: int, value: int, separator: str) -> str | None:
    """Names of the bits of a mask joined by `separator`, or None if some bit has no name."""
    cls = MASK_FOR_TAG.get(tag)
    if cls is None:
        return None
    names = []
    rest = value
    for member in cls:
        if value & member.value:
            names.append(wire_name(member))
            rest &= ~member.value
    if rest:
        return None
    return separator.join(names)  # type: ignore[arg-type]
