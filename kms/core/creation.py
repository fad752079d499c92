"""What every new object gets: validated client attributes plus the attributes the server owns."""

from __future__ import annotations

from kms.core.context import RequestContext
from kms.core.lifecycle import initial_state
from kms.core.managed import ManagedObject
from kms.core.material import digest_of
from kms.core.tags import SYSTEM_TAGS, take_tags, validate_user_tags
from kms.kmip import schema
from kms.kmip.attributes import Attributes
from kms.kmip.enums import CryptographicAlgorithm, ObjectType, ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.objects import KeyBlock

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
)


def check_quantum_safe(a: Attributes) -> None:
    """QuantumSafe=true asks for strength against quantum attacks: AES needs 256 bits, RSA/EC offer none."""
    if not a.quantum_safe:
        return
    alg, length = a.cryptographic_algorithm, a.cryptographic_length or 0
    safe = (alg == CryptographicAlgorithm.AES and length >= 256) or (
        alg in (CryptographicAlgorithm.ChaCha20, CryptographicAlgorithm.ChaCha20Poly1305) and length >= 256
    )
    if not safe:
        raise KmipError(ResultReason.GeneralFailure, "NOT_SAFE: the requested key is not quantum safe")


def new_managed_object(
    kms: object,
    ctx: RequestContext,
    object_type: ObjectType,
    obj: object,
    requested: Attributes | None,
    *,
    extra_tags: set[str] | None = None,
) -> ManagedObject:
    """Build the managed object with its initial attributes; the caller inserts it."""
    a = schema.decode(Attributes, schema.encode(requested)) if requested is not None else Attributes()
    tags = validate_user_tags(take_tags(a, kms.vendor))  # type: ignore[attr-defined]
    if extra_tags:
        tags |= extra_tags
    uid = a.unique_identifier or kms.new_uid()  # type: ignore[attr-defined]
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
    system = SYSTEM_TAGS.get(object_type)
    if system:
        tags.add(system)
    return ManagedObject(uid=uid, object_type=object_type, obj=obj, attributes=a, owner=ctx.user, tags=tags)
