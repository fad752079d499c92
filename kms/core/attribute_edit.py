"""Reading and changing one attribute of an object, given as a TTLV item (KMIP 2.1 attribute operations).

Attributes are addressed by tag; vendor attributes (tag `Attribute`) by vendor identification and name. The
Cosmian `tag` vendor attribute is the object's user tags, so editing it edits the tag index.
"""

from __future__ import annotations

from kms.core.lifecycle import effective_state
from kms.core.managed import ManagedObject
from kms.core.tags import TAG_ATTRIBUTE, _decode_tag_value, tags_attribute, validate_user_tags
from kms.kmip import schema
from kms.kmip.attributes import MULTI_VALUED, SERVER_OWNED, Attributes, VendorAttribute
from kms.kmip.enums import ResultReason, State
from kms.kmip.errors import KmipError
from kms.kmip.registry import tag_from_name, tag_name
from kms.kmip.schema import FieldSpec
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType


def _denied(reason: ResultReason, message: str) -> KmipError:
    return KmipError(reason, message)


def full_view(mo: ManagedObject, now: int, vendor: str) -> Attributes:
    """The object's attributes as returned to clients: effective state, tags as the vendor attribute."""
    a = schema.decode(Attributes, schema.encode(mo.attributes))
    a.state = effective_state(mo.attributes, now)
    if mo.tags:
        a.vendor_attributes.append(tags_attribute(mo.tags, vendor))
    return a


def reference_tag(ref: TTLV) -> int | tuple[str | None, str]:
    """What an AttributeReference names: a tag number, or (vendor, name) for a vendor attribute."""
    if ref.type is ItemType.Enumeration:
        return ref.value
    if ref.type is ItemType.TextString:  # KMIP 1.x AttributeName, e.g. "Cryptographic Algorithm"
        text = ref.value
        if text.lower().startswith("x-") or text.lower().startswith("y-"):
            return (None, text)
        return tag_from_name("".join(w[:1].upper() + w[1:] for w in text.replace("-", " ").split()))
    if ref.type is ItemType.Structure:
        vid = ref.find(Tag.VendorIdentification)
        name = ref.find(Tag.AttributeName)
        if name is None:
            raise KmipError(ResultReason.InvalidField, "a vendor AttributeReference needs an AttributeName")
        return (vid.value if vid is not None else None, name.value)
    raise KmipError(ResultReason.InvalidField, f"bad AttributeReference type {ref.type.name}")


def select(view: Attributes, refs: list[TTLV]) -> TTLV:
    """The Attributes structure holding only the referenced attributes, in the order they were asked for."""
    encoded = schema.encode(view)
    if not refs:
        return encoded
    children = encoded.value
    out: list[TTLV] = []
    for ref in refs:
        key = reference_tag(ref)
        if isinstance(key, tuple):
            vid, name = key
            out.extend(
                c for c in children if c.tag == Tag.Attribute and _vendor_match(c, vid, name) and c not in out
            )
        else:
            out.extend(c for c in children if c.tag == key and c not in out)
    return TTLV(Tag.Attributes, ItemType.Structure, out)


def reference_list(view: Attributes) -> list[TTLV]:
    """AttributeReference items for every attribute present (GetAttributeList)."""
    refs: list[TTLV] = []
    seen: set[int] = set()
    for child in schema.encode(view).value:
        if child.tag == Tag.Attribute:
            va = schema.decode(VendorAttribute, child)
            refs.append(
                TTLV(
                    Tag.AttributeReference,
                    ItemType.Structure,
                    [
                        TTLV(Tag.VendorIdentification, ItemType.TextString, va.vendor_identification or ""),
                        TTLV(Tag.AttributeName, ItemType.TextString, va.attribute_name),
                    ],
                )
            )
        elif child.tag not in seen:
            seen.add(child.tag)
            refs.append(TTLV(Tag.AttributeReference, ItemType.Enumeration, child.tag))
    return refs


def _vendor_match(item: TTLV, vid: str | None, name: str) -> bool:
    n = item.find(Tag.AttributeName)
    v = item.find(Tag.VendorIdentification)
    return n is not None and n.value == name and (vid is None or (v is not None and v.value == vid))


def _spec(tag: int) -> FieldSpec | None:
    return Attributes._by_tag_.get(tag)


