"""Declarative typed KMIP structures: a payload class is declared once and every codec serves it.

A structure is a slotted dataclass decorated with `@kmip(Tag.X)`; each field names its tag and kind with one of
the helpers below. `decode(cls, ttlv)` and `encode(obj)` convert between the TTLV model and the typed object,
checking item types, enumeration values and required fields, and naming the offending field on error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import IntEnum
from typing import Any, ClassVar, TypeVar

from kms.kmip.errors import invalid_message
from kms.kmip.registry import tag_name
from kms.kmip.ttlv import TTLV, ItemType

T = TypeVar("T")

RAW = "raw"  # keep the TTLV item as is (values whose type varies, e.g. AttributeValue)


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    attr: str
    tag: int
    kind: ItemType | type | str  # an ItemType, a @kmip class, RAW, or a union marker
    enum: type[IntEnum] | None
    multi: bool
    required: bool
    accept: tuple[int, ...]  # extra tags accepted for this field when decoding (aliases)


class Struct:
    """Base of typed structures; the decorator fills the class attributes below."""

    TAG: ClassVar[int]
    _fields_: ClassVar[tuple[FieldSpec, ...]]
    _by_tag_: ClassVar[dict[int, FieldSpec]]
    _extra_: ClassVar[str | None]  # attribute collecting unknown children (None = unknown children rejected)

    def post_decode(self) -> None:
        """Hook for cross-field checks or resolution after decoding."""


def _meta(tag: int, kind: Any, enum: type[IntEnum] | None, multi: bool, required: bool, accept: tuple[int, ...]) -> Any:
    meta = {"kmip": (tag, kind, enum, multi, required, accept)}
    if multi:
        return dataclasses.field(default_factory=list, metadata=meta)
    return dataclasses.field(default=None, metadata=meta)


def text(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.TextString, None, multi, required, ())


def byte_string(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.ByteString, None, multi, required, ())


def integer(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.Integer, None, multi, required, ())


def long_integer(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.LongInteger, None, multi, required, ())


def big_integer(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.BigInteger, None, multi, required, ())


def boolean(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.Boolean, None, multi, required, ())


def date_time(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.DateTime, None, multi, required, ())


def interval(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.Interval, None, multi, required, ())


def enum(tag: int, cls: type[IntEnum], *, multi: bool = False, required: bool = False) -> Any:
    return _meta(tag, ItemType.Enumeration, cls, multi, required, ())


def enum_code(tag: int, *, multi: bool = False, required: bool = False) -> Any:
    """An Enumeration kept as its number (for tables with vendor-defined values only)."""
    return _meta(tag, ItemType.Enumeration, None, multi, required, ())


def struct(cls: type, *, tag: int | None = None, multi: bool = False, required: bool = False,
           accept: tuple[int, ...] = ()) -> Any:
    return _meta(tag if tag is not None else cls.TAG, cls, None, multi, required, accept)


def union(classes: dict[int, type], *, tag: int, required: bool = False) -> Any:
    """One of several structures told apart by their tag (e.g. the managed object of Register and Get).

    An item whose tag is not in `classes` (the Cosmian "Object" pseudo tag) is kept as TTLV; the owner's
    post_decode resolves it with `resolve_union`.
    """
    return _meta(tag, dict(classes), None, False, required, tuple(t for t in classes if t != tag))


def resolve_union(spec_classes: dict[int, type], tag: int, item: Any) -> Any:
    if isinstance(item, TTLV):
        cls = spec_classes.get(tag)
        if cls is None:
            raise invalid_message(f"cannot interpret {tag_name(item.tag)} as {tag_name(tag)}")
        return decode(cls, item)
    return item


def raw(tag: int, *, multi: bool = False, required: bool = False, accept: tuple[int, ...] = ()) -> Any:
    return _meta(tag, RAW, None, multi, required, accept)


def extras() -> Any:
    """A list collecting children with tags the class does not declare (instead of rejecting them)."""
    return dataclasses.field(default_factory=list, metadata={"kmip_extra": True})


C = TypeVar("C", bound=type)


def kmip(tag: int) -> Callable[[C], C]:
    """Class decorator: make a slotted dataclass and attach its TTLV field table."""

    def wrap(cls: C) -> C:
        dc = dataclasses.dataclass(slots=True)(cls)
        specs = []
        extra = None
        for f in dataclasses.fields(dc):
            if f.metadata.get("kmip_extra"):
                extra = f.name
                continue
            t, kind, en, multi, required, accept = f.metadata["kmip"]
            specs.append(FieldSpec(f.name, t, kind, en, multi, required, accept))
        dc.TAG = tag
        dc._fields_ = tuple(specs)
        by_tag = {}
        for s in specs:
            by_tag[s.tag] = s
            for a in s.accept:
                by_tag[a] = s
        dc._by_tag_ = by_tag
        dc._extra_ = extra
        return dc

    return wrap


# ---------------------------------------------------------------------------------------------------- decode


def _value(spec: FieldSpec, item: TTLV, owner: str) -> Any:
    kind = spec.kind
    if kind == RAW:
        return item
    if isinstance(kind, dict):
        cls = kind.get(item.tag)
        if cls is None:
            return item
        return decode(cls, item)
    if isinstance(kind, ItemType):
        if item.type is not kind:
            raise invalid_message(
                f"{owner}.{tag_name(item.tag)}: expected {kind.name}, got {item.type.name}"
            )
        if spec.enum is not None:
            try:
                return spec.enum(item.value)
            except ValueError:
                raise invalid_message(
                    f"{owner}.{tag_name(item.tag)}: unknown {spec.enum.__name__} value 0x{item.value:08X}"
                ) from None
        return item.value
    if item.type is not ItemType.Structure:
        raise invalid_message(f"{owner}.{tag_name(item.tag)}: expected a Structure, got {item.type.name}")
    return decode(kind, item)


def decode(cls: type[T], item: TTLV) -> T:
    """Typed object from a TTLV structure (the structure's own tag is not checked: callers route by tag)."""
    if item.type is not ItemType.Structure:
        raise invalid_message(f"{tag_name(item.tag)}: expected a Structure, got {item.type.name}")
    owner = cls.__name__
    by_tag = cls._by_tag_  # type: ignore[attr-defined]
    values: dict[str, Any] = {}
    extra_attr = cls._extra_  # type: ignore[attr-defined]
    extra: list[TTLV] = []
    for child in item.value:
        spec = by_tag.get(child.tag)
        if spec is None:
            if extra_attr is not None:
                extra.append(child)
                continue
            raise invalid_message(f"{owner}: unexpected {tag_name(child.tag)}")
        v = _value(spec, child, owner)
        if spec.multi:
            values.setdefault(spec.attr, []).append(v)
        elif spec.attr in values:
            raise invalid_message(f"{owner}: {tag_name(child.tag)} given more than once")
        else:
            values[spec.attr] = v
    for spec in cls._fields_:  # type: ignore[attr-defined]
        if spec.required and spec.attr not in values:
            raise invalid_message(f"{owner}: missing required {tag_name(spec.tag)}")
    if extra_attr is not None:
        values[extra_attr] = extra
    obj = cls(**values)
    obj.post_decode()  # type: ignore[attr-defined]
    return obj


# ---------------------------------------------------------------------------------------------------- encode


def _item(spec: FieldSpec, v: Any) -> TTLV:
    kind = spec.kind
    if kind == RAW:
        return v if isinstance(v, TTLV) else encode(v, spec.tag)
    if isinstance(kind, ItemType):
        return TTLV(spec.tag, kind, int(v) if spec.enum is not None else v)
    if isinstance(kind, dict):
        return v if isinstance(v, TTLV) else encode(v)
    return encode(v, spec.tag)


def encode(obj: Any, tag: int | None = None) -> TTLV:
    """TTLV structure from a typed object, children in declaration order; None and empty lists are left out."""
    children: list[TTLV] = []
    for spec in obj._fields_:
        v = getattr(obj, spec.attr)
        if v is None:
            continue
        if spec.multi:
            for element in v:
                children.append(_item(spec, element))
        else:
            children.append(_item(spec, v))
    if obj._extra_ is not None:
        children.extend(getattr(obj, obj._extra_))
    return TTLV(obj.TAG if tag is None else tag, ItemType.Structure, children)
