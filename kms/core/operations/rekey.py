"""ReKey: a new symmetric key replacing an existing one, linked both ways; the user tags move to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.creation import new_managed_object
from kms.core.lifecycle import DESTROYED, effective_state
from kms.core.managed import copy_object
from kms.crypto.errors import BadParameters
from kms.crypto.keys import generate_symmetric_key
from kms.kmip import schema
from kms.kmip.attributes import Attributes, Link
from kms.kmip.enums import KeyFormatType, LinkType, ObjectType, ResultReason, State
from kms.kmip.errors import KmipError
from kms.kmip.objects import KeyBlock, SymmetricKey
from kms.kmip.payloads import ReKeyRequest, ReKeyResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True
_CARRIED = (
    "cryptographic_usage_mask",
    "cryptographic_parameters",
    "name",
    "object_group",
    "application_specific_information",
    "contact_information",
    "description",
    "sensitive",
    "extractable",
    "vendor_attributes",
)


def run(kms: Kms, req: ReKeyRequest, ctx: RequestContext) -> ReKeyResponse:
    old = copy_object(kms.load(ctx, req.unique_identifier))
    if old.object_type != ObjectType.SymmetricKey:
        raise KmipError(ResultReason.InvalidObjectType, "ReKey renews symmetric keys; use ReKeyKeyPair for key pairs")
    state = effective_state(old.attributes, ctx.now)
    if state in DESTROYED:
        raise KmipError(ResultReason.ObjectDestroyed, f"object {old.uid} has been destroyed")
    oa = old.attributes
    alg, length = oa.cryptographic_algorithm, oa.cryptographic_length
    if alg is None or length is None:
        raise KmipError(ResultReason.InvalidField, f"object {old.uid} has no algorithm/length to renew")
    try:
        material = generate_symmetric_key(alg, length)
    except BadParameters as exc:
        raise KmipError(ResultReason.InvalidField, str(exc)) from None
    requested = schema.decode(Attributes, schema.encode(req.attributes)) if req.attributes else Attributes()
    for field in _CARRIED:
        if getattr(requested, field) in (None, []):
            value = getattr(oa, field)
            setattr(requested, field, list(value) if isinstance(value, list) else value)
    requested.link = [*requested.link, Link(LinkType.ReplacedObjectLink, old.uid)]
    if req.offset is not None:
        requested.activation_date = ctx.now + req.offset
    elif state == State.Active and requested.activation_date is None:
        requested.activation_date = ctx.now
    obj = SymmetricKey(KeyBlock.raw(material, alg, length, KeyFormatType.Raw))
    user_tags = {t for t in old.tags if not t.startswith("_")}
    new = new_managed_object(kms, ctx, ObjectType.SymmetricKey, obj, requested, extra_tags=user_tags, generated=True)
    kms.insert(ctx, new)
    oa.link = [link for link in oa.link if link.link_type != LinkType.ReplacementObjectLink]
    oa.link.append(Link(LinkType.ReplacementObjectLink, new.uid))
    old.tags -= user_tags
    kms.save(ctx, old)
    ctx.id_placeholder = new.uid
    return ReKeyResponse(unique_identifier=new.uid)