def _check_writable(mo: ManagedObject, item: TTLV, now: int) -> None:
    if item.tag in SERVER_OWNED or item.tag == Tag.UniqueIdentifier:
        raise _denied(ResultReason.AttributeReadOnly, f"{tag_name(item.tag)} is set by the server")
    state = effective_state(mo.attributes, now)
    if item.tag == Tag.ActivationDate and state != State.PreActive:
        raise _denied(
            ResultReason.WrongKeyLifecycleState,
            f"the activation date of a {state.name} object cannot change",
        )
    if item.tag in (Tag.CryptographicAlgorithm, Tag.CryptographicLength) and getattr(mo.obj, "key_block", None):
        raise _denied(ResultReason.AttributeReadOnly, f"{tag_name(item.tag)} is fixed by the key material")


def _is_tag_attribute(item: TTLV, vendor: str) -> bool:
    if item.tag != Tag.Attribute:
        return False
    name = item.find(Tag.AttributeName)
    vid = item.find(Tag.VendorIdentification)
    return name is not None and name.value == TAG_ATTRIBUTE and (vid is None or vid.value.lower() == vendor.lower())


def _user_tags(mo: ManagedObject) -> set[str]:
    return {t for t in mo.tags if not t.startswith("_")}


def _set_user_tags(mo: ManagedObject, tags: set[str]) -> None:
    mo.tags = {t for t in mo.tags if t.startswith("_")} | tags


def add(mo: ManagedObject, item: TTLV, now: int, vendor: str) -> None:
    if _is_tag_attribute(item, vendor):
        added = validate_user_tags(_decode_tag_value(item.find(Tag.AttributeValue)))
        _set_user_tags(mo, _user_tags(mo) | added)
        return
    _check_writable(mo, item, now)
    a = mo.attributes
    if item.tag == Tag.Attribute:
        va = schema.decode(VendorAttribute, item)
        if any(_same_vendor(x, va) for x in a.vendor_attributes):
            raise _denied(ResultReason.AttributeSingleValued, f"vendor attribute {va.attribute_name!r} exists")
        a.vendor_attributes.append(va)
        return
    spec = _spec(item.tag)
    if spec is None:
        if any(o.tag == item.tag for o in a.other) and item.tag not in MULTI_VALUED:
            raise _denied(ResultReason.AttributeSingleValued, f"{tag_name(item.tag)} is already set")
        a.other.append(item)
        return
    value = schema._value(spec, item, "NewAttribute")
    if spec.multi:
        current = getattr(a, spec.attr)
        if item.tag == Tag.Name and any(n.name_value == value.name_value for n in current):
            raise _denied(ResultReason.NonUniqueNameAttribute, f"the name {value.name_value!r} is already set")
        current.append(value)
    else:
        if getattr(a, spec.attr) is not None:
            raise _denied(ResultReason.AttributeSingleValued, f"{tag_name(item.tag)} is already set")
        setattr(a, spec.attr, value)


def set_(mo: ManagedObject, item: TTLV, now: int, vendor: str) -> None:
    """SetAttribute: create or replace a single-valued attribute."""
    if _is_tag_attribute(item, vendor):
        _set_user_tags(mo, validate_user_tags(_decode_tag_value(item.find(Tag.AttributeValue))))
        return
    _check_writable(mo, item, now)
    a = mo.attributes
    if item.tag == Tag.Attribute:
        va = schema.decode(VendorAttribute, item)
        a.vendor_attributes = [x for x in a.vendor_attributes if not _same_vendor(x, va)] + [va]
        return
    spec = _spec(item.tag)
    if spec is None:
        a.other = [o for o in a.other if o.tag != item.tag] + [item]
        return
    if spec.multi:
        raise _denied(ResultReason.MultiValuedAttribute, f"{tag_name(item.tag)} is multi-valued: use AddAttribute")
    setattr(a, spec.attr, schema._value(spec, item, "NewAttribute"))


