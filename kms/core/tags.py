"""Object tags: user tags carried as a vendor attribute, system tags set by object type, tag-list identifiers.

Wire forms accepted (spec/kmip.md §4): the current `Attribute{VendorIdentification, AttributeName="tag",
AttributeValue=TextString JSON list}` and the older v4 form whose AttributeValue is a ByteString holding the
same JSON. We always emit the current form.
"""

from __future__ import annotations

import json

from kms.kmip.attributes import Attributes, VendorAttribute
from kms.kmip.enums import ObjectType
from kms.kmip.errors import invalid_field
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType

TAG_ATTRIBUTE = "tag"

SYSTEM_TAGS: dict[ObjectType, str] = {
    ObjectType.SymmetricKey: "_kk",
    ObjectType.PrivateKey: "_sk",
    ObjectType.PublicKey: "_pk",
    ObjectType.Certificate: "_cert",
    ObjectType.SecretData: "_sd",
    ObjectType.OpaqueObject: "_oo",
}


def _decode_tag_value(value: TTLV | None) -> list[str]:
    if value is None:
        return []
    if value.type is ItemType.TextString:
        text = value.value
    elif value.type is ItemType.ByteString:
        try:
            text = value.value.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_field("the tag attribute is not UTF-8 JSON") from None
    else:
        raise invalid_field(f"the tag attribute must be a TextString JSON list, got {value.type.name}")
    try:
        parsed = json.loads(text)
    except ValueError:
        raise invalid_field("the tag attribute is not a JSON list of strings") from None
    if not isinstance(parsed, list) or not all(isinstance(t, str) for t in parsed):
        raise invalid_field("the tag attribute is not a JSON list of strings")
    return parsed


def take_tags(attributes: Attributes | None, vendor: str) -> list[str]:
    """Remove the tag vendor attribute(s) from `attributes` and return the tags they carried."""
    if attributes is None:
        return []
    found: list[str] = []
    kept = []
    for va in attributes.vendor_attributes:
        if va.attribute_name == TAG_ATTRIBUTE and (va.vendor_identification or vendor).lower() == vendor.lower():
            found.extend(_decode_tag_value(va.attribute_value))
        else:
            kept.append(va)
    attributes.vendor_attributes = kept
    return found


def validate_user_tags(tags: list[str]) -> set[str]:
    for t in tags:
        if not t:
            raise invalid_field("tags may not be empty")
        if t.startswith("_"):
            raise invalid_field(f"tag {t!r}: tags starting with '_' are reserved for the server")
    return set(tags)


def tags_attribute(tags: set[str], vendor: str) -> VendorAttribute:
    return VendorAttribute(
        vendor_identification=vendor,
        attribute_name=TAG_ATTRIBUTE,
        attribute_value=TTLV(Tag.AttributeValue, ItemType.TextString, json.dumps(sorted(tags))),
    )


def parse_tag_identifier(uid: str) -> list[str] | None:
    """The tags of an identifier written as a JSON list ('["a","b"]'), or None for a plain identifier."""
    if not uid.startswith("["):
        return None
    try:
        parsed = json.loads(uid)
    except ValueError:
        return None
    if not isinstance(parsed, list) or not parsed or not all(isinstance(t, str) and t for t in parsed):
        raise invalid_field("a tag identifier must be a non-empty JSON list of non-empty strings")
    return parsed
