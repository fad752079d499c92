"""KMIP 1.x payloads, translated to and from the 2.x payloads the engine serves.

KMIP 1.x carries attributes as `Attribute{AttributeName (spec text), AttributeIndex, AttributeValue}` inside
`TemplateAttribute` structures (and directly in Locate, AddAttribute, ...); 2.x uses typed items inside
`Attributes`. Translating at the protocol edge lets PyKMIP-style 1.x clients (KMIP 1.0-1.4) use every operation
without the engine knowing two attribute models. Custom 1.x attributes ("x-name") become vendor attributes with
vendor identification "x" (or "y") and come back under their 1.x name.
"""

from __future__ import annotations

from kms.kmip.enums import Operation, ResultReason
from kms.kmip.errors import invalid_message
from kms.kmip.tags import TEXT_NAMES, Tag
from kms.kmip.ttlv import TTLV, ItemType

_TAG_BY_TEXT = {text.lower(): tag for tag, text in TEXT_NAMES.items()}
_TEMPLATES = {
    Tag.TemplateAttribute: Tag.Attributes,
    Tag.CommonTemplateAttribute: Tag.CommonAttributes,
    Tag.PrivateKeyTemplateAttribute: Tag.PrivateKeyAttributes,
    Tag.PublicKeyTemplateAttribute: Tag.PublicKeyAttributes,
}
_CUSTOM_PREFIXES = ("x-", "y-")

# The attributes each KMIP 1.x version defines (specification text names, cumulative): a 1.x client is only
# sent these, since the 2.x-only ones (Key Format Type, Short Unique Identifier, ...) have no 1.x meaning.
_V1_ATTRIBUTES = {
    (1, 0): (
        "Unique Identifier", "Name", "Object Type", "Cryptographic Algorithm", "Cryptographic Length",
        "Cryptographic Parameters", "Cryptographic Domain Parameters", "Certificate Type", "Certificate Identifier",
        "Certificate Subject", "Certificate Issuer", "Digest", "Operation Policy Name", "Cryptographic Usage Mask",
        "Lease Time", "Usage Limits", "State", "Initial Date", "Activation Date", "Process Start Date",
        "Protect Stop Date", "Deactivation Date", "Destroy Date", "Compromise Occurrence Date", "Compromise Date",
        "Revocation Reason", "Archive Date", "Object Group", "Link", "Application Specific Information",
        "Contact Information", "Last Change Date", "Custom Attribute",
    ),
    (1, 1): (
        "Certificate Length", "X.509 Certificate Identifier", "X.509 Certificate Subject",
        "X.509 Certificate Issuer", "Digital Signature Algorithm", "Fresh",
    ),
    (1, 2): ("Alternative Name", "Key Value Present", "Key Value Location", "Original Creation Date"),
    # KMIP 1.3 added Random Number Generator; it is left out on purpose: PyKMIP 0.11, the common 1.x client,
    # cannot parse it and then fails the whole GetAttributes. 2.x clients receive it.
    (1, 4): (
        "PKCS#12 Friendly Name", "Description", "Comment", "Sensitive", "Always Sensitive", "Extractable",
        "Never Extractable",
    ),
}


def _v1_attribute_tags(version: tuple[int, int]) -> frozenset[int]:
    names = [n for v, group in _V1_ATTRIBUTES.items() if v <= version for n in group]
    return frozenset(_TAG_BY_TEXT[n.lower()] for n in names if n.lower() in _TAG_BY_TEXT)


_V1_TAGS = {v: _v1_attribute_tags(v) for v in _V1_ATTRIBUTES}


def attribute_to_v2(attr: TTLV) -> TTLV:
    """A 1.x Attribute structure as a 2.x attribute item (typed, or a vendor Attribute for custom names)."""
    name_item = attr.find(Tag.AttributeName)
    value = attr.find(Tag.AttributeValue)
    if name_item is None or name_item.type is not ItemType.TextString:
        raise invalid_message("a KMIP 1.x Attribute needs an AttributeName")
    name = name_item.value
    if name.lower().startswith(_CUSTOM_PREFIXES):
        children = [
            TTLV(Tag.VendorIdentification, ItemType.TextString, name[0]),
            TTLV(Tag.AttributeName, ItemType.TextString, name[2:]),
        ]
        if value is not None:
            children.append(value)
        return TTLV(Tag.Attribute, ItemType.Structure, children)
    tag = _TAG_BY_TEXT.get(name.lower())
    if tag is None:
        raise invalid_message(f"unknown attribute name {name[:64]!r}")
    if value is None:
        raise invalid_message(f"attribute {name!r} has no AttributeValue")
    return TTLV(tag, value.type, value.value)


def attribute_to_v1(item: TTLV, version: tuple[int, int] = (1, 4)) -> TTLV | None:
    """A 2.x attribute item as a 1.x Attribute structure (None for attributes `version` does not define)."""
    if item.tag == Tag.Attribute:
        vid = item.find(Tag.VendorIdentification)
        name = item.find(Tag.AttributeName)
        value = item.find(Tag.AttributeValue)
        if vid is None or name is None or vid.value not in ("x", "y"):
            return None
        text = f"{vid.value}-{name.value}"
    else:
        text = TEXT_NAMES.get(item.tag)
        if text is None or item.tag not in _V1_TAGS.get(version, _V1_TAGS[(1, 4)]):
            return None
        value = TTLV(Tag.AttributeValue, item.type, item.value)
    children = [TTLV(Tag.AttributeName, ItemType.TextString, text)]
    if value is not None:
        children.append(value)
    return TTLV(Tag.Attribute, ItemType.Structure, children)


