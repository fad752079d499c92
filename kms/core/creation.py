"""What every new object gets: validated client attributes plus the attributes the server owns."""

from __future__ import annotations

import hashlib

from kms.core.certificates import certificate_attributes
from kms.core.context import RequestContext
from kms.core.lifecycle import initial_state
from kms.core.managed import ManagedObject
from kms.core.material import digest_of
from kms.core.tags import SYSTEM_TAGS, take_tags, validate_user_tags
from kms.kmip import schema
from kms.kmip.attributes import Attributes
from kms.kmip.enums import (
    CryptographicAlgorithm,
    DRBGAlgorithm,
    ObjectType,
    ProtectionStorageMask,
    ResultReason,
    RNGAlgorithm,
)
from kms.kmip.errors import KmipError
from kms.kmip.objects import KeyBlock
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType

_SERVER_FIELDS = (
    "object_type",
    "state",
    "initial_date",
    "last_change_date",
    "digest",
    "destroy_date",
    "compromise_date",
    "compromise_occurrence_date",
    "revocation_reason",
    "archive_date",
    "always_sensitive",
    "never_extractable",
    "short_unique_identifier",
    "fresh",
    "key_format_type",
    "original_creation_date",
    "protection_storage_mask",
    "certificate_length",
    "certificate_type",
)


def _rng_attribute(a: Attributes) -> TTLV:
    """What generated the key material: the operating system's DRBG (getrandom), behind `cryptography`."""
    children = [
        TTLV(Tag.RNGAlgorithm, ItemType.Enumeration, RNGAlgorithm.DRBG),
        TTLV(Tag.DRBGAlgorithm, ItemType.Enumeration, DRBGAlgorithm.Unspecified),
    ]
    return TTLV(Tag.RandomNumberGenerator, ItemType.Structure, children)


def check_quantum_safe(a: Attributes) -> None:
    """QuantumSafe=true asks for strength against quantum attacks: AES needs 256 bits, RSA/EC offer none."""
    if not a.quantum_safe:
        return
    alg, length = a.cryptographic_algorithm, a.cryptographic_length or 0
    safe = (alg == CryptographicAlgorithm.AES and length >= 256) or (
        alg in (CryptographicAlgorithm.ChaCha20, CryptographicAlgorithm.ChaCha20Poly1305) and length >= 256
    )
    if not safe:
        raise KmipError(
            ResultReason.GeneralFailure, "the requested key is not quantum safe (QuantumSafe needs AES-256 or ChaCha20)"
        )


def new_managed_object(
    kms: object,
    ctx: RequestContext,
    object_type: ObjectType,
    obj: object,
    requested: Attributes | None,
    *,
    extra_tags: set[str] | None = None,
    generated: bool = False,
) -> ManagedObject:
    """Build the managed object with its initial attributes; the caller inserts it."""
    a = schema.decode(Attributes, schema.encode(requested)) if requested is not None else Attributes()
    tags = validate_user_tags(take_tags(a, kms.vendor))  # type: ignore[attr-defined]
    if extra_tags:
        tags |= extra_tags
    uid = a.unique_identifier or kms.new_uid()  # type: ignore[attr-defined]
    if uid.startswith("[") or not uid.strip() or len(uid) > 128:
        raise KmipError(
            ResultReason.InvalidField,
            "a unique identifier must be 1-128 characters and may not start with '[' (that names tags)",
        )
    if a.object_type is not None and a.object_type != object_type:
        raise KmipError(
            ResultReason.InvalidField,
            f"Attributes say ObjectType {a.object_type.name} but the object is a {object_type.name}",
        )
    for name in _SERVER_FIELDS:
        setattr(a, name, [] if name == "digest" else None)
    seen_names = set()
    for n in a.name:
        if n.name_value in seen_names:
            raise KmipError(ResultReason.NonUniqueNameAttribute, f"name {n.name_value!r} is given twice")
        seen_names.add(n.name_value)
    kb: KeyBlock | None = getattr(obj, "key_block", None)
    if kb is not None:
        if kb.cryptographic_algorithm is not None:
            a.cryptographic_algorithm = kb.cryptographic_algorithm
        if kb.cryptographic_length is not None:
            a.cryptographic_length = kb.cryptographic_length
        a.key_format_type = kb.key_format_type
    a.unique_identifier = uid
    a.object_type = object_type
    if ctx.activate_on_create and a.activation_date is None:
        a.activation_date = ctx.now
    a.state = initial_state(a, ctx.now)
    a.initial_date = ctx.now
    a.last_change_date = ctx.now
    if a.sensitive is None:
        a.sensitive = False
    if a.extractable is None:
        a.extractable = True
    a.always_sensitive = a.sensitive
    a.never_extractable = not a.extractable
    a.fresh = True
    digest = digest_of(obj, object_type)
    if digest is not None:
        a.digest = [digest]
    a.original_creation_date = ctx.now
    a.short_unique_identifier = hashlib.sha256(uid.encode()).digest()
    a.protection_storage_mask = ProtectionStorageMask.Software
    if generated:
        a.other = [o for o in a.other if o.tag != Tag.RandomNumberGenerator] + [_rng_attribute(a)]
    if object_type == ObjectType.Certificate:
        a.certificate_type = obj.certificate_type  # type: ignore[attr-defined]
        derived = certificate_attributes(obj.certificate_value)  # type: ignore[attr-defined]
        derived_tags = {i.tag for i in derived}
        a.certificate_length = len(obj.certificate_value)  # type: ignore[attr-defined]
        a.other = [o for o in a.other if o.tag not in derived_tags] + derived
    if a.usage_limits is not None and a.usage_limits.usage_limits_count is None:
        a.usage_limits.usage_limits_count = a.usage_limits.usage_limits_total
    system = SYSTEM_TAGS.get(object_type)
    if system:
        tags.add(system)
    return ManagedObject(uid=uid, object_type=object_type, obj=obj, attributes=a, owner=ctx.user, tags=tags)
