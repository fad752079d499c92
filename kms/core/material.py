"""Key material in and out of managed objects: building key blocks, reading raw bytes, digests, formats."""

from __future__ import annotations

import hashlib

from kms.kmip import schema
from kms.kmip.attributes import Attributes, Digest
from kms.kmip.enums import HashingAlgorithm, KeyFormatType, ObjectType, ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.objects import KeyBlock, KeyValue
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType

RAW_FORMATS = (KeyFormatType.Raw, KeyFormatType.TransparentSymmetricKey, KeyFormatType.Opaque)


def key_bytes(obj: object, uid: str) -> bytes:
    """The raw bytes of a symmetric key or secret; fails clearly for wrapped or destroyed material."""
    kb: KeyBlock | None = getattr(obj, "key_block", None)
    if kb is None:
        raise KmipError(ResultReason.InvalidObjectType, f"object {uid} has no key block")
    if kb.key_value is None:
        raise KmipError(ResultReason.KeyValueNotPresent, f"object {uid} has no key material")
    if kb.key_wrapping_data is not None or kb.key_value.type is ItemType.ByteString:
        raise KmipError(ResultReason.KeyValueNotPresent, f"the key material of {uid} is wrapped")
    if kb.key_format_type not in RAW_FORMATS:
        raise KmipError(
            ResultReason.KeyFormatTypeNotSupported, f"object {uid} is in format {kb.key_format_type.name}"
        )
    return kb.value().material_bytes()


def with_format(kb: KeyBlock, wanted: KeyFormatType | None, attributes: Attributes | None) -> KeyBlock:
    """A copy of a symmetric key block in the requested format (Raw or TransparentSymmetricKey)."""
    if wanted is None and attributes is None:
        return kb
    if wanted is not None and wanted not in (KeyFormatType.Raw, KeyFormatType.TransparentSymmetricKey):
        raise KmipError(
            ResultReason.KeyFormatTypeNotSupported,
            f"symmetric keys export as Raw or TransparentSymmetricKey, not {wanted.name}",
        )
    material = schema.decode(KeyValue, kb.key_value).material_bytes()  # type: ignore[arg-type]
    return KeyBlock.raw(
        material,
        kb.cryptographic_algorithm,
        kb.cryptographic_length,
        wanted or kb.key_format_type,
        attributes,
    )


def strip_material(obj: object) -> object:
    """The object without its key material (what remains after Destroy)."""
    kb: KeyBlock | None = getattr(obj, "key_block", None)
    if kb is not None:
        kb.key_value = None
        kb.key_wrapping_data = None
    if hasattr(obj, "opaque_data_value"):
        obj.opaque_data_value = b""  # type: ignore[attr-defined]
    return obj


def digest_of(obj: object, object_type: ObjectType) -> Digest | None:
    """SHA-256 digest of the key material as registered (KMIP Digest attribute)."""
    kb: KeyBlock | None = getattr(obj, "key_block", None)
    if kb is not None and kb.key_value is not None:
        if kb.key_value.type is ItemType.ByteString:
            data = kb.key_value.value
        else:
            km = kb.key_value.find(Tag.KeyMaterial)
            if km is None:
                return None
            data = km.value if km.type is ItemType.ByteString else _struct_bytes(km)
        return Digest(HashingAlgorithm.SHA_256, hashlib.sha256(data).digest(), kb.key_format_type)
    value = getattr(obj, "certificate_value", None) or getattr(obj, "opaque_data_value", None)
    if value:
        return Digest(HashingAlgorithm.SHA_256, hashlib.sha256(value).digest(), None)
    return None


def _struct_bytes(item: TTLV) -> bytes:
    from kms.kmip import binary

    return binary.encode(item)