def _attributes_from(items: list[TTLV], tag: int = Tag.Attributes) -> TTLV:
    return TTLV(tag, ItemType.Structure, [attribute_to_v2(a) for a in items if a.tag == Tag.Attribute])


def _reference(name_item: TTLV) -> TTLV:
    name = name_item.value
    if name.lower().startswith(_CUSTOM_PREFIXES):
        return TTLV(
            Tag.AttributeReference,
            ItemType.Structure,
            [
                TTLV(Tag.VendorIdentification, ItemType.TextString, name[0]),
                TTLV(Tag.AttributeName, ItemType.TextString, name[2:]),
            ],
        )
    tag = _TAG_BY_TEXT.get(name.lower())
    if tag is None:
        raise invalid_message(f"unknown attribute name {name[:64]!r}")
    return TTLV(Tag.AttributeReference, ItemType.Enumeration, tag)


def has_v1_forms(payload: TTLV) -> bool:
    """True when a payload uses 1.x attribute structures (PyKMIP still sends TemplateAttribute in 2.0 ReKey)."""
    return any(c.tag in _TEMPLATES for c in payload.children())


def request_to_v2(operation: Operation, payload: TTLV) -> TTLV:
    """Rewrite a 1.x request payload in 2.x form."""
    out: list[TTLV] = []
    loose_attributes: list[TTLV] = []
    for child in payload.children():
        if child.tag in _TEMPLATES:
            out.append(_attributes_from(child.children(), _TEMPLATES[child.tag]))
        elif child.tag == Tag.Attribute:
            loose_attributes.append(child)
        elif child.tag == Tag.AttributeName and operation in (
            Operation.GetAttributes,
            Operation.DeleteAttribute,
        ):
            out.append(_reference(child))
        elif child.tag == Tag.AttributeIndex:
            continue  # instance 0 is the only one 1.x clients address in practice
        else:
            out.append(child)
    if loose_attributes:
        if operation == Operation.Locate:
            out.append(_attributes_from(loose_attributes))
        elif operation in (Operation.AddAttribute, Operation.ModifyAttribute):
            out.append(TTLV(Tag.NewAttribute, ItemType.Structure, [attribute_to_v2(loose_attributes[0])]))
        else:
            raise invalid_message(f"{operation.name} does not take loose Attribute items")
    return TTLV(payload.tag, ItemType.Structure, out)


def response_to_v1(operation: Operation, payload: TTLV, version: tuple[int, int]) -> TTLV:
    """Rewrite a 2.x response payload in the form a 1.x client expects."""
    out: list[TTLV] = []
    for child in payload.children():
        if child.tag == Tag.Attributes:
            out.extend(a for a in (attribute_to_v1(i, version) for i in child.children()) if a is not None)
        elif child.tag == Tag.AttributeReference and operation == Operation.GetAttributeList:
            if child.type is ItemType.Enumeration and child.value in _V1_TAGS.get(version, _V1_TAGS[(1, 4)]):
                out.append(TTLV(Tag.AttributeName, ItemType.TextString, TEXT_NAMES[child.value]))
            elif child.type is ItemType.Structure:
                converted = attribute_to_v1(TTLV(Tag.Attribute, ItemType.Structure, child.children()), version)
                if converted is not None:
                    out.append(converted.find(Tag.AttributeName))  # type: ignore[arg-type]
        elif child.tag == Tag.LocatedItems and version < (1, 3):
            continue  # LocatedItems appeared in KMIP 1.3
        else:
            out.append(child)
    return TTLV(payload.tag, ItemType.Structure, out)


# Reasons KMIP 2.0 added, as the closest reason a 1.x client knows.
_V1_REASONS = {
    ResultReason.ObjectNotFound: ResultReason.ItemNotFound,
    ResultReason.WrongKeyLifecycleState: ResultReason.PermissionDenied,
    ResultReason.ObjectDestroyed: ResultReason.PermissionDenied,
    ResultReason.IncompatibleCryptographicUsageMask: ResultReason.PermissionDenied,
    ResultReason.AttributeReadOnly: ResultReason.PermissionDenied,
    ResultReason.AttributeSingleValued: ResultReason.InvalidField,
    ResultReason.AttributeNotFound: ResultReason.InvalidField,
    ResultReason.AttributeInstanceNotFound: ResultReason.InvalidField,
    ResultReason.MultiValuedAttribute: ResultReason.InvalidField,
    ResultReason.NonUniqueNameAttribute: ResultReason.InvalidField,
    ResultReason.InvalidCorrelationValue: ResultReason.InvalidField,
    ResultReason.InvalidObjectType: ResultReason.InvalidField,
    ResultReason.UsageLimitExceeded: ResultReason.PermissionDenied,
    ResultReason.UnsupportedProtocolVersion: ResultReason.InvalidMessage,
}


def reason_for(version: tuple[int, int], reason: ResultReason) -> ResultReason:
    if version >= (2, 0):
        return ResultReason.ObjectNotFound if reason == ResultReason.ItemNotFound else reason
    if reason > ResultReason.ObjectAlreadyExists and reason != ResultReason.GeneralFailure:
        return _V1_REASONS.get(reason, ResultReason.GeneralFailure)
    return reason