def modify(mo: ManagedObject, current: TTLV | None, new: TTLV, now: int, vendor: str) -> None:
    if current is not None and current.tag != new.tag:
        raise KmipError(ResultReason.InvalidField, "CurrentAttribute and NewAttribute must be the same attribute")
    if _is_tag_attribute(new, vendor):
        _set_user_tags(mo, validate_user_tags(_decode_tag_value(new.find(Tag.AttributeValue))))
        return
    _check_writable(mo, new, now)
    a = mo.attributes
    if new.tag == Tag.Attribute:
        va = schema.decode(VendorAttribute, new)
        for i, x in enumerate(a.vendor_attributes):
            if _same_vendor(x, va):
                a.vendor_attributes[i] = va
                return
        raise _denied(ResultReason.AttributeNotFound, f"vendor attribute {va.attribute_name!r} is not set")
    spec = _spec(new.tag)
    if spec is None:
        for i, o in enumerate(a.other):
            if o.tag == new.tag and (current is None or o == current):
                a.other[i] = new
                return
        raise _denied(ResultReason.AttributeNotFound, f"{tag_name(new.tag)} is not set")
    value = schema._value(spec, new, "NewAttribute")
    if spec.multi:
        values = getattr(a, spec.attr)
        if current is None:
            if len(values) != 1:
                raise _denied(
                    ResultReason.AttributeNotFound if not values else ResultReason.InvalidField,
                    f"{tag_name(new.tag)}: give CurrentAttribute to choose the instance to modify",
                )
            values[0] = value
            return
        old = schema._value(spec, current, "CurrentAttribute")
        for i, v in enumerate(values):
            if v == old:
                values[i] = value
                return
        raise _denied(ResultReason.AttributeInstanceNotFound, f"{tag_name(new.tag)}: CurrentAttribute not found")
    if getattr(a, spec.attr) is None:
        raise _denied(ResultReason.AttributeNotFound, f"{tag_name(new.tag)} is not set")
    if current is not None and getattr(a, spec.attr) != schema._value(spec, current, "CurrentAttribute"):
        raise _denied(ResultReason.AttributeInstanceNotFound, f"{tag_name(new.tag)}: CurrentAttribute does not match")
    setattr(a, spec.attr, value)


def delete(mo: ManagedObject, current: TTLV | None, reference: TTLV | None, now: int, vendor: str) -> None:
    a = mo.attributes
    if current is not None:
        target_tag = current.tag
    elif reference is not None:
        key = reference_tag(reference)
        if isinstance(key, tuple):
            vid, name = key
            if name == TAG_ATTRIBUTE and (vid is None or vid.lower() == vendor.lower()):
                _set_user_tags(mo, set())
                return
            before = len(a.vendor_attributes)
            a.vendor_attributes = [
                x
                for x in a.vendor_attributes
                if not (x.attribute_name == name and (vid is None or x.vendor_identification == vid))
            ]
            if len(a.vendor_attributes) == before:
                raise _denied(ResultReason.AttributeNotFound, f"vendor attribute {name!r} is not set")
            return
        target_tag = key
    else:
        raise KmipError(ResultReason.InvalidField, "DeleteAttribute needs CurrentAttribute or AttributeReference")
    if _is_tag_attribute(current, vendor) if current is not None else False:
        _set_user_tags(mo, set())
        return
    if target_tag in SERVER_OWNED or target_tag in (Tag.CryptographicAlgorithm, Tag.CryptographicLength):
        raise _denied(ResultReason.AttributeReadOnly, f"{tag_name(target_tag)} cannot be deleted")
    if target_tag == Tag.Attribute and current is not None:
        va = schema.decode(VendorAttribute, current)
        before = len(a.vendor_attributes)
        a.vendor_attributes = [x for x in a.vendor_attributes if not _same_vendor(x, va)]
        if len(a.vendor_attributes) == before:
            raise _denied(ResultReason.AttributeNotFound, f"vendor attribute {va.attribute_name!r} is not set")
        return
    spec = _spec(target_tag)
    if spec is None:
        before = len(a.other)
        a.other = [o for o in a.other if not (o.tag == target_tag and (current is None or o == current))]
        if len(a.other) == before:
            raise _denied(ResultReason.AttributeNotFound, f"{tag_name(target_tag)} is not set")
        return
    if spec.multi:
        values = getattr(a, spec.attr)
        if current is None:
            if not values:
                raise _denied(ResultReason.AttributeNotFound, f"{tag_name(target_tag)} is not set")
            setattr(a, spec.attr, [])
            return
        old = schema._value(spec, current, "CurrentAttribute")
        if old not in values:
            raise _denied(ResultReason.AttributeInstanceNotFound, f"{tag_name(target_tag)}: instance not found")
        values.remove(old)
        return
    if getattr(a, spec.attr) is None:
        raise _denied(ResultReason.AttributeNotFound, f"{tag_name(target_tag)} is not set")
    setattr(a, spec.attr, None)


def _same_vendor(x: VendorAttribute, y: VendorAttribute) -> bool:
    return x.attribute_name == y.attribute_name and (x.vendor_identification or "") == (y.vendor_identification or "")
