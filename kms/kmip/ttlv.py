"""The one TTLV model every codec reads and writes.

A TTLV item is a (tag, type, value) triple. Values are plain Python objects so that codecs and typed payloads
can convert them without intermediate representations:

===================  =====================================
type                 Python value
===================  =====================================
Structure            list[TTLV]
Integer, Interval    int
LongInteger          int
BigInteger           int
Enumeration          int
Boolean              bool
TextString           str
ByteString           bytes
DateTime             int (POSIX seconds, UTC)
DateTimeExtended     int (POSIX microseconds, UTC)
===================  =====================================
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum
from typing import Any


class ItemType(IntEnum):
    Structure = 0x01
    Integer = 0x02
    LongInteger = 0x03
    BigInteger = 0x04
    Enumeration = 0x05
    Boolean = 0x06
    TextString = 0x07
    ByteString = 0x08
    DateTime = 0x09
    Interval = 0x0A
    DateTimeExtended = 0x0B


# Pseudo tags: names used by the Cosmian JSON dialect that have no KMIP tag number. They live above the 24-bit
# range, so the binary encoder refuses them and they can never reach the wire in binary form.
PSEUDO_BASE_REQUEST = 0x1000000  # + Operation code: bare request payload tagged with the operation name
PSEUDO_BASE_RESPONSE = 0x2000000  # + Operation code: bare response payload tagged "<Operation>Response"
PSEUDO_OBJECT = 0x3000000  # "Object": a managed object whose kind is given by a sibling ObjectType
PSEUDO_VENDOR_ATTRIBUTES = 0x3000001  # "VendorAttributes": the Cosmian 4.x wrapper of vendor attributes
PSEUDO_REMOVE = 0x3000002  # "Remove": Cosmian Destroy flag, delete the object's record too
PSEUDO_CASCADE = 0x3000003  # "Cascade": Cosmian Destroy flag, also destroy linked objects

# DateTime values must be representable as calendar dates (years 1 to 9999) to be emitted in every encoding.
DATETIME_MIN = -62135596800
DATETIME_MAX = 253402300799


class TTLV:
    """One TTLV item. Structures hold their children in order; repeated tags are repeated children."""

    __slots__ = ("tag", "type", "value")

    def __init__(self, tag: int, type: ItemType, value: Any) -> None:  # noqa: A002 - the KMIP field name
        self.tag = tag
        self.type = type
        self.value = value

    @classmethod
    def struct(cls, tag: int, children: list[TTLV] | None = None) -> TTLV:
        return cls(tag, ItemType.Structure, children if children is not None else [])

    def __repr__(self) -> str:
        return f"TTLV(0x{self.tag:06X}, {self.type.name}, {self.value!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TTLV):
            return NotImplemented
        return self.tag == other.tag and self.type == other.type and self.value == other.value

    __hash__ = None  # type: ignore[assignment]  # mutable

    def children(self) -> list[TTLV]:
        return self.value if self.type == ItemType.Structure and self.value is not None else []

    def find(self, tag: int) -> TTLV | None:
        for child in self.children():
            if child.tag == tag:
                return child
        return None

    def find_all(self, tag: int) -> list[TTLV]:
        return [c for c in self.children() if c.tag == tag]

    def walk(self) -> Iterator[TTLV]:
        yield self
        for child in self.children():
            yield from child.walk()
